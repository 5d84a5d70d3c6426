"""Placements needing a coordinator's attention: a query over the transcript and
audit-trail read models. It folds nothing of its own (decision 057): every fact it needs is
already in those two read models, which the projector updates in the same transaction, so
they never disagree with each other.

Four reasons, each something a coordinator acts on:

- ``no-recent-hours``: an active placement with no hours dated in the last 14 days (any
  entry, whatever its outcome), counted from its first day when it has none yet;
- ``approval-overdue``: an entry still awaiting its supervisor's decision more than 7 days
  (``WBL_APPROVAL_OVERDUE_DAYS``) after it was logged: when the store recorded its
  ``HoursLogged``/``HoursCorrected``, read from the audit trail (the work date is only the
  prefilter: nobody logs a future day);
- ``minor-flagged``: an active entry (awaiting a decision or approved) of a minor's
  placement recorded with child-labour flags, because the organisation's policy flags
  rather than refuses hours beyond the FLSA limits for 14- and 15-year-olds (29 CFR 570.35);
  it stays until the entry is corrected or rejected, or the placement ends;
- ``calendar-missing``: a minor's open placement whose dates reach a school year the
  organisation's calendar has not recorded: hours on those dates are held to the safer
  reading (a school day in a school week) and flagged (domain/calendar.py).

Which placements are a minor's comes from their ``LearnerMatched`` audit entries, and the
flags from the hour events', matched on the canonical JSON the audit trail's hashes cover
(sorted keys, no spaces: a format fixed for as long as entries must verify), so the store
filters rows and only the few that match are parsed.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, func, select, tuple_

from domain.calendar import school_year_of
from projections.audit_trail import LIVE_TABLES as AUDIT
from projections.common import chunks, loads
from projections.transcript import LIVE_TABLES as TRANSCRIPT

NO_HOURS_DAYS = 14
PENDING_DAYS = 7
OPEN_STATUSES = ("matched", "active", "suspended")
HOUR_EVENTS = ("HoursLogged", "HoursCorrected")
ACTIVE_ENTRY = ("logged", "approved")
MINOR_MARK = '"minor_during_placement":true'
ENTRY_ID = re.compile(r'"entry_id":"([^"\\]*)"')
"""An hour event's entry id, read off its canonical JSON without parsing all of it (the key
is unique in the document: the envelope's own keys are ``event_id``, ``aggregate_id``...)."""
FLAGGED_MARK = '"child_labour_flags":["'


class Reason(StrEnum):
    NO_RECENT_HOURS = "no-recent-hours"
    APPROVAL_OVERDUE = "approval-overdue"
    MINOR_FLAGGED = "minor-flagged"
    CALENDAR_MISSING = "calendar-missing"


@dataclass(frozen=True)
class NeedsAttention:
    placement_id: str
    learner_id: str
    supervisor_id: str
    opportunity_id: str
    title: str | None
    employer_name: str | None
    status: str
    starts_on: date
    ends_on: date
    started_on: date | None
    minor: bool
    last_work_date: date | None
    overdue_entries: int
    oldest_overdue_logged_at: datetime | None
    flags: tuple[str, ...]
    missing_school_years: tuple[str, ...]
    reasons: tuple[Reason, ...]


def school_years_between(first: date, last: date) -> list[str]:
    """Every school year (July 1 to June 30) the dates reach, in order."""
    start = int(school_year_of(first)[:4])
    end = int(school_year_of(last)[:4])
    return [f"{y}-{y + 1}" for y in range(start, end + 1)]


def placements_needing_attention(
    conn: Connection, *, organisation_id: str, now: datetime,
    recorded_school_years: Collection[str], pending_days: int = PENDING_DAYS,
) -> list[NeedsAttention]:
    """The organisation's open placements with at least one reason, those with the most
    reasons first. ``now`` is timezone-aware; ``recorded_school_years`` are the years the
    organisation's calendar holds; ``pending_days`` is when an approval is overdue (the
    deployment's ``WBL_APPROVAL_OVERDUE_DAYS``, as the approval reminders count it)."""
    today = now.date()
    x, o = TRANSCRIPT.experience, TRANSCRIPT.opportunity
    rows = conn.execute(
        select(x.c.placement_id, x.c.learner_id, x.c.supervisor_id, x.c.opportunity_id,
               x.c.status, x.c.starts_on, x.c.ends_on, x.c.started_on, o.c.title,
               o.c.employer_name)
        .select_from(x.outerjoin(o, o.c.opportunity_id == x.c.opportunity_id))
        .where(x.c.organisation_id == organisation_id, x.c.status.in_(OPEN_STATUSES))
    ).mappings().all()
    placements = {str(r["placement_id"]): dict(r) for r in rows}
    ids = sorted(placements)
    active = [p for p in ids if placements[p]["status"] == "active"]
    minors = _minors(conn, ids)
    last_dates = _last_work_dates(conn, active)
    overdue = _overdue(conn, ids, now - timedelta(days=pending_days))
    flags = _flags(conn, sorted(minors))

    found: list[NeedsAttention] = []
    quiet_since = today - timedelta(days=NO_HOURS_DAYS)
    for placement_id in ids:
        r = placements[placement_id]
        starts_on = date.fromisoformat(r["starts_on"])
        ends_on = date.fromisoformat(r["ends_on"])
        started_on = date.fromisoformat(r["started_on"]) if r["started_on"] else None
        last = last_dates.get(placement_id)
        reasons: list[Reason] = []
        if r["status"] == "active":
            since = last or started_on or starts_on
            if since < quiet_since:
                reasons.append(Reason.NO_RECENT_HOURS)
        late = overdue.get(placement_id, [])
        if late:
            reasons.append(Reason.APPROVAL_OVERDUE)
        entry_flags = flags.get(placement_id, ())
        if entry_flags:
            reasons.append(Reason.MINOR_FLAGGED)
        missing: tuple[str, ...] = ()
        if placement_id in minors:
            missing = tuple(y for y in school_years_between(starts_on, ends_on)
                            if y not in recorded_school_years)
            if missing:
                reasons.append(Reason.CALENDAR_MISSING)
        if not reasons:
            continue
        found.append(NeedsAttention(
            placement_id=placement_id, learner_id=r["learner_id"],
            supervisor_id=r["supervisor_id"], opportunity_id=r["opportunity_id"],
            title=r["title"], employer_name=r["employer_name"], status=r["status"],
            starts_on=starts_on, ends_on=ends_on, started_on=started_on,
            minor=placement_id in minors, last_work_date=last, overdue_entries=len(late),
            oldest_overdue_logged_at=min(late) if late else None, flags=entry_flags,
            missing_school_years=missing, reasons=tuple(reasons)))
    found.sort(key=lambda a: (-len(a.reasons), a.starts_on, a.placement_id))
    return found


def reason_counts(found: Iterable[NeedsAttention]) -> dict[str, int]:
    counts = {r.value: 0 for r in Reason}
    for item in found:
        for r in item.reasons:
            counts[r.value] += 1
    return counts


def _minors(conn: Connection, placement_ids: Sequence[str]) -> set[str]:
    e = AUDIT.entry
    found: set[str] = set()
    for part in chunks(placement_ids):
        found.update(str(p) for (p,) in conn.execute(
            select(e.c.placement_id).where(e.c.placement_id.in_(part),
                                           e.c.event_type == "LearnerMatched",
                                           e.c.event.contains(MINOR_MARK, autoescape=True))))
    return found


def _last_work_dates(conn: Connection, placement_ids: Sequence[str]) -> dict[str, date]:
    h = TRANSCRIPT.entry
    found: dict[str, date] = {}
    for part in chunks(placement_ids):
        for placement_id, last in conn.execute(
                select(h.c.placement_id, func.max(h.c.work_date))
                .where(h.c.placement_id.in_(part)).group_by(h.c.placement_id)):
            found[str(placement_id)] = date.fromisoformat(last)
    return found


def _overdue(conn: Connection, placement_ids: Sequence[str], cutoff: datetime
             ) -> dict[str, list[datetime]]:
    """Per placement, when each entry still awaiting a decision that was logged before
    ``cutoff`` was logged."""
    h, e = TRANSCRIPT.entry, AUDIT.entry
    waiting: dict[tuple[str, str], str] = {}
    for part in chunks(placement_ids):
        for placement_id, entry_id, work_date in conn.execute(
                select(h.c.placement_id, h.c.entry_id, h.c.work_date)
                .where(h.c.placement_id.in_(part), h.c.status == "logged",
                       h.c.work_date <= cutoff.date().isoformat())):
            waiting[(str(placement_id), str(entry_id))] = str(work_date)
    found: dict[str, list[datetime]] = {}
    if not waiting:
        return found
    candidates = sorted({p for p, _ in waiting})
    dates = sorted(set(waiting.values()))
    # A coarse filter in the store: recorded_at is ISO 8601 text in UTC, so text order is
    # time order; a day's margin keeps it safe whatever the fraction of a second, and the
    # exact comparison below decides. Entries logged since the cutoff are never read.
    logged_before = (cutoff.astimezone(UTC) + timedelta(days=1)).isoformat()
    for part in chunks(candidates):
        for placement_id, recorded_at, event in conn.execute(
                select(e.c.placement_id, e.c.recorded_at, e.c.event)
                .where(e.c.placement_id.in_(part), e.c.event_type.in_(HOUR_EVENTS),
                       # through the placement index: the business-date index would read
                       # every organisation's entries of those dates (coalesce hides it)
                       func.coalesce(e.c.business_date, "").in_(dates),
                       e.c.recorded_at < logged_before)):
            found_id = ENTRY_ID.search(event)
            if found_id is None or (str(placement_id), found_id.group(1)) not in waiting:
                continue
            logged_at = datetime.fromisoformat(recorded_at)
            if logged_at.tzinfo is None:  # the store records in UTC
                logged_at = logged_at.replace(tzinfo=UTC)
            if logged_at < cutoff:
                found.setdefault(str(placement_id), []).append(logged_at)
    return found


def _flags(conn: Connection, placement_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Per placement, the flags of its active flagged entries."""
    e, h = AUDIT.entry, TRANSCRIPT.entry
    flagged: dict[tuple[str, str], list[str]] = {}
    for part in chunks(placement_ids):
        for placement_id, event in conn.execute(
                select(e.c.placement_id, e.c.event)
                .where(e.c.placement_id.in_(part), e.c.event_type.in_(HOUR_EVENTS),
                       e.c.event.contains(FLAGGED_MARK, autoescape=True))):
            data = _data(event)
            flagged[(str(placement_id), str(data.get("entry_id")))] = [
                str(f) for f in data.get("child_labour_flags") or []]
    found: dict[str, set[str]] = {}
    for part in chunks(sorted(flagged), 400):  # only the flagged entries' rows
        for placement_id, entry_id in conn.execute(
                select(h.c.placement_id, h.c.entry_id)
                .where(tuple_(h.c.placement_id, h.c.entry_id).in_(part),
                       h.c.status.in_(ACTIVE_ENTRY))):
            codes = flagged.get((str(placement_id), str(entry_id)))
            if codes:
                found.setdefault(str(placement_id), set()).update(codes)
    return {p: tuple(sorted(codes)) for p, codes in found.items()}


def _data(event: str) -> dict[str, Any]:
    body = loads(event)
    data = body.get("data") if isinstance(body, dict) else None
    return data if isinstance(data, dict) else {}
