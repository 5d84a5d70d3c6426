"""School calendars: the instructional days of each school year, and exceptions.

Whether a work date is a school day, and whether it falls in a school week, decides which
FLSA limits bind a 14- or 15-year-old (29 CFR 570.35). The ledger reads it from the
calendar of the placement's organisation, recorded here as events (``SchoolCalendar``),
never from the client. Calendars are not personal data: every working role may read them.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from services.api.deps import ActorDep, LedgerDep, run_command
from services.api.errors import ProblemError
from services.api.models import (
    PROBLEM_RESPONSES,
    CommandAccepted,
    Day,
    IdempotencyKey,
    IfMatch,
    Text,
    accepted,
    expected_version,
)

router = APIRouter(prefix="/organisations/{organisation_id}/calendar",
                   tags=["school calendars"], responses=PROBLEM_RESPONSES)

OrganisationId = Annotated[str, Path(min_length=1, max_length=100,
                                     description="The school or district.")]


class Break(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200,
                      description="What the school calls it (Winter break, Labor Day).")
    first_day: Day = Field(description="First day without school.")
    last_day: Day = Field(description="Last day without school (same as first_day for one "
                                      "holiday).")


class RecordSchoolYear(BaseModel):
    """A school year's instructional days: weekdays from first_day to last_day, less the
    breaks. Recording the same year again replaces it for every later entry."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "school_year": "2026-2027", "first_day": "2026-08-24", "last_day": "2027-06-11",
        "breaks": [{"name": "Winter break", "first_day": "2026-12-21",
                    "last_day": "2027-01-01"}]}]})

    school_year: str = Field(pattern=r"^\d{4}-\d{4}$",
                             description="July 1 to June 30, written 2026-2027.")
    first_day: Day = Field(description="First instructional day of the year.")
    last_day: Day = Field(description="Last instructional day of the year.")
    breaks: list[Break] = Field(default_factory=list, max_length=200,
                                description="Holidays and breaks between the two.")


class RecordException(BaseModel):
    """One date that differs from its year: a snow day, a make-up day."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "day": "2027-02-03", "school_day": False, "reason": "Snow day: schools closed"}]})

    day: Day = Field(description="The date.")
    school_day: bool = Field(description="Whether school was in session that day.")
    reason: Text = Field(description="Why: kept in the audit trail.")


class SchoolYearOut(BaseModel):
    school_year: str
    first_day: date
    last_day: date
    breaks: list[Break]


class ExceptionOut(BaseModel):
    day: date
    school_day: bool


class CalendarOut(BaseModel):
    organisation_id: str
    version: int
    years: list[SchoolYearOut]
    exceptions: list[ExceptionOut]


class SchoolDayOut(BaseModel):
    """What the ledger applies to hours worked on ``day`` at this organisation."""

    day: date
    school_day: bool
    school_week: bool
    calendar_missing: bool = Field(description="No calendar covers the date: the safer "
                                   "reading (school day, school week) applies and minors' "
                                   "entries are flagged calendar-missing.")


@router.post("/years", response_model=CommandAccepted)
async def record_school_year(organisation_id: OrganisationId, body: RecordSchoolYear,
                             ledger: LedgerDep, actor: ActorDep, response: Response,
                             if_match: IfMatch = None,
                             idempotency_key: IdempotencyKey = None) -> CommandAccepted:
    """Record ``SchoolYearRecorded`` (opening the calendar with ``SchoolCalendarOpened``
    the first time)."""
    result = await run_command(ledger,
        lambda: ledger.record_school_year(
            actor, organisation_id, school_year=body.school_year, first_day=body.first_day,
            last_day=body.last_day, breaks=[b.model_dump() for b in body.breaks],
            expected_version=expected_version(if_match)))
    return accepted(response, result)


@router.post("/exceptions", response_model=CommandAccepted)
async def record_exception(organisation_id: OrganisationId, body: RecordException,
                           ledger: LedgerDep, actor: ActorDep, response: Response,
                           if_match: IfMatch = None,
                           idempotency_key: IdempotencyKey = None) -> CommandAccepted:
    """Record ``SchoolDayExceptionRecorded``: the date is (or is not) a school day."""
    result = await run_command(ledger,
        lambda: ledger.record_school_day_exception(
            actor, organisation_id, day=body.day, school_day=body.school_day,
            reason=body.reason, expected_version=expected_version(if_match)))
    return accepted(response, result)


@router.get("", response_model=CalendarOut)
async def get_calendar(organisation_id: OrganisationId, ledger: LedgerDep,
                       response: Response) -> CalendarOut:
    """The calendar as recorded (from the ledger itself: always current)."""
    calendar = await run_in_threadpool(ledger.get_calendar, organisation_id)
    if calendar is None:
        raise ProblemError(404, "unknown-calendar", "No calendar",
                           f"Organisation {organisation_id} has recorded no calendar.",
                           field="organisation_id")
    response.headers["ETag"] = f'"{calendar.version}"'
    return CalendarOut(
        organisation_id=organisation_id, version=calendar.version,
        years=[SchoolYearOut(school_year=y.name, first_day=y.first_day, last_day=y.last_day,
                             breaks=[Break(name=n, first_day=f, last_day=t)
                                     for n, f, t in y.breaks])
               for _, y in sorted(calendar.years.items())],
        exceptions=[ExceptionOut(day=d, school_day=v)
                    for d, v in sorted(calendar.exceptions.items())])


@router.get("/days/{day}", response_model=SchoolDayOut)
async def school_day(organisation_id: OrganisationId, day: date,
                     ledger: LedgerDep) -> SchoolDayOut:
    """Whether ``day`` is a school day and in a school week, as the hours rules read it."""
    found = await run_in_threadpool(ledger.school_days, organisation_id, day)
    return SchoolDayOut(day=day, school_day=found.school_day, school_week=found.school_week,
                        calendar_missing=found.calendar_missing)
