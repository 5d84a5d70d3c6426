"""Evaluations: rubric scores (1-4) per competency, interim or final; list them."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from domain.placement import EvaluationStage, EvaluatorRole
from services.api.deps import ActorDep, LedgerDep, run_command
from services.api.models import (
    PROBLEM_RESPONSES,
    CommandAccepted,
    Day,
    IdempotencyKey,
    IfMatch,
    accepted,
    expected_version,
)

router = APIRouter(prefix="/placements/{placement_id}/evaluations", tags=["evaluations"],
                   responses=PROBLEM_RESPONSES)


class EvaluatePlacement(BaseModel):
    """A final evaluation completes the evaluation a credential requires."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "scores": {"Reads electrical schematics": 3, "Workplace safety": 4},
        "evaluator_role": "supervisor", "stage": "final",
        "comments": "Reliable, asks good questions."}]})

    scores: dict[str, int] = Field(min_length=1, max_length=100,
                                   description="Rubric score 1 (beginning) to 4 (exemplary).")
    evaluator_role: EvaluatorRole = Field(description=(
        "The capacity in which the caller evaluates (`self` for a learner's own)."))
    stage: EvaluationStage = Field(EvaluationStage.FINAL, description=(
        "`interim` or `final`; a credential needs a final evaluation."))
    comments: str = Field("", max_length=4000, description="Free-text remarks.")
    evaluated_on: Day | None = Field(None, description=(
        "Business date of the evaluation (default today)."))


class EvaluationOut(BaseModel):
    evaluation_id: str
    stage: str
    evaluator_id: str
    evaluator_role: str
    scores: dict[str, int]
    comments: str
    evaluated_on: date


class EvaluationsOut(BaseModel):
    placement_id: UUID
    version: int
    evaluation_completed: bool
    evaluations: list[EvaluationOut]


@router.post("", status_code=201, response_model=CommandAccepted)
async def evaluate_placement(placement_id: UUID, body: EvaluatePlacement, ledger: LedgerDep,
                             actor: ActorDep, response: Response, if_match: IfMatch = None,
                             idempotency_key: IdempotencyKey = None) -> CommandAccepted:
    """Record ``PlacementEvaluated``; ``created_id`` is the evaluation's id."""
    result = await run_command(ledger,
        lambda: ledger.evaluate_placement(
           actor, placement_id, scores=body.scores, evaluator_role=body.evaluator_role.value,
           stage=body.stage.value, comments=body.comments, evaluated_on=body.evaluated_on,
           expected_version=expected_version(if_match)))
    return accepted(response, result, f"/placements/{placement_id}/evaluations")


@router.get("", response_model=EvaluationsOut)
async def list_evaluations(placement_id: UUID, ledger: LedgerDep, response: Response
                           ) -> EvaluationsOut:
    p = await run_in_threadpool(ledger.get_placement, placement_id)
    response.headers["ETag"] = f'"{p.version}"'
    return EvaluationsOut(
        placement_id=p.id, version=p.version, evaluation_completed=p.evaluation_completed,
        evaluations=[EvaluationOut(
            evaluation_id=e.evaluation_id, stage=e.stage.value, evaluator_id=e.evaluator_id,
            evaluator_role=e.evaluator_role.value, scores=dict(e.scores), comments=e.comments,
            evaluated_on=e.evaluated_on) for e in p.evaluations])
