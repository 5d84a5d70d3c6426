"""What the learner's and the supervisor's pages show about hours, and how the week
timesheet becomes commands (decision 056).

Minutes stay whole numbers everywhere (DESIGN invariant 4): a page shows them as ``h:mm``
and reads ``h:mm`` back into minutes with integer arithmetic, never through a float. What
counts, what is refused and why is the API's to say; this module only arranges its answers
for people to read (weeks, a chart, the fields a refusal concerns).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.web.api_client import Refused
from services.web.parts import TEMPLATES

KINDS: list[tuple[str, str]] = [("on_the_job", "On the job"),
                                ("related_instruction", "Related instruction")]
KIND_LABEL = dict(KINDS)

STATUS_LABEL = {"logged": "Pending", "approved": "Approved", "rejected": "Rejected",
                "superseded": "Replaced by a correction"}
STATUS_FILTER = {"pending": "logged", "approved": "approved", "rejected": "rejected",
                 "superseded": "superseded"}
"""The entries filter's words (what a learner calls them) and the API's statuses."""

ENTRY_FIELDS = {"minutes": "time", "start_time": "start_time", "end_time": "end_time",
                "kind": "kind", "allocations": "allocations", "work_date": "work_date",
                "reason": "reason"}
"""API field of an hour entry -> the page's field it is shown beside."""

PLAIN_WORDS: dict[tuple[str, str], str] = {
    ("minutes", "less_than_equal"): "A day has 24 hours: one entry is at most 24:00.",
    ("minutes", "greater_than_equal"): "Give at least one minute (0:01).",
    ("minutes", "missing"): "Give the time worked (h:mm), or a start and an end time.",
    ("reason", "string_too_short"): "Say why.",
    ("reason", "missing"): "Say why.",
    ("scores", "too_short"): "Score at least one competency.",
}
"""Plain words for the API's validation refusals whose own message speaks in its units (a
limit in minutes where the person typed h:mm); the rule's name stays the API's."""


def today() -> date:
    """The ledger's clock (``Ledger.today``): business dates are UTC dates."""
    return datetime.now(UTC).date()


def hm(minutes: int | None) -> str:
    """450 -> ``7:30``; never a decimal fraction of an hour."""
    if minutes is None:
        return "\u2013"  # an en dash: no value
    sign = "\u2212" if minutes < 0 else ""  # a minus sign
    whole = abs(int(minutes))
    return f"{sign}{whole // 60}:{whole % 60:02d}"


_HM = re.compile(r"^(\d{1,4})(?::([0-5]\d))?$")


def parse_hm(text: str) -> int:
    """``7:30`` -> 450, ``8`` -> 480; ``ValueError`` for anything else (``7.5`` included:
    a decimal hour is exactly what the ledger never stores)."""
    found = _HM.match(text.strip())
    if found is None:
        raise ValueError(text)
    return int(found.group(1)) * 60 + int(found.group(2) or 0)


def parse_minutes(text: str) -> int:
    """Whole minutes, e.g. ``90``; ``ValueError`` otherwise."""
    value = text.strip()
    if not value.isdigit():
        raise ValueError(text)
    return int(value)


def span_minutes(start: str, end: str) -> int | None:
    """Minutes from ``HH:MM`` to ``HH:MM`` on one day (None if either is unreadable)."""
    try:
        first = datetime.strptime(start, "%H:%M")
        last = datetime.strptime(end, "%H:%M")
    except ValueError:
        return None
    return (last.hour * 60 + last.minute) - (first.hour * 60 + first.minute)


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def parse_day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def long_day(day: date | str) -> str:
    """``Monday 1 February 2027`` (an ISO date as the API answers it, or a date)."""
    value = date.fromisoformat(day) if isinstance(day, str) else day
    return f"{value:%A} {value.day} {value:%B %Y}"


def refusal_fields(error: Refused, prefix: str = "", *, fallback: str = "form",
                   names: Mapping[str, str] = ENTRY_FIELDS) -> dict[str, tuple[str, str]]:
    """The API's refusal as page field -> (rule, message): each validation issue beside
    the field it names, a rule's refusal beside its ``field``; what names no field of the
    form goes to ``fallback`` (shown at the top of the form or of the day)."""
    found: dict[str, tuple[str, str]] = {}
    issues = error.problem.get("errors") or []
    for issue in issues:
        api_field = str(issue.get("field", "")).split(".")[0]
        kind = str(issue.get("kind", error.code))
        message = PLAIN_WORDS.get((api_field, kind), str(issue.get("message", error.detail)))
        name = names.get(api_field)
        found.setdefault(prefix + name if name else fallback, (kind, message))
    if not issues:
        api_field = str(error.problem.get("field") or "").split(".")[0]
        name = names.get(api_field)
        found[prefix + name if name else fallback] = (error.code, error.detail)
    return found


# -- the chart of hours per week ------------------------------------------------------------


@dataclass(frozen=True)
class WeekBar:
    monday: date
    on_the_job: int
    related_instruction: int
    pending: int
    scale: int

    @property
    def approved(self) -> int:
        return self.on_the_job + self.related_instruction

    def width(self, minutes: int) -> int:
        """Share of the widest week, in percent of the bar's box (whole numbers)."""
        return 0 if self.scale <= 0 else (100 * minutes) // self.scale

    @property
    def label(self) -> str:
        return f"{self.monday:%d %b %Y}".lstrip("0")


def weekly_bars(entries: Iterable[Mapping[str, Any]], *, first: date | None, last: date
                ) -> list[WeekBar]:
    """Approved minutes per week (on the job, related instruction) and minutes still
    pending, for every week from ``first`` (or the first entry's) to ``last``, newest first.
    Rejected and replaced entries count nowhere, as in the ledger."""
    approved_ojl: dict[date, int] = {}
    approved_ri: dict[date, int] = {}
    pending: dict[date, int] = {}
    days: list[date] = []
    for entry in entries:
        day = date.fromisoformat(str(entry["work_date"]))
        week = monday_of(day)
        minutes = int(entry["minutes"])
        status = entry["status"]
        if status == "approved":
            target = approved_ojl if entry["kind"] == "on_the_job" else approved_ri
            target[week] = target.get(week, 0) + minutes
        elif status == "logged":
            pending[week] = pending.get(week, 0) + minutes
        else:
            continue
        days.append(day)
    start = first or (min(days) if days else None)
    if start is None:
        return []
    if days:
        last = max(last, max(days))
    weeks = []
    week = monday_of(last)
    while week >= monday_of(start):
        weeks.append(week)
        week -= timedelta(days=7)
    scale = max((approved_ojl.get(w, 0) + approved_ri.get(w, 0) + pending.get(w, 0)
                 for w in weeks), default=0)
    return [WeekBar(w, approved_ojl.get(w, 0), approved_ri.get(w, 0), pending.get(w, 0),
                    scale) for w in weeks]


# -- the week timesheet ---------------------------------------------------------------------


@dataclass
class TimesheetDay:
    """One day of the week timesheet: what is logged already, and the fields of a new
    entry (index ``i``: the fields are named ``d{i}-…``)."""

    index: int
    day: date
    entries: list[dict[str, Any]]
    closed: str | None
    """Why no hours can be logged on this day (in the future, outside the placement)."""

    @property
    def prefix(self) -> str:
        return f"d{self.index}-"


def timesheet_days(monday: date, entries: Sequence[Mapping[str, Any]], *,
                   opens: date, ends: date, now: date) -> list[TimesheetDay]:
    rows = []
    for i in range(7):
        day = monday + timedelta(days=i)
        closed = ("in the future" if day > now else
                  "before the placement started" if day < opens else
                  "after the placement ended" if day > ends else None)
        logged = sorted((dict(e) for e in entries if str(e["work_date"]) == day.isoformat()),
                        key=lambda e: (e.get("start_time") or "", e["entry_id"]))
        rows.append(TimesheetDay(i, day, logged, closed))
    return rows


@dataclass
class TimesheetForm:
    """The commands a posted timesheet asks for, or why the page cannot send them."""

    commands: list[tuple[TimesheetDay, dict[str, Any]]] = field(default_factory=list)
    errors: dict[str, tuple[str, str]] = field(default_factory=dict)


def entry_body(values: Mapping[str, str], work_processes: Sequence[str], prefix: str = ""
               ) -> tuple[dict[str, Any], dict[str, tuple[str, str]]]:
    """One entry's command body from the fields ``{prefix}kind``, ``start_time``,
    ``end_time``, ``time`` (h:mm) and ``wp{j}`` (whole minutes per work process). The time
    worked defaults to the span from start to end. Only what cannot be put into the body is
    refused here (an unreadable h:mm, minutes that are not whole); the rules are the API's.
    """
    errors: dict[str, tuple[str, str]] = {}
    body: dict[str, Any] = {"kind": values.get(prefix + "kind") or "on_the_job"}
    start = (values.get(prefix + "start_time") or "").strip()
    end = (values.get(prefix + "end_time") or "").strip()
    if start:
        body["start_time"] = start
    if end:
        body["end_time"] = end
    time_text = (values.get(prefix + "time") or "").strip()
    if time_text:
        try:
            body["minutes"] = parse_hm(time_text)
        except ValueError:
            errors[prefix + "time"] = ("not-h-mm", "Write the time as hours and minutes, "
                                       "e.g. 7:30 (no decimals).")
    elif start and end:
        span = span_minutes(start, end)
        if span is not None:
            body["minutes"] = span
    allocations: dict[str, int] = {}
    for j, name in enumerate(work_processes):
        text = (values.get(f"{prefix}wp{j}") or "").strip()
        if not text:
            continue
        try:
            minutes = parse_minutes(text)
        except ValueError:
            errors[f"{prefix}wp{j}"] = ("not-whole-minutes", "Allocate whole minutes, "
                                        "e.g. 90.")
            continue
        if minutes:
            allocations[name] = minutes
    if allocations:
        body["allocations"] = allocations
    return body, errors


def read_timesheet(values: Mapping[str, str], days: Sequence[TimesheetDay],
                   work_processes: Sequence[str]) -> TimesheetForm:
    """A day with nothing typed in its time, start, end or allocation fields is left out;
    each other open day becomes one ``POST /placements/{id}/hours``."""
    form = TimesheetForm()
    for row in days:
        if row.closed is not None:
            continue
        p = row.prefix
        typed = [values.get(p + name, "").strip() for name in ("time", "start_time", "end_time")]
        typed += [values.get(f"{p}wp{j}", "").strip() for j in range(len(work_processes))]
        if not any(typed):
            continue
        body, errors = entry_body(values, work_processes, p)
        body["work_date"] = row.day.isoformat()
        form.errors.update(errors)
        form.commands.append((row, body))
    if not form.commands and not form.errors:
        form.errors["form"] = ("nothing-to-log", "Fill in the time worked, or a start and an "
                               "end time, on at least one day.")
    return form


def entry_values(entry: Mapping[str, Any], work_processes: Sequence[str]) -> dict[str, str]:
    """An entry's values as the correction form's fields (to start from what was logged)."""
    values = {"work_date": str(entry["work_date"]), "kind": str(entry["kind"]),
              "start_time": entry.get("start_time") or "", "end_time": entry.get("end_time")
              or "", "time": hm(int(entry["minutes"]))}
    allocations = entry.get("allocations") or {}
    for j, name in enumerate(work_processes):
        if name in allocations:
            values[f"wp{j}"] = str(allocations[name])
    return values


TEMPLATES.env.filters["hm"] = hm
TEMPLATES.env.filters["long_day"] = long_day
