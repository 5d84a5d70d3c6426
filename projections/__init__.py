"""Read models: each projection is a pure fold of published events plus its tables."""
