"""Hours toward an apprenticeship: approved, pending and rejected on-the-job minutes per
work process against each target, related instruction per program year, prior-learning
and pre-apprenticeship credit, percent complete and what is still missing.

Authorisation (to be enforced by the central policy): a learner reads their own hours
only; a supervisor those of their own placements; a coordinator those of their own
organisation; a sponsor those of their own programs' apprentices; a state auditor none
(the audit trail is theirs); a researcher none.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from projections.apprenticeship_hours import ApprenticeshipHoursProjection
from projections.transcript import TranscriptProjection
from services.api.deps import ActorDep, EngineDep, RuntimeDep, SettingsDep
from services.api.errors import ProblemError
from services.api.models import PROBLEM_RESPONSES
from services.api.routes.transcripts import (
    LearnerId,
    Limit,
    MinPosition,
    Offset,
    read_your_writes,
)

router = APIRouter(tags=["apprenticeship hours"])


class WorkProcessOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    name: str
    target_minutes: int | None
    approved_minutes: int
    pending_minutes: int
    rejected_minutes: int
    credited_minutes: int
    missing_minutes: int | None


class InstructionYearOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    program_year: int
    target_minutes: int | None
    approved_minutes: int
    pending_minutes: int
    rejected_minutes: int
    missing_minutes: int | None


class PreApprenticeshipOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    placement_id: str
    status: str
    approved_ojl_minutes: int
    credited_minutes: int
    program_counts_it: bool


class ProgressOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    placement_id: str
    learner_id: str
    organisation_id: str
    program_id: str | None
    program_title: str | None
    sponsor_id: str | None
    program_known: bool
    wbl_type: str
    pre_apprenticeship: bool
    approach: str | None
    status: str
    required_ojl_minutes: int
    approved_ojl_minutes: int
    pending_ojl_minutes: int
    rejected_ojl_minutes: int
    approved_ri_minutes: int
    pending_ri_minutes: int
    rejected_ri_minutes: int
    prior_learning_credit_minutes: int
    pre_apprenticeship_credit_minutes: int
    counted_ojl_minutes: int
    counted_ojl_hours: Decimal
    percent_complete: Decimal | None
    work_processes: list[WorkProcessOut]
    related_instruction: list[InstructionYearOut]
    competencies_missing: list[str]
    pre_apprenticeships: list[PreApprenticeshipOut]
    missing: list[str]
    version: int
    position: int


@router.get("/learners/{learner_id}/apprenticeship-hours", response_model=list[ProgressOut],
            responses=PROBLEM_RESPONSES)
def learner_hours(
    learner_id: LearnerId, runtime: RuntimeDep, engine: EngineDep, settings: SettingsDep,
    actor: ActorDep, program_id: str | None = None,
    placement_id: Annotated[str | None, Query(description="Only this placement; with "
                                                          "min_position, the one to wait for")
                            ] = None,
    include_non_apprenticeships: bool = False, limit: Limit = 100, offset: Offset = 0,
    min_position: MinPosition = None,
) -> list[ProgressOut]:
    """One learner's progress per program (one entry per apprenticeship placement)."""
    read_your_writes(runtime, settings, min_position, placement_id)
    with engine.connect() as conn:
        found = ApprenticeshipHoursProjection().progress(
            conn, learner_id=learner_id, program_id=program_id, placement_id=placement_id,
            apprenticeships_only=not include_non_apprenticeships, limit=limit, offset=offset)
    return [ProgressOut.model_validate(p) for p in found]


@router.get("/apprenticeship-hours", response_model=list[ProgressOut],
            responses=PROBLEM_RESPONSES)
def list_hours(
    runtime: RuntimeDep, engine: EngineDep, settings: SettingsDep, actor: ActorDep,
    program_id: str | None = None, sponsor_id: str | None = None,
    organisation_id: str | None = None, status: str | None = None,
    supervisor_id: Annotated[str | None, Query(max_length=200, description=(
        "Only the placements this supervisor supervises (a supervisor names themself)."))]
        = None,
    limit: Limit = 100, offset: Offset = 0, min_position: MinPosition = None,
) -> list[ProgressOut]:
    """Apprentices' progress across learners: a sponsor's programs, an organisation's, a
    supervisor's apprentices."""
    read_your_writes(runtime, settings, min_position)
    with engine.connect() as conn:
        placements = None
        if supervisor_id is not None:
            placements = TranscriptProjection().placement_ids_of_supervisor(conn, supervisor_id)
        found = ApprenticeshipHoursProjection().progress(
            conn, program_id=program_id, sponsor_id=sponsor_id,
            organisation_id=organisation_id, status=status, limit=limit, offset=offset,
            placement_ids=placements)
    return [ProgressOut.model_validate(p) for p in found]


@router.get("/placements/{placement_id}/apprenticeship-hours", response_model=ProgressOut,
            responses=PROBLEM_RESPONSES)
def placement_hours(
    placement_id: UUID, runtime: RuntimeDep, engine: EngineDep, settings: SettingsDep,
    actor: ActorDep, min_position: MinPosition = None,
) -> ProgressOut:
    """One placement's progress, for whoever may read the placement (its learner and
    supervisor, its organisation's coordinators, its program's sponsor, auditors): toward
    the apprenticeship for an apprenticeship, approved hours for any other placement.
    404 ``progress-not-projected`` while the read models have not read the placement yet
    (pass the command's ``min_position`` to wait for it)."""
    read_your_writes(runtime, settings, min_position, str(placement_id))
    with engine.connect() as conn:
        found = ApprenticeshipHoursProjection().progress(
            conn, placement_id=str(placement_id), apprenticeships_only=False, limit=1)
    if not found:
        raise ProblemError(404, "progress-not-projected", "Not in the read models yet",
                           "The read models do not hold this placement yet; read it again "
                           "shortly, or pass the command's min_position.",
                           field="placement_id")
    return ProgressOut.model_validate(found[0])
