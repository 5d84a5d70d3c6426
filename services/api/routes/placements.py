"""Placements: match a learner, sign the agreement, start, suspend, reinstate, withdraw,
complete, sign off competencies, credit prior learning; read one placement.

Every command takes ``If-Match`` (the version you read) and answers the new version as
``ETag`` and the event's position; who may call what is in ``services/api/authz.py``.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from domain.placement import AgreementParty, CreditBasis, Placement
from services.api.deps import ActorDep, LedgerDep, run_command
from services.api.models import (
    PROBLEM_RESPONSES,
    CommandAccepted,
    Day,
    IdempotencyKey,
    Ident,
    IfMatch,
    Text,
    accepted,
    expected_version,
)

router = APIRouter(prefix="/placements", tags=["placements"], responses=PROBLEM_RESPONSES)

PLACEMENT_ID = "5f0c3c1e-8d1e-4a53-9a3c-1f7d2b6c9e10"


def _forbid(example: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [example]})


class MatchLearner(BaseModel):
    """A coordinator matches a learner to an open opportunity and names the supervisor.
    The birth date serves the age rules and is not recorded (decision 011)."""

    model_config = _forbid({
        "opportunity_id": "0b6f8f9e-3c55-4b8e-9a51-4e1f2d3c4b5a", "learner_id": "lrn-7f3a9c",
        "supervisor_id": "sup-2b81", "learner_born_on": "2009-04-17"})

    opportunity_id: UUID = Field(description=(
        "The open opportunity, of the coordinator's organisation; its dates become the "
        "placement's."))
    learner_id: Ident
    supervisor_id: Ident
    learner_born_on: Day = Field(description=(
        "Checked against the opportunity's minimum age and kept sealed for the child-labour "
        "rules; never recorded in an event (decisions 011, 038)."))
    program_id: UUID | None = Field(None, description=(
        "The registered program followed: required for an apprenticeship, allowed for a "
        "pre-apprenticeship, refused otherwise."))
    matched_on: Day | None = Field(None, description="Business date of the match (default today).")


class SignAgreement(BaseModel):
    model_config = _forbid({"party": "learner", "signed_on": "2027-01-05"})
    party: AgreementParty = Field(description=(
        "Who signs the training agreement; a guardian signs for a learner under 18."))
    signed_on: Day | None = Field(None, description=(
        "Business date of the signature (default today)."))


class StartPlacement(BaseModel):
    model_config = _forbid({"started_on": "2027-01-11"})
    started_on: Day | None = Field(None, description=(
        "First day worked (default today); no hours before it."))


class ChangeStatus(BaseModel):
    model_config = _forbid({"reason": "Worksite closed for renovation"})
    reason: Text = Field(description="Why the placement is suspended or reinstated.")
    on: Day | None = Field(None, description="Business date of the change (default today).")


class WithdrawPlacement(BaseModel):
    model_config = _forbid({"reason": "Moved out of district", "during_probation": False})
    reason: Text = Field(description="Why the placement ended early.")
    during_probation: bool = Field(False, description=(
        "Withdrawn within the probationary period (reported apart, 29 CFR 29.5(b)(8))."))
    withdrawn_on: Day | None = Field(None, description=(
        "Business date of the withdrawal (default today)."))


class CompletePlacement(BaseModel):
    model_config = _forbid({"completed_on": "2027-05-21"})
    completed_on: Day | None = Field(None, description=(
        "Business date of completion (default today)."))


class SignOffCompetency(BaseModel):
    model_config = _forbid({"competency": "Reads electrical schematics"})
    competency: Text = Field(description="A competency of the placement's program, by its name.")
    signed_off_on: Day | None = Field(None, description="Date it was shown (default today).")


class GrantPriorLearningCredit(BaseModel):
    """29 CFR 29.5(b)(12): credit for previous experience or training."""

    model_config = _forbid({"minutes": 6000, "basis": "prior_experience",
                            "work_process": "Wiring"})
    minutes: int = Field(ge=1, le=10_000_000, description=(
        "On-the-job minutes credited; all credit together stays within the requirement."))
    basis: CreditBasis = Field(description=(
        "Why the minutes are credited without being logged here."))
    work_process: str | None = Field(None, min_length=1, max_length=200, description=(
        "The program's work process credited, if one."))
    granted_on: Day | None = Field(None, description="Business date of the credit (default today).")


class CreditPreApprenticeship(BaseModel):
    model_config = _forbid({"source_placement_id": "7a1d0c2e-9b8f-4e6d-8c5b-3a2f1e0d9c8b"})
    source_placement_id: UUID = Field(description=(
        "The same learner's completed pre-apprenticeship placement whose approved "
        "on-the-job minutes are credited (each source once)."))
    granted_on: Day | None = Field(None, description="Business date of the credit (default today).")


class PlacementOut(BaseModel):
    """The placement as the ledger holds it now (read from its events, not a projection)."""

    id: UUID
    version: int
    status: str
    organisation_id: str
    opportunity_id: str
    learner_id: str
    supervisor_id: str
    wbl_type: str
    pre_apprenticeship: bool
    starts_on: date
    ends_on: date
    minor_during_placement: bool
    """Under 18 on some day of the placement: a guardian signs, the child-labour rules apply."""
    program_id: str | None
    approach: str | None
    ojl_minutes_required: int
    work_processes: list[str]
    competencies: list[str]
    required_parties: list[str]
    signed_parties: list[str]
    started_on: date | None
    completed_on: date | None
    status_reason: str | None
    approved_minutes: int
    credited_minutes: int
    ojl_minutes_toward_requirement: int
    approved_minutes_by_work_process: dict[str, int]
    competencies_signed_off: dict[str, date]

    @classmethod
    def of(cls, p: Placement) -> PlacementOut:
        return cls(
            id=p.id, version=p.version, status=p.status.value,
            organisation_id=p.organisation_id, opportunity_id=p.opportunity_id,
            learner_id=p.learner_id, supervisor_id=p.supervisor_id, wbl_type=p.wbl_type.value,
            pre_apprenticeship=p.pre_apprenticeship, starts_on=p.starts_on, ends_on=p.ends_on,
            minor_during_placement=p.minor, program_id=p.program_id,
            approach=None if p.approach is None else p.approach.value,
            ojl_minutes_required=p.ojl_minutes_required, work_processes=list(p.work_processes),
            competencies=list(p.competencies), required_parties=p.required_parties,
            signed_parties=sorted(p.signatures), started_on=p.started_on,
            completed_on=p.completed_on, status_reason=p.status_reason,
            approved_minutes=p.approved_minutes(), credited_minutes=p.credited_minutes,
            ojl_minutes_toward_requirement=p.ojl_minutes_toward_requirement,
            approved_minutes_by_work_process=p.approved_minutes_by_work_process(),
            competencies_signed_off=dict(p.signed_off),
        )


def _at(placement_id: UUID) -> str:
    return f"/placements/{placement_id}"


@router.post("", status_code=201, response_model=CommandAccepted)
async def match_learner(body: MatchLearner, ledger: LedgerDep, actor: ActorDep, response: Response,
                        if_match: IfMatch = None, idempotency_key: IdempotencyKey = None
                        ) -> CommandAccepted:
    """Record ``LearnerMatched``: a new placement, in the opportunity's organisation."""
    values = body.model_dump()
    opportunity_id = values.pop("opportunity_id")
    result = await run_command(ledger,
        lambda: ledger.match_learner(actor, opportunity_id,
                                     expected_version=expected_version(if_match), **values))
    return accepted(response, result, _at(result.aggregate_id))


@router.get("/{placement_id}", response_model=PlacementOut)
async def get_placement(placement_id: UUID, ledger: LedgerDep, response: Response
                        ) -> PlacementOut:
    placement = await run_in_threadpool(ledger.get_placement, placement_id)
    response.headers["ETag"] = f'"{placement.version}"'
    return PlacementOut.of(placement)


@router.post("/{placement_id}/agreement-signatures", response_model=CommandAccepted)
async def sign_agreement(placement_id: UUID, body: SignAgreement, ledger: LedgerDep,
                         actor: ActorDep, response: Response, if_match: IfMatch = None,
                         idempotency_key: IdempotencyKey = None) -> CommandAccepted:
    """Record ``AgreementSigned``: each party signs in their own name (a guardian for a
    minor)."""
    result = await run_command(ledger,
        lambda: ledger.sign_agreement(actor, placement_id, party=body.party.value,
                                      signed_on=body.signed_on,
                                      expected_version=expected_version(if_match)))
    return accepted(response, result)


@router.post("/{placement_id}/start", response_model=CommandAccepted)
async def start_placement(placement_id: UUID, body: StartPlacement, ledger: LedgerDep,
                          actor: ActorDep, response: Response, if_match: IfMatch = None,
                          idempotency_key: IdempotencyKey = None) -> CommandAccepted:
    result = await run_command(ledger,
        lambda: ledger.start_placement(actor, placement_id, started_on=body.started_on,
                                       expected_version=expected_version(if_match)))
    return accepted(response, result)


@router.post("/{placement_id}/suspend", response_model=CommandAccepted)
async def suspend_placement(placement_id: UUID, body: ChangeStatus, ledger: LedgerDep,
                            actor: ActorDep, response: Response, if_match: IfMatch = None,
                            idempotency_key: IdempotencyKey = None) -> CommandAccepted:
    result = await run_command(ledger,
        lambda: ledger.suspend_placement(actor, placement_id, reason=body.reason,
                                         suspended_on=body.on,
                                         expected_version=expected_version(if_match)))
    return accepted(response, result)


@router.post("/{placement_id}/reinstate", response_model=CommandAccepted)
async def reinstate_placement(placement_id: UUID, body: ChangeStatus, ledger: LedgerDep,
                              actor: ActorDep, response: Response, if_match: IfMatch = None,
                              idempotency_key: IdempotencyKey = None) -> CommandAccepted:
    result = await run_command(ledger,
        lambda: ledger.reinstate_placement(actor, placement_id, reason=body.reason,
                                           reinstated_on=body.on,
                                           expected_version=expected_version(if_match)))
    return accepted(response, result)


@router.post("/{placement_id}/withdraw", response_model=CommandAccepted)
async def withdraw_placement(placement_id: UUID, body: WithdrawPlacement, ledger: LedgerDep,
                             actor: ActorDep, response: Response, if_match: IfMatch = None,
                             idempotency_key: IdempotencyKey = None) -> CommandAccepted:
    result = await run_command(ledger,
        lambda: ledger.withdraw_placement(actor, placement_id, reason=body.reason,
                                          during_probation=body.during_probation,
                                          withdrawn_on=body.withdrawn_on,
                                          expected_version=expected_version(if_match)))
    return accepted(response, result)


@router.post("/{placement_id}/complete", response_model=CommandAccepted)
async def complete_placement(placement_id: UUID, body: CompletePlacement, ledger: LedgerDep,
                             actor: ActorDep, response: Response, if_match: IfMatch = None,
                             idempotency_key: IdempotencyKey = None) -> CommandAccepted:
    """Record ``PlacementCompleted``; an apprenticeship needs its on-the-job hours."""
    result = await run_command(ledger,
        lambda: ledger.complete_placement(actor, placement_id, completed_on=body.completed_on,
                                          expected_version=expected_version(if_match)))
    return accepted(response, result)


@router.post("/{placement_id}/competency-sign-offs", response_model=CommandAccepted)
async def sign_off_competency(placement_id: UUID, body: SignOffCompetency, ledger: LedgerDep,
                              actor: ActorDep, response: Response, if_match: IfMatch = None,
                              idempotency_key: IdempotencyKey = None) -> CommandAccepted:
    result = await run_command(ledger,
        lambda: ledger.sign_off_competency(actor, placement_id, competency=body.competency,
                                           signed_off_on=body.signed_off_on,
                                           expected_version=expected_version(if_match)))
    return accepted(response, result)


@router.post("/{placement_id}/prior-learning-credits", response_model=CommandAccepted)
async def grant_prior_learning_credit(placement_id: UUID, body: GrantPriorLearningCredit,
                                      ledger: LedgerDep, actor: ActorDep, response: Response,
                                      if_match: IfMatch = None,
                                      idempotency_key: IdempotencyKey = None) -> CommandAccepted:
    result = await run_command(ledger,
        lambda: ledger.grant_prior_learning_credit(
           actor, placement_id, minutes=body.minutes, basis=body.basis.value,
           work_process=body.work_process, granted_on=body.granted_on,
           expected_version=expected_version(if_match)))
    return accepted(response, result)


@router.post("/{placement_id}/pre-apprenticeship-credits", response_model=CommandAccepted)
async def credit_pre_apprenticeship_hours(placement_id: UUID, body: CreditPreApprenticeship,
                                          ledger: LedgerDep, actor: ActorDep, response: Response,
                                          if_match: IfMatch = None,
                                          idempotency_key: IdempotencyKey = None
                                          ) -> CommandAccepted:
    """Count a completed pre-apprenticeship's approved on-the-job hours toward this one."""
    result = await run_command(ledger,
        lambda: ledger.credit_pre_apprenticeship_hours(
           actor, placement_id, source_placement_id=body.source_placement_id,
           granted_on=body.granted_on, expected_version=expected_version(if_match)))
    return accepted(response, result)


class RecordWorkExperienceAgreement(BaseModel):
    """The placement runs under a Work Experience and Career Exploration Program (29 CFR
    570.36) with its written training agreement."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "signed_on": "2027-01-08", "reason": "WECEP agreement with Acme, state-approved"}]})

    signed_on: Day = Field(description="When the WECEP training agreement was signed.")
    reason: Text = Field(description="What the agreement is (kept in the audit trail).")


@router.post("/{placement_id}/work-experience-agreement", response_model=CommandAccepted)
async def record_work_experience_agreement(placement_id: UUID, body: RecordWorkExperienceAgreement,
                                           ledger: LedgerDep, actor: ActorDep, response: Response,
                                           if_match: IfMatch = None,
                                           idempotency_key: IdempotencyKey = None
                                           ) -> CommandAccepted:
    """Record ``WorkExperienceAgreementRecorded``: the learner's school-week limit at this
    placement becomes 23 hours while under 16."""
    result = await run_command(ledger,
        lambda: ledger.record_work_experience_agreement(
           actor, placement_id, signed_on=body.signed_on, reason=body.reason,
           expected_version=expected_version(if_match)))
    return accepted(response, result)
