"""The pages, one router per person's job (sign-in, learner, supervisor, coordinator,
sponsor, auditor, approval links)."""
