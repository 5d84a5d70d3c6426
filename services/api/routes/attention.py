"""Placements needing attention: what a coordinator's day starts with (issue 17).

An organisation's open placements with no hours for 14 days, approvals pending over 7 days,
minors' hours flagged under the child-labour rules, or dates the school calendar does not
cover; computed when asked from the transcript and audit-trail read models and the
organisation's calendar (``projections/attention.py``, decision 057).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from projections.attention import (
    NO_HOURS_DAYS,
    PENDING_DAYS,
    NeedsAttention,
    Reason,
    placements_needing_attention,
    reason_counts,
)
from services.api.deps import EngineDep, LedgerDep, RuntimeDep, SettingsDep
from services.api.models import PROBLEM_RESPONSES, UtcDateTime
from services.api.routes.transcripts import Limit, MinPosition, Offset, read_your_writes

router = APIRouter(tags=["placements needing attention"], responses=PROBLEM_RESPONSES)


class NeedsAttentionOut(BaseModel):
    placement_id: str
    learner_id: str
    supervisor_id: str
    opportunity_id: str
    title: str | None = Field(description="null until the opportunity's event is read")
    employer_name: str | None
    status: str
    starts_on: date
    ends_on: date
    started_on: date | None
    minor: bool = Field(description="The learner is under 18 on some day of the placement.")
    last_work_date: date | None = Field(description="The latest day with hours logged.")
    overdue_entries: int = Field(description=(
        f"Entries awaiting a decision more than {PENDING_DAYS} days (WBL_APPROVAL_OVERDUE_DAYS) "
        "after they were logged."))
    oldest_overdue_logged_at: UtcDateTime | None
    flags: list[str] = Field(description=(
        "Child-labour flags on the placement's active entries (29 CFR 570.35)."))
    missing_school_years: list[str] = Field(description=(
        "School years the placement reaches that the organisation's calendar lacks."))
    reasons: list[Reason] = Field(description=(
        f"`no-recent-hours` (active, nothing dated in the last {NO_HOURS_DAYS} days), "
        f"`approval-overdue` (pending over {PENDING_DAYS} days, WBL_APPROVAL_OVERDUE_DAYS), "
        "`minor-flagged`, "
        "`calendar-missing`."))

    @classmethod
    def of(cls, item: NeedsAttention) -> NeedsAttentionOut:
        return cls(placement_id=item.placement_id, learner_id=item.learner_id,
                   supervisor_id=item.supervisor_id, opportunity_id=item.opportunity_id,
                   title=item.title, employer_name=item.employer_name, status=item.status,
                   starts_on=item.starts_on, ends_on=item.ends_on, started_on=item.started_on,
                   minor=item.minor, last_work_date=item.last_work_date,
                   overdue_entries=item.overdue_entries,
                   oldest_overdue_logged_at=item.oldest_overdue_logged_at,
                   flags=list(item.flags), missing_school_years=list(item.missing_school_years),
                   reasons=list(item.reasons))


class PlacementsNeedingAttention(BaseModel):
    organisation_id: str
    as_of: UtcDateTime = Field(description="When the reasons were worked out.")
    total: int = Field(description="How many placements match, across every page.")
    counts: dict[str, int] = Field(description=(
        "Placements per reason, before the `reason` filter."))
    limit: int
    offset: int
    placements: list[NeedsAttentionOut]


@router.get("/organisations/{organisation_id}/placements-needing-attention",
            response_model=PlacementsNeedingAttention)
async def placements_needing_attention_of(
    organisation_id: Annotated[str, Path(min_length=1, max_length=100,
                                         description="The school or district.")],
    runtime: RuntimeDep, engine: EngineDep, settings: SettingsDep, ledger: LedgerDep,
    reason: Annotated[Reason | None, Query(description="Only placements with this reason.")
                      ] = None,
    limit: Limit = 100, offset: Offset = 0, min_position: MinPosition = None,
) -> PlacementsNeedingAttention:
    """The organisation's open placements that need a coordinator, the most reasons first."""

    def work() -> PlacementsNeedingAttention:
        read_your_writes(runtime, settings, min_position)
        calendar = ledger.get_calendar(organisation_id)
        years = set(calendar.years) if calendar is not None else set()
        now = datetime.now(UTC)
        with engine.connect() as conn:
            every = placements_needing_attention(
                conn, organisation_id=organisation_id, now=now, recorded_school_years=years,
                pending_days=settings.approval_overdue_days)
        chosen = [a for a in every if reason is None or reason in a.reasons]
        return PlacementsNeedingAttention(
            organisation_id=organisation_id, as_of=now, total=len(chosen),
            counts=reason_counts(every), limit=limit, offset=offset,
            placements=[NeedsAttentionOut.of(a) for a in chosen[offset:offset + limit]])

    return await run_in_threadpool(work)
