"""Apprenticeship programs: a sponsor defines a registered standard (29 CFR 29.5); read it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from domain.program import Approach, summary
from services.api.deps import ActorDep, LedgerDep, run_command
from services.api.models import (
    PROBLEM_RESPONSES,
    CommandAccepted,
    IdempotencyKey,
    Ident,
    IfMatch,
    accepted,
    expected_version,
)

router = APIRouter(prefix="/programs", tags=["apprenticeship programs"],
                   responses=PROBLEM_RESPONSES)


class WageStep(BaseModel):
    model_config = ConfigDict(extra="forbid")
    after_hours: int = Field(ge=0, le=100_000, description=(
        "On-the-job hours after which this step's wage applies."))
    hourly_wage: Decimal = Field(gt=0, max_digits=8, decimal_places=2,
                                 description="Dollars per hour from that point.")


class DefineProgram(BaseModel):
    """The standard as registered: hours by work process, related instruction, wages."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "sponsor_id": "sponsor-ibew-42", "sponsor_name": "IBEW Local 42 JATC",
        "title": "Inside Wireman", "rapids_code": "0159", "onet_code": "47-2111.00",
        "approach": "time_based", "ojl_hours": 8000,
        "related_instruction_hours_per_year": 180,
        "work_processes": {"Residential wiring": 3000, "Commercial wiring": 5000},
        "competencies": [],
        "wage_schedule": [{"after_hours": 0, "hourly_wage": "18.00"},
                          {"after_hours": 2000, "hourly_wage": "21.50"}]}]})

    sponsor_id: Ident
    sponsor_name: str = Field(min_length=1, max_length=300,
                              description="The sponsor's name as registered.")
    title: str = Field(min_length=1, max_length=300, description="The occupation's title.")
    rapids_code: str = Field(min_length=1, max_length=20,
                             description="The occupation's RAPIDS code (29 CFR 29).")
    onet_code: str = Field("", max_length=20, description="The O*NET-SOC code, if known.")
    approach: Approach = Field(description=(
        "How progress is measured (29 CFR 29.5(b)(2)): by hours, by competencies shown, "
        "or both."))
    ojl_hours: int = Field(ge=0, le=100_000, description=(
        "On-the-job learning hours the term requires: at least 2,000 when time-based; "
        "the work processes' targets add up to it."))
    related_instruction_hours_per_year: int = Field(144, ge=0, le=10_000, description=(
        "Hours of related (classroom) instruction a year; 144 is the norm."))
    work_processes: dict[str, int] = Field(min_length=1, max_length=100, description=(
        "Target on-the-job hours per work process (29 CFR 29.5(b)(3)); hours logged are "
        "allocated to these names."))
    competencies: list[str] = Field([], max_length=500, description=(
        "Competencies to demonstrate, each named once; required unless time-based."))
    wage_schedule: list[WageStep] = Field([], max_length=100, description=(
        "The progressively rising wage steps."))
    pre_apprenticeship_hours_count: bool = Field(False, description=(
        "Whether approved on-the-job hours of a completed pre-apprenticeship may be "
        "credited toward this program."))


class ProgramOut(BaseModel):
    id: UUID
    version: int
    sponsor_id: str
    sponsor_name: str
    title: str
    rapids_code: str
    onet_code: str
    approach: str
    ojl_hours: int
    related_instruction_hours_per_year: int
    work_processes: dict[str, int]
    competencies: list[str]
    wage_schedule: list[WageStep]
    pre_apprenticeship_hours_count: bool
    defined_on: date


@router.post("", status_code=201, response_model=CommandAccepted)
async def define_program(body: DefineProgram, ledger: LedgerDep, actor: ActorDep,
                         response: Response, if_match: IfMatch = None,
                         idempotency_key: IdempotencyKey = None) -> CommandAccepted:
    """Record ``ApprenticeshipProgramDefined``."""
    details: dict[str, Any] = body.model_dump()
    details["approach"] = body.approach.value
    result = await run_command(ledger,
        lambda: ledger.define_program(actor, expected_version=expected_version(if_match),
                                      **details))
    return accepted(response, result, f"/programs/{result.aggregate_id}")


@router.get("/{program_id}", response_model=ProgramOut)
async def get_program(program_id: UUID, ledger: LedgerDep, response: Response) -> ProgramOut:
    program = await run_in_threadpool(ledger.get_program, program_id)
    response.headers["ETag"] = f'"{program.version}"'
    return ProgramOut(**summary(program), sponsor_name=program.sponsor_name,
                      wage_schedule=[WageStep(**s) for s in program.wage_schedule],
                      defined_on=program.defined_on)
