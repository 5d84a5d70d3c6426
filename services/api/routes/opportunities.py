"""Opportunities: post one, revise its terms, close it, read them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from domain.opportunity import WBLType
from projections.opportunities import OpportunityProjection, OpportunityView
from services.api.deps import ActorDep, EngineDep, LedgerDep, SettingsDep, run_command
from services.api.errors import ProblemError
from services.api.models import (
    PROBLEM_RESPONSES,
    CommandAccepted,
    IdempotencyKey,
    IfMatch,
    UtcDateTime,
    accepted,
    expected_version,
)
from services.api.read_your_writes import read_your_writes

router = APIRouter(prefix="/opportunities", tags=["opportunities"], responses=PROBLEM_RESPONSES)


class PostOpportunity(BaseModel):
    """An employer's or coordinator's offer of work-based learning."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "organisation_id": "district-042",
                    "title": "Robotics technician intern",
                    "employer_name": "Acme Robotics",
                    "worksite": "12 Foundry Rd, Springfield",
                    "wbl_type": "PaidInternship",
                    "occupation_code": "17-3024.01",
                    "career_pathway": "Advanced Manufacturing",
                    "paid": True,
                    "hourly_wage": "16.50",
                    "capacity": 2,
                    "starts_on": "2027-01-11",
                    "ends_on": "2027-05-21",
                    "minimum_age": 16,
                }
            ]
        },
    )

    organisation_id: str = Field(min_length=1, max_length=100, description=(
        "The organisation offering it: the coordinator's own."))
    title: str = Field(min_length=1, max_length=500, description="The role as learners see it.")
    employer_name: str = Field(min_length=1, max_length=500,
                               description="The employer where the learner works.")
    worksite: str = Field(min_length=1, max_length=500,
                          description="Where the work happens (an address or a site name).")
    wbl_type: WBLType = Field(description=(
        "Work-based-learning type, the CEDS element 001499 option set states report by. "
        "`Apprenticeship` placements must name a registered program."))
    pre_apprenticeship: bool = Field(False, description=(
        "A pre-apprenticeship: it may follow a program, and its approved on-the-job hours "
        "may later count toward an apprenticeship whose program allows it."))
    occupation_code: str | None = Field(None, pattern=r"^\d{2}-\d{4}(\.\d{2})?$",
                                        description="O*NET-SOC code")
    career_pathway: str | None = Field(None, max_length=200, description=(
        "The career cluster or pathway it belongs to, for reports."))
    paid: bool = Field(False, description=(
        "Whether the learner is paid; if so, state `hourly_wage`."))
    hourly_wage: Decimal | None = Field(None, max_digits=8, decimal_places=2, description=(
        "Dollars per hour, exact to the cent; required above zero when paid, refused when "
        "unpaid."))
    capacity: int = Field(1, ge=1, le=10000, description="How many learners it is offered to.")
    starts_on: date = Field(description=(
        "First day; a placement's hours start no earlier, and ages are counted on it."))
    ends_on: date = Field(description="Last day (not before `starts_on`); no hours after it.")
    minimum_age: int | None = Field(None, ge=12, le=99, description=(
        "Youngest age a learner may be on `starts_on`; at least 16 when hazardous."))
    hazardous: bool = Field(False, description=(
        "Work under an FLSA hazardous-occupations order: needs `minimum_age` of 16 or more."))


class ReviseOpportunity(BaseModel):
    """The offer's terms as revised, whole: what later matches copy. Its type and
    organisation stay; placements already matched keep what they were matched with."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "title": "Robotics technician intern", "employer_name": "Acme Robotics",
            "worksite": "14 Foundry Rd, Springfield", "occupation_code": "17-3024.01",
            "career_pathway": "Advanced Manufacturing", "paid": True, "hourly_wage": "17.00",
            "capacity": 3, "starts_on": "2027-01-11", "ends_on": "2027-06-04",
            "minimum_age": 16}]},
    )

    title: str = Field(min_length=1, max_length=500, description="The role as learners see it.")
    employer_name: str = Field(min_length=1, max_length=500,
                               description="The employer where the learner works.")
    worksite: str = Field(min_length=1, max_length=500,
                          description="Where the work happens (an address or a site name).")
    occupation_code: str | None = Field(None, pattern=r"^\d{2}-\d{4}(\.\d{2})?$",
                                        description="O*NET-SOC code")
    career_pathway: str | None = Field(None, max_length=200, description=(
        "The career cluster or pathway it belongs to, for reports."))
    paid: bool = Field(False, description=(
        "Whether the learner is paid; if so, state `hourly_wage`."))
    hourly_wage: Decimal | None = Field(None, max_digits=8, decimal_places=2, description=(
        "Dollars per hour, exact to the cent; required above zero when paid, refused when "
        "unpaid."))
    capacity: int = Field(1, ge=1, le=10000, description="How many learners it is offered to.")
    starts_on: date = Field(description="First day for the placements still to be matched.")
    ends_on: date = Field(description="Last day (not before `starts_on`).")
    minimum_age: int | None = Field(None, ge=12, le=99, description=(
        "Youngest age a learner may be on `starts_on`; at least 16 when hazardous."))
    hazardous: bool = Field(False, description=(
        "Work under an FLSA hazardous-occupations order: needs `minimum_age` of 16 or more."))


class CloseOpportunity(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000, examples=["All places filled"],
                        description="Why it stops taking matches (placements carry on).")


class OpportunityOut(BaseModel):
    id: str
    organisation_id: str
    title: str
    employer_name: str
    worksite: str
    wbl_type: str
    pre_apprenticeship: bool
    occupation_code: str | None
    career_pathway: str | None
    paid: bool
    hourly_wage: Decimal | None
    capacity: int
    starts_on: date
    ends_on: date
    minimum_age: int | None
    hazardous: bool
    status: str
    closed_reason: str | None
    posted_on: date
    version: int
    position: int
    recorded_at: UtcDateTime

    @classmethod
    def of(cls, view: OpportunityView) -> OpportunityOut:
        return cls.model_validate(view, from_attributes=True)


@router.post("", status_code=201, response_model=CommandAccepted)
async def post_opportunity(
          body: PostOpportunity, ledger: LedgerDep, actor: ActorDep, response: Response,
          if_match: IfMatch = None, idempotency_key: IdempotencyKey = None,
      ) -> CommandAccepted:
    """Record ``OpportunityPosted``. Answers the event's position for read-your-writes."""
    result = await run_command(ledger,
        lambda: ledger.post_opportunity(actor, expected_version=expected_version(if_match),
                                        **body.model_dump()))
    return accepted(response, result, f"/opportunities/{result.aggregate_id}")


@router.post("/{opportunity_id}/revise", response_model=CommandAccepted)
async def revise_opportunity(
          opportunity_id: UUID, body: ReviseOpportunity, ledger: LedgerDep, actor: ActorDep,
          response: Response, if_match: IfMatch = None, idempotency_key: IdempotencyKey = None,
      ) -> CommandAccepted:
    """Record ``OpportunityRevised`` (refused when closed, or when nothing changes)."""
    result = await run_command(ledger,
        lambda: ledger.revise_opportunity(actor, opportunity_id,
                                          expected_version=expected_version(if_match),
                                          **body.model_dump()))
    return accepted(response, result, f"/opportunities/{result.aggregate_id}")


@router.post("/{opportunity_id}/close", response_model=CommandAccepted)
async def close_opportunity(
          opportunity_id: UUID, body: CloseOpportunity, ledger: LedgerDep, actor: ActorDep,
          response: Response, if_match: IfMatch = None, idempotency_key: IdempotencyKey = None,
      ) -> CommandAccepted:
    result = await run_command(ledger,
        lambda: ledger.close_opportunity(actor, opportunity_id, reason=body.reason,
                                         expected_version=expected_version(if_match)))
    return accepted(response, result, f"/opportunities/{result.aggregate_id}")


@router.get("/{opportunity_id}", response_model=OpportunityOut)
def get_opportunity(
    opportunity_id: UUID,
    engine: EngineDep,
    ledger: LedgerDep,
    settings: SettingsDep,
    response: Response,
    min_position: Annotated[
        int | None,
        Query(ge=1, le=2**62,
              description="Wait (briefly) until the read model includes this position, "
                                "as answered by a command: read your own writes."),
    ] = None,
) -> OpportunityOut:
    read_your_writes(engine, ledger.recorder, settings.read_wait_timeout_s, min_position,
                     str(opportunity_id))
    with engine.connect() as conn:
        view = OpportunityProjection.get(conn, str(opportunity_id))
    if view is None:
        raise ProblemError(404, "unknown-opportunity", "Unknown id",
                           f"No opportunity with id {opportunity_id} is recorded.",
                           field="opportunity_id")
    response.headers["ETag"] = f'"{view.version}"'
    return OpportunityOut.of(view)


@router.get("", response_model=list[OpportunityOut])
def list_opportunities(
    engine: EngineDep,
    organisation_id: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[Literal["open", "closed"] | None, Query(
        description="Only open (still taking matches) or closed opportunities.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[OpportunityOut]:
    with engine.connect() as conn:
        views = OpportunityProjection.list(conn, organisation_id=organisation_id,
                                           status=status, limit=limit, offset=offset)
    return [OpportunityOut.of(v) for v in views]
