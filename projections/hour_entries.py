"""The hour entries of one placement, folded from its events (pure, shared by the
transcript and the apprenticeship-hours projections).

An entry is logged, then approved or rejected; a correction adds a new (pending) entry. The
entry it corrects is *superseded* at once when it was pending; stays *rejected* (its minutes
stay in the rejected history) when it was rejected; and stays *approved*, still counted,
when it was approved, until the correction is approved (``HoursApproved.replaces``: then it
is superseded) or rejected (then it stands). Only approved entries count toward hours;
rejected and superseded ones never do (29 CFR 29.5(b)(6): records of hours actually worked
and confirmed). Minutes are integers throughout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.contract.envelope import Envelope
from projections.common import evolved

LOGGED = "logged"
APPROVED = "approved"
REJECTED = "rejected"
SUPERSEDED = "superseded"

ON_THE_JOB = "on_the_job"
RELATED_INSTRUCTION = "related_instruction"

HOUR_EVENTS = frozenset({"HoursLogged", "HoursApproved", "HoursRejected", "HoursCorrected"})


@dataclass(frozen=True)
class Entry:
    entry_id: str
    work_date: str
    minutes: int
    kind: str
    status: str
    allocations: tuple[tuple[str, int], ...]
    supersedes: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.entry_id, "d": self.work_date, "m": self.minutes, "k": self.kind,
            "s": self.status, "a": [list(a) for a in self.allocations], "r": self.supersedes,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Entry:
        return cls(
            entry_id=value["id"], work_date=value["d"], minutes=int(value["m"]), kind=value["k"],
            status=value["s"], allocations=tuple((str(w), int(m)) for w, m in value["a"]),
            supersedes=value["r"],
        )


Entries = Mapping[str, Entry]


def _new_entry(d: Mapping[str, Any], supersedes: str | None) -> Entry:
    allocations = d.get("allocations") or {}
    return Entry(
        entry_id=str(d["entry_id"]), work_date=str(d["business_date"]), minutes=int(d["minutes"]),
        kind=str(d.get("kind", ON_THE_JOB)), status=LOGGED,
        allocations=tuple(sorted((str(w), int(m)) for w, m in allocations.items())),
        supersedes=supersedes,
    )


Change = tuple[Entry | None, Entry]
"""One entry before and after an event (None: the entry is new)."""


def entry_changes(entries: Entries, event: Envelope) -> list[Change] | None:
    """What ``event`` does to the entries it names, in order, or None when it touches none.

    The incremental form of the fold: a projection moves its totals by each change (take
    the entry's minutes out of its old status, add them to the new one), so the cost of an
    event does not depend on how many entries the placement already has. ``entries`` must
    hold every entry the event names (``entry_id``, and ``supersedes`` for a correction);
    the storage classes load exactly those.
    """
    kind = event.event_type
    if kind not in HOUR_EVENTS:
        return None
    d = event.data
    if kind == "HoursLogged":
        new = _new_entry(d, None)
        return [(entries.get(new.entry_id), new)]
    if kind in ("HoursApproved", "HoursRejected"):
        entry = entries.get(str(d["entry_id"]))
        if entry is None:
            return None
        changes: list[Change] = [(entry, evolved(
            entry, status=APPROVED if kind == "HoursApproved" else REJECTED))]
        replaced = entries.get(str(d["replaces"])) if d.get("replaces") else None
        if kind == "HoursApproved" and replaced is not None:
            changes.append((replaced, evolved(replaced, status=SUPERSEDED)))
        return changes
    # HoursCorrected: the new entry is pending; the old one stops counting unless it is the
    # approved entry that stands until the correction is approved (``pending_over``), and a
    # rejected one keeps its status (rejected minutes stay shown).
    changes = []
    old = entries.get(str(d["supersedes"]))
    if old is not None and old.entry_id != d.get("pending_over") and old.status != REJECTED:
        changes.append((old, evolved(old, status=SUPERSEDED)))
    new = _new_entry(d, str(d["supersedes"]))
    before = changes[0][1] if changes and changes[0][1].entry_id == new.entry_id else (
        entries.get(new.entry_id))
    changes.append((before, new))
    return changes


def evolve_entries(entries: Entries, event: Envelope) -> dict[str, Entry] | None:
    """The entries after ``event``, or None when the event does not touch them."""
    changes = entry_changes(entries, event)
    if changes is None:
        return None
    after = dict(entries)
    for _, entry in changes:
        after[entry.entry_id] = entry
    return after


SLOT = {APPROVED: 0, LOGGED: 1, REJECTED: 2}
"""Where an entry's minutes count: approved, pending, rejected; superseded count nowhere."""


def entry_referenced(event: Envelope) -> list[str]:
    """The ids of the stored entries an hour event may need (to move their minutes)."""
    kind = event.event_type
    if kind not in HOUR_EVENTS:
        return []
    d = event.data
    if kind == "HoursCorrected":
        return [str(d["supersedes"]), str(d["entry_id"])]
    if kind == "HoursApproved" and d.get("replaces"):
        return [str(d["entry_id"]), str(d["replaces"])]
    return [str(d["entry_id"])]


@dataclass(frozen=True)
class Totals:
    """Minutes by status for one kind of hours."""

    approved: int = 0
    pending: int = 0
    rejected: int = 0


def totals(entries: Entries, kind: str) -> Totals:
    """Approved, pending and rejected minutes of one kind; superseded entries count nowhere
    (the correction that replaced them counts instead)."""
    approved = pending = rejected = 0
    for e in entries.values():
        if e.kind != kind:
            continue
        if e.status == APPROVED:
            approved += e.minutes
        elif e.status == LOGGED:
            pending += e.minutes
        elif e.status == REJECTED:
            rejected += e.minutes
    return Totals(approved, pending, rejected)


def by_work_process(entries: Entries, names: list[str]) -> dict[str, Totals]:
    """Per work process: approved, pending and rejected minutes allocated to it."""
    sums: dict[str, list[int]] = {name: [0, 0, 0] for name in names}
    slot = {APPROVED: 0, LOGGED: 1, REJECTED: 2}
    for e in entries.values():
        i = slot.get(e.status)
        if i is None or e.kind != ON_THE_JOB:
            continue
        for work_process, minutes in e.allocations:
            sums.setdefault(work_process, [0, 0, 0])[i] += minutes
    return {name: Totals(*v) for name, v in sorted(sums.items())}


def entries_to_json(entries: Entries) -> list[dict[str, Any]]:
    return [entries[k].to_json() for k in sorted(entries)]


def entries_from_json(value: list[Mapping[str, Any]] | None) -> dict[str, Entry]:
    return {e["id"]: Entry.from_json(e) for e in (value or [])}
