"""The roles a bearer token may carry (``services/api/auth.py`` checks them).

Apart from ``auth.py``, which imports FastAPI and PyJWT, so that ``wbl tokens create --help``
can name them without importing either (decision 075).
"""

from __future__ import annotations

from domain.actor import Role

TOKEN_ROLES: tuple[Role, ...] = (
    Role.LEARNER,
    Role.SUPERVISOR,
    Role.COORDINATOR,
    Role.SPONSOR,
    Role.STATE_AUDITOR,
    Role.RESEARCHER,
    Role.ADMIN,
    Role.GUARDIAN,
)
"""Roles a token may carry. ``guardian`` exists because a minor's training agreement needs
a guardian's signature (domain rule); it can do nothing else."""
