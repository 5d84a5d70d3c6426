"""The state reporting feed: work-based-learning figures per reporting period and
organisation (state -> district -> school), disaggregated by learner group, with small
cells suppressed. A pure computation over the events up to a cut-off (the organisation
hierarchy included: ``Organisation`` events, decision 047) and the learner profiles as
they stood then, so the same cut-off always gives the same bytes (docs/reporting.md).

Every figure adds up exactly, so a reader's arithmetic is the arithmetic the suppression
audit models: each learner counts once, under the organisation of their first placement of
the period (ties: the placement id), so schools add up to their district; an organisation
with children and placements of its own shows those as a child ``<id>/own``.

Suppression (FERPA, and every state's public-reporting rules): a cell counting fewer than
``min_cell`` learners (but more than none) is suppressed, then complementary cells until an
integer linear program over everything published leaves every suppressed cell a range at
least ``min_cell`` wide (``projections/suppression.py``, decision 048).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

from domain.contract.canonical import canonical_json
from domain.contract.envelope import Envelope
from domain.learner import LearnerProfile
from projections.hour_entries import APPROVED, HOUR_EVENTS, ON_THE_JOB, Entry, entry_changes
from projections.suppression import Key, suppress

STANDARD_DIMENSIONS = ("sex", "race_ethnicity", "economically_disadvantaged", "disability",
                       "english_learner")
NOT_REPORTED = "NotReported"


@dataclass(frozen=True)
class ReportingPeriod:
    name: str
    starts_on: date
    ends_on: date

    def contains(self, day: date | None) -> bool:
        return day is not None and self.starts_on <= day <= self.ends_on


@dataclass(frozen=True)
class Organisation:
    id: str
    name: str
    kind: str
    parent_id: str | None
    closed: bool = False


OWN = "/own"
"""Suffix of the child that holds an organisation's own placements (not through a child)."""


class HierarchyUnresolved(ValueError):
    """The report names an organisation, or a parent, that no ``OrganisationRegistered``
    event up to the cut-off recorded. Leaving it out would drop its figures from every
    level above it, so the report is refused instead."""


ORGANISATION_EVENTS = frozenset({"OrganisationRegistered", "OrganisationRenamed",
                                 "OrganisationMoved", "OrganisationClosed"})
PLACEMENT_EVENTS = frozenset({"LearnerMatched", "PlacementStarted", "PlacementCompleted",
                              "CredentialIssued"}) | HOUR_EVENTS
REPORT_EVENTS = ORGANISATION_EVENTS | PLACEMENT_EVENTS
"""The only event types a report reads: the store is asked for these alone (decision 066)."""


@dataclass
class PlacementFacts:
    placement_id: str
    learner_id: str
    organisation_id: str
    wbl_type: str
    apprenticeship: bool
    started_on: date | None = None
    completed_on: date | None = None
    entries: dict[str, Entry] = field(default_factory=dict)
    credentials: list[date] = field(default_factory=list)


class HistoryFold:
    """The organisation hierarchy (decision 047) and what the report needs of each
    placement, folded in one pass over the events, which are not kept: the report's memory
    is that of the organisations and placements, not of the history (decision 066)."""

    def __init__(self) -> None:
        self.organisations: dict[str, Organisation] = {}
        self.placements: dict[str, PlacementFacts] = {}
        self._organisation_ids: dict[str, str] = {}

    def apply(self, event: Envelope) -> None:
        if event.aggregate_type == "Organisation":
            self._organisation(event)
        elif event.aggregate_type == "Placement":
            self._placement(event)

    def _organisation(self, event: Envelope) -> None:
        d = event.data
        if event.event_type == "OrganisationRegistered":
            org_id = str(d["organisation_id"])
            parent = d.get("parent_id")
            self.organisations[org_id] = Organisation(
                org_id, str(d["name"]), str(d["kind"]), None if parent is None else str(parent))
            self._organisation_ids[event.aggregate_id] = org_id
            return
        org_id = self._organisation_ids.get(event.aggregate_id, "")
        current = self.organisations.get(org_id)
        if current is None:
            return
        if event.event_type == "OrganisationRenamed":
            self.organisations[org_id] = replace(current, name=str(d["name"]))
        elif event.event_type == "OrganisationMoved":
            parent = d.get("parent_id")
            self.organisations[org_id] = replace(
                current, parent_id=None if parent is None else str(parent))
        elif event.event_type == "OrganisationClosed":
            self.organisations[org_id] = replace(current, closed=True)

    def _placement(self, event: Envelope) -> None:
        d = event.data
        if event.event_type == "LearnerMatched":
            self.placements[event.aggregate_id] = PlacementFacts(
                placement_id=event.aggregate_id, learner_id=str(d["learner_id"]),
                organisation_id=str(d["organisation_id"]), wbl_type=str(d["wbl_type"]),
                apprenticeship=d.get("program_id") is not None and not d.get(
                    "pre_apprenticeship", False))
            return
        facts = self.placements.get(event.aggregate_id)
        if facts is None:
            return
        if event.event_type == "PlacementStarted":
            facts.started_on = date.fromisoformat(str(d["business_date"]))
        elif event.event_type == "PlacementCompleted":
            facts.completed_on = date.fromisoformat(str(d["business_date"]))
        elif event.event_type == "CredentialIssued":
            facts.credentials.append(date.fromisoformat(str(d["business_date"])))
        else:
            # In place, change by change: copying the entries for each hour event made a
            # placement's fold grow with the square of its entries.
            for _, entry in entry_changes(facts.entries, event) or ():
                facts.entries[entry.entry_id] = entry


def fold_history(events: Iterable[Envelope]) -> HistoryFold:
    folded = HistoryFold()
    for event in events:
        folded.apply(event)
    return folded


def fold_organisations(events: Iterable[Envelope]) -> dict[str, Organisation]:
    """The organisation hierarchy as the events up to the cut-off leave it (decision 047)."""
    return fold_history(events).organisations


def fold_placements(events: Iterable[Envelope]) -> dict[str, PlacementFacts]:
    """What the report needs of each placement, folded from its events."""
    return fold_history(events).placements


def _group(profile: LearnerProfile | None, dimension: str) -> str:
    if profile is None:
        return NOT_REPORTED
    if dimension in ("sex", "race_ethnicity"):
        return str(getattr(profile, dimension).value)
    if dimension in ("economically_disadvantaged", "disability", "english_learner"):
        value = getattr(profile, dimension)
        return NOT_REPORTED if value is None else ("Yes" if value else "No")
    return profile.other_groups.get(dimension) or NOT_REPORTED


@dataclass
class Cell:
    learners: set[str] = field(default_factory=set)
    amount: int = 0
    """A count (placements, credentials) or minutes, as the measure says."""
    suppressed: bool = False


# measure -> how its value is shown: "learners" counts learners, "count" counts things,
# "hours" shows minutes as hours with two decimals.
MEASURES = {
    "participants": "learners",
    "placements_started": "count",
    "placements_completed": "count",
    "approved_hours": "hours",
    "credentials_earned": "count",
    "apprenticeship_hours": "hours",
    "apprenticeship_completions": "count",
    "perkins_5s3_concentrators_graduating": "learners",
    "perkins_5s3_participated_in_wbl": "learners",
}


class Hierarchy:
    """The organisations as of the cut-off, with each organisation's own placements under a
    child of their own when it has children (so every parent is the exact sum of its
    children), refusing any organisation it cannot place."""

    def __init__(self, organisations: Mapping[str, Organisation]) -> None:
        self.organisations = dict(organisations)
        self.parents_with_children = {o.parent_id for o in organisations.values()
                                      if o.parent_id is not None}
        self.used: dict[str, Organisation] = {}

    def chain(self, org_id: str) -> list[str]:
        """Where a figure of ``org_id``'s own placements counts: its node, then upwards."""
        if org_id not in self.organisations:
            raise HierarchyUnresolved(
                f"Organisation {org_id} has placements or learners but was not registered "
                "by the cut-off; register it (POST /organisations) and report again.")
        chain: list[str] = []
        if org_id in self.parents_with_children:
            home = self.organisations[org_id]
            own = Organisation(org_id + OWN, f"{home.name} (own placements)", "own", org_id)
            self.used[own.id] = own
            chain.append(own.id)
        seen: set[str] = set()
        current: str | None = org_id
        while current is not None:
            if current in seen:
                raise HierarchyUnresolved(f"The hierarchy above {org_id} has a cycle.")
            seen.add(current)
            found = self.organisations.get(current)
            if found is None:
                raise HierarchyUnresolved(
                    f"Organisation {chain[-1]} names parent {current}, which was not "
                    "registered by the cut-off.")
            self.used[current] = found
            chain.append(current)
            current = found.parent_id
        return chain


def compute_cells(
    period: ReportingPeriod,
    placements: Mapping[str, PlacementFacts],
    organisations: Mapping[str, Organisation],
    profiles: Mapping[str, LearnerProfile | None],
    dimensions: tuple[str, ...],
) -> tuple[dict[Key, Cell], dict[str, Organisation]]:
    """Every cell, and the organisations (with their ``/own`` children) the cells name."""
    cells: dict[Key, Cell] = defaultdict(Cell)
    hierarchy = Hierarchy(organisations)

    def add(org: str, measure: str, learner: str, amount: int,
            wbl_types: Iterable[str] = ()) -> None:
        profile = profiles.get(learner)
        targets = [("all", "all")] + [(dim, _group(profile, dim)) for dim in dimensions]
        targets += [("wbl_type", t) for t in sorted(set(wbl_types))]
        for o in hierarchy.chain(org):
            for dim, group in targets:
                cell = cells[(o, measure, dim, group)]
                cell.learners.add(learner)
                cell.amount += amount

    # Participants: each learner once, under their first placement's organisation, in every
    # work-based-learning type they took part in.
    active: dict[str, list[PlacementFacts]] = defaultdict(list)
    for p in placements.values():
        if p.started_on is None or p.started_on > period.ends_on:
            continue
        if p.completed_on is None or p.completed_on >= period.starts_on:
            active[p.learner_id].append(p)
    for learner, theirs in sorted(active.items()):
        first = min(theirs, key=lambda p: (p.started_on or period.ends_on, p.placement_id))
        add(first.organisation_id, "participants", learner, 0, [p.wbl_type for p in theirs])

    for _pid, p in sorted(placements.items()):
        if p.started_on is None or p.started_on > period.ends_on:
            continue
        if period.contains(p.started_on):
            add(p.organisation_id, "placements_started", p.learner_id, 1, [p.wbl_type])
        if period.contains(p.completed_on):
            add(p.organisation_id, "placements_completed", p.learner_id, 1, [p.wbl_type])
            if p.apprenticeship:
                add(p.organisation_id, "apprenticeship_completions", p.learner_id, 1)
        approved = sum(e.minutes for e in p.entries.values() if e.status == APPROVED
                       and period.contains(date.fromisoformat(e.work_date)))
        if approved:
            add(p.organisation_id, "approved_hours", p.learner_id, approved, [p.wbl_type])
        ojl = sum(e.minutes for e in p.entries.values() if e.status == APPROVED
                  and e.kind == ON_THE_JOB and period.contains(date.fromisoformat(e.work_date)))
        if p.apprenticeship and ojl:
            add(p.organisation_id, "apprenticeship_hours", p.learner_id, ojl)
        earned = sum(1 for day in p.credentials if period.contains(day))
        if earned:
            add(p.organisation_id, "credentials_earned", p.learner_id, earned, [p.wbl_type])

    # Perkins V 5S3: CTE concentrators who graduated in the period, and of them those who
    # took part in work-based learning (a placement started by graduation).
    first_start: dict[str, date] = {}
    for p in placements.values():
        if p.started_on is not None:
            first_start[p.learner_id] = min(first_start.get(p.learner_id, p.started_on),
                                            p.started_on)
    for learner, profile in sorted(profiles.items()):
        if profile is None or not profile.cte_concentrator:
            continue
        if not period.contains(profile.graduated_on):
            continue
        add(profile.organisation_id, "perkins_5s3_concentrators_graduating", learner, 0)
        started = first_start.get(learner)
        if started is not None and profile.graduated_on is not None and \
                started <= profile.graduated_on:
            add(profile.organisation_id, "perkins_5s3_participated_in_wbl", learner, 0)
    return dict(cells), hierarchy.used


def _units(measure: str, cell: Cell) -> int:
    """The cell's value in whole units: learners, things counted, or minutes."""
    return len(cell.learners) if MEASURES[measure] == "learners" else cell.amount


def _value(measure: str, cell: Cell) -> int | str:
    shown = MEASURES[measure]
    if shown == "learners":
        return len(cell.learners)
    if shown == "hours":
        return str((Decimal(cell.amount) / 60).quantize(Decimal("0.01")))
    return cell.amount


METHOD = ("primary: 1 to min_cell-1 learners (and every figure of an organisation's measure "
          "whose total is small); complementary: until an integer linear program over every "
          "published figure (groups add up to totals, children to parents, parts within "
          "wholes; whole numbers; a listed group has at least one learner) leaves every "
          "suppressed figure a range at least min_cell wide (hours: min_cell hours)")


def build_report(
    period: ReportingPeriod,
    events: Iterable[Envelope],
    organisations: Mapping[str, Organisation] | None,
    profiles: Mapping[str, LearnerProfile | None],
    *,
    cutoff_position: int,
    cutoff_recorded_at: str,
    min_cell: int = 10,
    other_groups: tuple[str, ...] = (),
    previous: Mapping[str, Any] | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """The whole report as plain JSON values, with its content hash.

    ``organisations`` None: the hierarchy is folded from the ``Organisation`` events among
    ``events`` (what the service does). ``previous``: the report kept for the same period
    with the latest earlier cut-off; a figure it published that has not changed is known to
    every reader, so the complementary suppression does not count on hiding it.
    ``workers``: processes for the suppression's large groups (decision 078); the report's
    bytes do not depend on it."""
    folded = fold_history(events)
    if organisations is None:
        organisations = folded.organisations
    dimensions = STANDARD_DIMENSIONS + tuple(other_groups)
    placements = folded.placements
    cells, used = compute_cells(period, placements, organisations, profiles, dimensions)
    values = {key: _units(key[1], cell) for key, cell in cells.items()}
    learners = {key: len(cell.learners) for key, cell in cells.items()}
    parents = {o.id: o.parent_id for o in used.values()}
    known: dict[Key, int] = {}
    if previous is not None:
        for row in previous.get("figures", []):
            key = (row["organisation_id"], row["measure"], row["dimension"], row["group"])
            if not row["suppressed"] and key in cells and \
                    row["value"] == _value(key[1], cells[key]):
                known[key] = values[key]
    hidden = suppress(values, learners, parents, MEASURES, min_cell, known, workers=workers)
    rows = []
    for (org, measure, dim, group), cell in sorted(cells.items()):
        cell.suppressed = (org, measure, dim, group) in hidden
        rows.append({
            "organisation_id": org, "measure": measure, "dimension": dim, "group": group,
            "value": None if cell.suppressed else _value(measure, cell),
            "suppressed": cell.suppressed,
        })
    rates = []
    for (org, measure, dim, group), den in sorted(cells.items()):
        if measure != "perkins_5s3_concentrators_graduating":
            continue
        num = cells.get((org, "perkins_5s3_participated_in_wbl", dim, group))
        concealed = den.suppressed or (num is not None and num.suppressed)
        participated = len(num.learners) if num is not None else 0
        rate = None if concealed else str(
            (Decimal(participated) * 100 / len(den.learners)).quantize(Decimal("0.1")))
        rates.append({"organisation_id": org, "dimension": dim, "group": group,
                      "percent": rate, "suppressed": concealed})
    body: dict[str, Any] = {
        "report": "wbl-state-feed",
        "format_version": 2,
        "period": {"name": period.name, "starts_on": period.starts_on.isoformat(),
                   "ends_on": period.ends_on.isoformat()},
        "cutoff": {"position": cutoff_position, "recorded_at": cutoff_recorded_at},
        "suppression": {
            "min_cell": min_cell, "method": METHOD,
            "previous": None if previous is None else {
                "content_hash": previous.get("content_hash"),
                "cutoff_position": previous.get("cutoff", {}).get("position")},
        },
        "measures": dict(MEASURES),
        "dimensions": list(dimensions),
        "organisations": [
            {"id": o.id, "name": o.name, "kind": o.kind, "parent_id": o.parent_id}
            for o in sorted(used.values(), key=lambda o: o.id)
        ],
        "figures": rows,
        "perkins_5s3": rates,
    }
    body["content_hash"] = content_hash(body)
    return body


def content_hash(report: Mapping[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(
        canonical_json({k: v for k, v in report.items() if k != "content_hash"})).hexdigest()


def difference(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Cells whose published value changed between two reports of the same period (late
    corrections, late registrations), in a stable order."""
    def index(report: Mapping[str, Any]) -> dict[tuple[str, str, str, str], Any]:
        return {(r["organisation_id"], r["measure"], r["dimension"], r["group"]): r["value"]
                for r in report["figures"]}

    old, new = index(before), index(after)
    changes = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            org, measure, dim, group = key
            changes.append({"organisation_id": org, "measure": measure, "dimension": dim,
                            "group": group, "before": old.get(key), "after": new.get(key)})
    return changes


def to_csv_rows(report: Mapping[str, Any]) -> list[list[str]]:
    names = {o["id"]: o["name"] for o in report["organisations"]}
    rows = [["period", "organisation_id", "organisation_name", "measure", "dimension",
             "group", "value"]]
    for r in report["figures"]:
        rows.append([report["period"]["name"], r["organisation_id"],
                     names.get(r["organisation_id"], ""), r["measure"], r["dimension"],
                     r["group"], "*" if r["suppressed"] else str(r["value"])])
    return rows
