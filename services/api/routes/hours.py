"""Hour entries: log, approve, reject, correct, bulk approve; list a placement's entries.

29 CFR 29.5(b)(6): sponsors keep adequate records of hours of work and training. Entries
are exact minutes, dated by the day worked, never edited: a correction is a new entry
naming the one it replaces.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from domain.errors import DomainError
from domain.placement.hours import HourEntry, HourKind
from services.api import authz
from services.api.deps import ActorDep, LedgerDep, run_command
from services.api.errors import ProblemError, status_for
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

router = APIRouter(tags=["hours"], responses=PROBLEM_RESPONSES)

Clock = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM, 24-hour clock")
EntryId = Path(min_length=1, max_length=100, description="The hour entry's id.")


class LogHours(BaseModel):
    """Minutes worked or trained on one work date."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "work_date": "2027-02-03", "minutes": 240, "kind": "on_the_job",
        "start_time": "13:00", "end_time": "17:00", "allocations": {"Wiring": 240}}]})

    work_date: Day = Field(description=(
        "The day worked or trained: not in the future, within the placement's dates."))
    minutes: int = Field(ge=1, le=1440, description="Whole minutes (hours are exact).")
    kind: HourKind = Field(HourKind.ON_THE_JOB, description=(
        "On-the-job learning or related instruction, counted apart (29 CFR 29.5(b)(4))."))
    start_time: str | None = Clock
    end_time: str | None = Clock
    allocations: dict[str, int] | None = Field(
        None, max_length=100, description="Minutes per work process of the program.")
    # Whether the work date is a school day or in a school week is not asked: the ledger
    # reads it from the school's calendar (domain/calendar.py), never from the client.


class CorrectHours(LogHours):
    """A new entry that replaces ``entry_id``; the original stays in history."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "reason": "Logged 4 h, worked 3 h", "work_date": "2027-02-03", "minutes": 180,
        "kind": "on_the_job"}]})

    reason: Text = Field(description="Why the entry is corrected.")


class ApproveHours(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"approved_on": "2027-02-04"}]})
    approved_on: Day | None = Field(None, description="Date of approval (default today).")


class RejectHours(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"reason": "Not on the worksite that day"}]})
    reason: Text = Field(description="Why the hours are rejected; the learner sees it.")
    rejected_on: Day | None = Field(None, description="Date of rejection (default today).")


class BulkItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    placement_id: UUID = Field(description="The placement of the entry.")
    entry_id: str = Field(min_length=1, max_length=100, description="The pending entry to approve.")
    expected_version: int | None = Field(None, ge=0, description="As If-Match, per item.")


class BulkApprove(BaseModel):
    """A supervisor approves many pending entries at once (a week's timesheets)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"items": [
        {"placement_id": "5f0c3c1e-8d1e-4a53-9a3c-1f7d2b6c9e10",
         "entry_id": "a1f3d2c4-5b6e-4f70-8a9b-0c1d2e3f4a5b"}]}]})
    items: list[BulkItem] = Field(min_length=1, max_length=200, description=(
        "The entries, each approved or refused on its own."))
    approved_on: Day | None = Field(None, description="Date of approval (default today).")


class BulkOutcome(BaseModel):
    placement_id: UUID
    entry_id: str
    status: int = Field(description="200 approved, or the status of the refusal.")
    version: int | None = None
    position: int | None = None
    problem_type: str | None = None
    detail: str | None = None


class BulkApproved(BaseModel):
    """Each item is its own command: some may be approved and others refused."""

    approved: int
    refused: int
    outcomes: list[BulkOutcome]


class HourEntryOut(BaseModel):
    entry_id: str
    work_date: date
    minutes: int
    kind: str
    start_time: str | None
    end_time: str | None
    allocations: dict[str, int]
    logged_by: str
    school_day: bool = Field(description="Whether the school's calendar held the work date "
                             "as a school day when the entry was logged (the safer reading, "
                             "flagged calendar-missing, where it had no calendar).")
    school_week: bool = Field(description="Whether the work date fell in a school week, "
                              "by the same calendar.")
    status: str
    supersedes: str | None
    superseded_by: str | None = Field(description="The correction that replaced this entry "
                                      "or, for an approved entry, the correction awaiting "
                                      "approval (the entry counts until it is approved).")
    pending_over: str | None = Field(None, description="For a correction awaiting approval: "
                                     "the approved entry that counts until it is approved.")
    child_labour_flags: list[str]
    rejection_reason: str | None = Field(None, description="Why the supervisor rejected "
                                         "the entry (the learner corrects it from this).")
    correction_reason: str | None = Field(None, description="For a correction: why it "
                                          "replaces the entry it supersedes.")

    @classmethod
    def of(cls, e: HourEntry) -> HourEntryOut:
        return cls(
            entry_id=e.entry_id, work_date=e.work_date, minutes=e.minutes, kind=e.kind.value,
            start_time=None if e.start_time is None else e.start_time.strftime("%H:%M"),
            end_time=None if e.end_time is None else e.end_time.strftime("%H:%M"),
            allocations=dict(e.allocations), logged_by=e.logged_by, school_day=e.school_day,
            school_week=e.school_week, status=e.status.value, supersedes=e.supersedes,
            superseded_by=e.superseded_by, pending_over=e.pending_over,
            child_labour_flags=list(e.child_labour_flags),
            rejection_reason=e.rejection_reason, correction_reason=e.correction_reason,
        )


class HoursOut(BaseModel):
    placement_id: UUID
    version: int
    total: int
    entries: list[HourEntryOut]


def _shape(body: LogHours) -> dict[str, Any]:
    values = body.model_dump(exclude={"reason"})
    values["kind"] = body.kind.value
    return values


@router.post("/placements/{placement_id}/hours", status_code=201,
             response_model=CommandAccepted)
async def log_hours(placement_id: UUID, body: LogHours, ledger: LedgerDep, actor: ActorDep,
                    response: Response, if_match: IfMatch = None,
                    idempotency_key: IdempotencyKey = None) -> CommandAccepted:
    """Record ``HoursLogged``; ``created_id`` is the new entry's id."""
    result = await run_command(ledger,
        lambda: ledger.log_hours(actor, placement_id, expected_version=expected_version(if_match),
                                 **_shape(body)))
    return accepted(response, result, f"/placements/{placement_id}/hours")


@router.get("/placements/{placement_id}/hours", response_model=HoursOut)
async def list_hours(
    placement_id: UUID, ledger: LedgerDep, response: Response,
    limit: int | None = Query(None, ge=1, le=5000, description="At most this many entries "
                              "(all when absent), in the order they were logged."),
    offset: int = Query(0, ge=0, description="Entries to skip first."),
) -> HoursOut:
    """The placement's entries from the ledger itself (not a read model): always current.
    ``total`` counts them all; page with ``limit``/``offset`` on long placements."""
    placement = await run_in_threadpool(ledger.get_placement, placement_id)
    response.headers["ETag"] = f'"{placement.version}"'
    entries = list(placement.entries.values())
    page = entries[offset:] if limit is None else entries[offset:offset + limit]
    return HoursOut(placement_id=placement.id, version=placement.version,
                    total=len(entries), entries=[HourEntryOut.of(e) for e in page])


@router.post("/placements/{placement_id}/hours/{entry_id}/approve",
             response_model=CommandAccepted)
async def approve_hours(placement_id: UUID, ledger: LedgerDep, actor: ActorDep, response: Response,
                        entry_id: str = EntryId, body: ApproveHours | None = None,
                        if_match: IfMatch = None, idempotency_key: IdempotencyKey = None
                        ) -> CommandAccepted:
    """Record ``HoursApproved``: only the placement's supervisor, never their own hours."""
    result = await run_command(ledger,
        lambda: ledger.approve_hours(actor, placement_id, entry_id=entry_id,
                                     approved_on=body.approved_on if body else None,
                                     expected_version=expected_version(if_match)))
    return accepted(response, result)


@router.post("/placements/{placement_id}/hours/{entry_id}/reject",
             response_model=CommandAccepted)
async def reject_hours(placement_id: UUID, body: RejectHours, ledger: LedgerDep, actor: ActorDep,
                       response: Response, entry_id: str = EntryId, if_match: IfMatch = None,
                       idempotency_key: IdempotencyKey = None) -> CommandAccepted:
    """Record ``HoursRejected``; the minutes stop counting toward the learner's day."""
    result = await run_command(ledger,
        lambda: ledger.reject_hours(actor, placement_id, entry_id=entry_id, reason=body.reason,
                                    rejected_on=body.rejected_on,
                                    expected_version=expected_version(if_match)))
    return accepted(response, result)


@router.post("/placements/{placement_id}/hours/{entry_id}/correct", status_code=201,
             response_model=CommandAccepted)
async def correct_hours(placement_id: UUID, body: CorrectHours, ledger: LedgerDep, actor: ActorDep,
                        response: Response, entry_id: str = EntryId, if_match: IfMatch = None,
                        idempotency_key: IdempotencyKey = None) -> CommandAccepted:
    """Record ``HoursCorrected``: a new entry (``created_id``) replaces ``entry_id``."""
    result = await run_command(ledger,
        lambda: ledger.correct_hours(actor, placement_id, entry_id=entry_id, reason=body.reason,
                                     expected_version=expected_version(if_match), **_shape(body)))
    return accepted(response, result, f"/placements/{placement_id}/hours")


@router.post("/hours/bulk-approve", response_model=BulkApproved)
def bulk_approve_hours(body: BulkApprove, ledger: LedgerDep, actor: ActorDep,
                       idempotency_key: IdempotencyKey = None) -> BulkApproved:
    """Approve many entries, each as its own command and its own authorisation check (the
    rule of ``approve_hours``). One refusal does not undo the others; the answer lists
    each item's outcome."""
    rule = authz.RULES[authz.APPROVE_HOURS]
    outcomes: list[BulkOutcome] = []
    for item in body.items:
        try:
            authz.check_placement(actor, ledger, item.placement_id, rule, item.entry_id)
            result = ledger.approve_hours(actor, item.placement_id, entry_id=item.entry_id,
                                          approved_on=body.approved_on,
                                          expected_version=item.expected_version)
        except DomainError as error:
            outcomes.append(BulkOutcome(placement_id=item.placement_id, entry_id=item.entry_id,
                                        status=status_for(error),
                                        problem_type=f"/errors/{error.code}",
                                        detail=error.detail))
        except ProblemError as error:
            outcomes.append(BulkOutcome(placement_id=item.placement_id, entry_id=item.entry_id,
                                        status=error.status,
                                        problem_type=f"/errors/{error.code}",
                                        detail=error.detail))
        else:
            outcomes.append(BulkOutcome(placement_id=item.placement_id, entry_id=item.entry_id,
                                        status=200, version=result.version,
                                        position=result.position))
    approved = sum(1 for o in outcomes if o.status == 200)
    return BulkApproved(approved=approved, refused=len(outcomes) - approved, outcomes=outcomes)
