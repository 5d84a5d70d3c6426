"""A placement's values: its states, agreement parties, evaluation scales, credential kinds,
credits, and the records of evaluations, credentials and credits it holds. Plain values, no
rules: the rules are the ``Placement`` aggregate's (``domain/placement/__init__.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from domain.actor import Role

RUBRIC_MIN = 1
RUBRIC_MAX = 4
"""Rubric scores run 1 (beginning) to 4 (exemplary), the common four-level WBL rubric."""

COORDINATING_ROLES = (Role.COORDINATOR, Role.ADMIN)


class PlacementStatus(StrEnum):
    MATCHED = "matched"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    COMPLETED = "completed"
    WITHDRAWN = "withdrawn"


_STATE_CODES = {
    PlacementStatus.MATCHED: "placement-not-started",
    PlacementStatus.ACTIVE: "placement-active",
    PlacementStatus.SUSPENDED: "placement-suspended",
    PlacementStatus.COMPLETED: "placement-completed",
    PlacementStatus.WITHDRAWN: "placement-withdrawn",
}


class AgreementParty(StrEnum):
    """Who signs the training agreement. A guardian signs for a learner under 18 at the
    start (a minor cannot bind themself to the agreement)."""

    LEARNER = "learner"
    GUARDIAN = "guardian"
    EMPLOYER = "employer"
    COORDINATOR = "coordinator"


class EvaluatorRole(StrEnum):
    SUPERVISOR = "supervisor"
    MENTOR = "mentor"
    COORDINATOR = "coordinator"
    INSTRUCTOR = "instructor"
    SELF = "self"


class EvaluationStage(StrEnum):
    INTERIM = "interim"
    FINAL = "final"


class CredentialKind(StrEnum):
    """A subset of the Open Badges 3.0 ``achievementType`` vocabulary."""

    APPRENTICESHIP_CERTIFICATE = "ApprenticeshipCertificate"
    BADGE = "Badge"
    CERTIFICATE = "Certificate"
    CERTIFICATION = "Certification"
    COURSE = "Course"
    FIELDWORK = "Fieldwork"
    LICENSE = "License"
    MICRO_CREDENTIAL = "MicroCredential"


class CreditBasis(StrEnum):
    """Why on-the-job hours were credited without being logged here (29 CFR 29.5(b)(12):
    credit for previous experience or training)."""

    PRIOR_EXPERIENCE = "prior_experience"
    PRIOR_TRAINING = "prior_training"
    PRE_APPRENTICESHIP = "pre_apprenticeship"


class _Immutable:
    """Frozen records are never changed once made (``Evaluation.scores`` included): a deep
    copy of the placement may share them instead of rebuilding each one."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self


@dataclass(frozen=True)
class Evaluation(_Immutable):
    evaluation_id: str
    stage: EvaluationStage
    evaluator_id: str
    evaluator_role: EvaluatorRole
    scores: dict[str, int]
    comments: str
    evaluated_on: date


@dataclass(frozen=True)
class Credential(_Immutable):
    credential_id: str
    kind: CredentialKind
    issuer: str
    issued_on: date
    expires_on: date | None
    revoked_on: date | None = None
    revocation_reason: str | None = None
    replaced_by: str | None = None
    """The credential reissued in its place (this one is then no longer in force)."""

    @property
    def in_force(self) -> bool:
        return self.revoked_on is None and self.replaced_by is None


@dataclass(frozen=True)
class Credit(_Immutable):
    minutes: int
    basis: CreditBasis
    work_process: str | None
    source_placement_id: str | None
    granted_on: date


def birthday(born_on: date, years: int) -> date:
    """The day a person born on ``born_on`` turns ``years`` (29 February -> 1 March)."""
    try:
        return born_on.replace(year=born_on.year + years)
    except ValueError:
        return date(born_on.year + years, 3, 1)


def age_on(born_on: date, day: date) -> int:
    years = day.year - born_on.year
    return years if birthday(born_on, years) <= day else years - 1
