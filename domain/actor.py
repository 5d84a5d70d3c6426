"""Who did something: every event records the actor and the role they acted in.

Auditors ask "who approved these hours, and in what capacity?"; the answer must
come from the event itself, not from a user table that may change later.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    LEARNER = "learner"
    GUARDIAN = "guardian"
    SUPERVISOR = "supervisor"
    COORDINATOR = "coordinator"
    EMPLOYER = "employer"
    SPONSOR = "sponsor"
    STATE_AUDITOR = "state_auditor"
    RESEARCHER = "researcher"
    ADMIN = "admin"
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    id: str
    role: Role
    organisation_id: str | None = None
