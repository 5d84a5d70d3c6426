"""Hour entries: the unit of an apprentice's record of hours of work and training.

29 CFR 29.5(b)(6) asks sponsors to keep "adequate records" of on-the-job learning and
related instruction; auditors re-add those records, so an entry is exact (integer
minutes, never a float), dated by the day worked, and never edited: a correction is a
new entry that names the one it supersedes, and the original stays in history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from domain.errors import RuleViolated

MINUTES_PER_DAY = 24 * 60


class HourKind(StrEnum):
    """On-the-job learning versus related (classroom) instruction: 29 CFR 29.5(b)(4)
    counts them separately, so they are never summed together toward a requirement."""

    ON_THE_JOB = "on_the_job"
    RELATED_INSTRUCTION = "related_instruction"


class EntryStatus(StrEnum):
    LOGGED = "logged"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"


@dataclass(frozen=True)
class HourEntry:
    """One block of time on one work date, as held inside a Placement.

    ``status`` moves logged -> approved | rejected. A correction of a logged entry makes it
    superseded at once; of a rejected one, leaves it rejected (its minutes stay in the
    rejected history) with ``superseded_by`` set; of an approved one, leaves it approved and
    counted, with ``superseded_by`` naming the pending correction, until the correction is
    approved (then superseded) or rejected (then it stands). Only logged and approved
    entries are *active*: they count toward the daily limits and take part in the overlap
    rule.

    **Immutable** (decision 064): a change of status is a new ``HourEntry`` put in the
    placement's ``entries`` in place of the old one (``dataclasses.replace``); the
    allocations are a read-only mapping and the flags a tuple. So a copy of a placement
    shares its entries instead of copying them (``Placement.__deepcopy__``): a command's
    copy of a placement with hundreds of entries costs microseconds, not milliseconds, and
    a refused command, or one that raises halfway, still cannot reach the cached placement's
    entries.
    """

    entry_id: str
    work_date: date
    minutes: int
    kind: HourKind
    start_time: time | None
    end_time: time | None
    allocations: Mapping[str, int]
    logged_by: str
    school_day: bool
    school_week: bool
    status: EntryStatus = EntryStatus.LOGGED
    supersedes: str | None = None
    superseded_by: str | None = None
    child_labour_flags: tuple[str, ...] = ()
    pending_over: str | None = None
    """For a correction awaiting approval: the approved entry that stays counted until the
    correction is approved (then it is superseded) or rejected (then it stands)."""
    logged_at: datetime | None = None
    """When the event that logged (or corrected into) this entry was recorded: how long it
    has waited for the supervisor (approval digests, reminders, overdue approvals). Taken
    from the event's own timestamp, so it is not a field of any event."""
    rejection_reason: str | None = None
    """Why the supervisor rejected the entry (``HoursRejected.reason``): the learner sees it
    beside the entry, to correct it."""
    correction_reason: str | None = None
    """For a correction: why it replaces the entry it supersedes (``HoursCorrected.reason``),
    which the supervisor reads before approving it."""

    def __post_init__(self) -> None:
        # Our own read-only copies of the containers, so that nobody holding the mapping or
        # the list it was made from can change the entry afterwards.
        if not isinstance(self.allocations, MappingProxyType):
            object.__setattr__(self, "allocations", MappingProxyType(dict(self.allocations)))
        if not isinstance(self.child_labour_flags, tuple):
            object.__setattr__(self, "child_labour_flags", tuple(self.child_labour_flags))

    __hash__ = None  # type: ignore[assignment]  # compared by value, never a key

    @property
    def active(self) -> bool:
        return self.status in (EntryStatus.LOGGED, EntryStatus.APPROVED)

    def __deepcopy__(self, memo: dict[int, Any]) -> HourEntry:
        """Nothing in an entry can change: a copy is the entry itself."""
        return self


def parse_kind(value: HourKind | str) -> HourKind:
    try:
        return HourKind(value)
    except ValueError:
        raise RuleViolated(
            f"{value!r} is not a kind of hours; use on_the_job or related_instruction.",
            code="unknown-hour-kind",
            field="kind",
        ) from None


def parse_clock(value: str | None, field_name: str) -> time | None:
    """Clock times travel as "HH:MM" strings so the event body stays plain JSON."""
    if value is None:
        return None
    try:
        parsed = time.fromisoformat(value)
    except ValueError:
        raise RuleViolated(
            f"{value!r} is not a clock time (HH:MM).", code="bad-clock-time", field=field_name
        ) from None
    return parsed.replace(second=0, microsecond=0)


def clock_text(value: time | None) -> str | None:
    return None if value is None else value.strftime("%H:%M")


def check_entry_shape(
    *,
    minutes: int,
    kind: HourKind,
    start_time: time | None,
    end_time: time | None,
    allocations: Mapping[str, int],
    work_processes: frozenset[str],
) -> None:
    """Refuse impossible entries before any rule that compares entries.

    Allocations say which work processes of the apprenticeship standard the minutes
    trained (the sponsor's schedule of work processes, 29 CFR 29.5(b)(3)); they may
    leave minutes unallocated but never claim more than the entry's minutes, or the
    per-work-process totals would exceed the hours actually worked.
    """
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise RuleViolated("Minutes are a whole number.", code="minutes-not-integer",
                           field="minutes")
    if not 0 < minutes <= MINUTES_PER_DAY:
        raise RuleViolated(
            f"An entry is between 1 and {MINUTES_PER_DAY} minutes; got {minutes}.",
            code="minutes-out-of-range",
            field="minutes",
        )
    if (start_time is None) != (end_time is None):
        raise RuleViolated(
            "Give both a start and an end time, or neither.",
            code="clock-times-incomplete",
            field="end_time" if end_time is None else "start_time",
        )
    if start_time is not None and end_time is not None:
        if end_time <= start_time:
            raise RuleViolated(
                f"The entry ends ({clock_text(end_time)}) before it starts "
                f"({clock_text(start_time)}).",
                code="clock-times-reversed",
                field="end_time",
            )
        if minutes > _span_minutes(start_time, end_time):
            raise RuleViolated(
                f"{minutes} minutes do not fit between {clock_text(start_time)} and "
                f"{clock_text(end_time)}.",
                code="minutes-exceed-clock-time",
                field="minutes",
            )
    if allocations and kind is not HourKind.ON_THE_JOB:
        raise RuleViolated(
            "Only on-the-job minutes are allocated to work processes.",
            code="allocation-on-related-instruction",
            field="allocations",
        )
    for work_process, allocated in allocations.items():
        if work_process not in work_processes:
            raise RuleViolated(
                f"{work_process!r} is not a work process of this placement's program.",
                code="unknown-work-process",
                field="allocations",
            )
        if isinstance(allocated, bool) or not isinstance(allocated, int) or allocated <= 0:
            raise RuleViolated(
                f"Minutes allocated to {work_process!r} must be a whole number above zero.",
                code="allocation-not-positive",
                field="allocations",
            )
    if sum(allocations.values()) > minutes:
        raise RuleViolated(
            f"The allocations add up to {sum(allocations.values())} minutes, more than the "
            f"{minutes} minutes logged.",
            code="allocation-exceeds-minutes",
            field="allocations",
        )


def overlaps(a: HourEntry, b: HourEntry) -> bool:
    """Whether two entries claim the same time.

    With clock times on both, they overlap when the intervals intersect on the same date,
    whatever their kind: nobody is at the worksite and in class at once. When either has no
    clock times we cannot tell, so the same date and the same kind count as a duplicate;
    a learner who really had two sessions of one kind on one day gives their times.
    """
    if a.work_date != b.work_date:
        return False
    if a.start_time and a.end_time and b.start_time and b.end_time:
        return a.start_time < b.end_time and b.start_time < a.end_time
    return a.kind is b.kind


def _span_minutes(start: time, end: time) -> int:
    return (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
