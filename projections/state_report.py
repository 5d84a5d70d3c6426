"""The state reporting feed: work-based-learning figures per reporting period and
organisation (state -> district -> school), disaggregated by learner group, with small
cells suppressed. A pure computation over the events up to a cut-off, the organisations
registered by then and the learner profiles as they stood then, so the same cut-off always
gives the same bytes (docs/reporting.md).

Suppression (FERPA, and every state's public-reporting rules): a cell counting fewer than
``min_cell`` learners (but more than none) is suppressed; then complementary cells are
suppressed until no suppressed cell can be derived by subtraction, within a dimension
(groups add up to the total) and across the hierarchy (children add up to their parent).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from domain.learner import LearnerProfile
from projections.envelope import Envelope
from projections.hour_entries import APPROVED, ON_THE_JOB, Entry, evolve_entries

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


def fold_placements(events: Iterable[Envelope]) -> dict[str, PlacementFacts]:
    """What the report needs of each placement, folded from its events."""
    placements: dict[str, PlacementFacts] = {}
    for event in events:
        if event.aggregate_type != "Placement":
            continue
        d = event.data
        if event.event_type == "LearnerMatched":
            placements[event.aggregate_id] = PlacementFacts(
                placement_id=event.aggregate_id, learner_id=str(d["learner_id"]),
                organisation_id=str(d["organisation_id"]), wbl_type=str(d["wbl_type"]),
                apprenticeship=d.get("program_id") is not None and not d.get(
                    "pre_apprenticeship", False))
            continue
        facts = placements.get(event.aggregate_id)
        if facts is None:
            continue
        business_date = date.fromisoformat(str(d["business_date"]))
        if event.event_type == "PlacementStarted":
            facts.started_on = business_date
        elif event.event_type == "PlacementCompleted":
            facts.completed_on = business_date
        elif event.event_type == "CredentialIssued":
            facts.credentials.append(business_date)
        else:
            after = evolve_entries(facts.entries, event)
            if after is not None:
                facts.entries = after
    return placements


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

Key = tuple[str, str, str, str]  # organisation, measure, dimension, group


def _ancestors(org_id: str, organisations: Mapping[str, Organisation]) -> list[str]:
    chain, seen = [org_id], {org_id}
    parent = organisations[org_id].parent_id if org_id in organisations else None
    while parent is not None and parent not in seen:
        chain.append(parent)
        seen.add(parent)
        parent = organisations[parent].parent_id if parent in organisations else None
    return chain


def compute_cells(
    period: ReportingPeriod,
    placements: Mapping[str, PlacementFacts],
    organisations: Mapping[str, Organisation],
    profiles: Mapping[str, LearnerProfile | None],
    dimensions: tuple[str, ...],
) -> dict[Key, Cell]:
    cells: dict[Key, Cell] = defaultdict(Cell)

    def add(org: str, measure: str, learner: str, amount: int,
            wbl_type: str | None = None) -> None:
        profile = profiles.get(learner)
        for o in _ancestors(org, organisations):
            targets = [("all", "all")] + [(dim, _group(profile, dim)) for dim in dimensions]
            if wbl_type is not None:
                targets.append(("wbl_type", wbl_type))
            for dim, group in targets:
                cell = cells[(o, measure, dim, group)]
                cell.learners.add(learner)
                cell.amount += amount

    for p in placements.values():
        if p.started_on is None or p.started_on > period.ends_on:
            continue
        ended = p.completed_on
        if ended is None or ended >= period.starts_on:
            add(p.organisation_id, "participants", p.learner_id, 0, p.wbl_type)
        if period.contains(p.started_on):
            add(p.organisation_id, "placements_started", p.learner_id, 1, p.wbl_type)
        if period.contains(p.completed_on):
            add(p.organisation_id, "placements_completed", p.learner_id, 1, p.wbl_type)
            if p.apprenticeship:
                add(p.organisation_id, "apprenticeship_completions", p.learner_id, 1)
        approved = sum(e.minutes for e in p.entries.values() if e.status == APPROVED
                       and period.contains(date.fromisoformat(e.work_date)))
        if approved:
            add(p.organisation_id, "approved_hours", p.learner_id, approved, p.wbl_type)
        ojl = sum(e.minutes for e in p.entries.values() if e.status == APPROVED
                  and e.kind == ON_THE_JOB and period.contains(date.fromisoformat(e.work_date)))
        if p.apprenticeship and ojl:
            add(p.organisation_id, "apprenticeship_hours", p.learner_id, ojl)
        earned = sum(1 for day in p.credentials if period.contains(day))
        if earned:
            add(p.organisation_id, "credentials_earned", p.learner_id, earned, p.wbl_type)

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
    return dict(cells)


def suppress(cells: dict[Key, Cell], organisations: Mapping[str, Organisation],
             min_cell: int) -> None:
    """Primary suppression of small cells, then complementary suppression until stable."""
    for cell in cells.values():
        if 0 < len(cell.learners) < min_cell:
            cell.suppressed = True
    # A small total hides the whole (organisation, measure).
    for (org, measure, dim, _group), cell in cells.items():
        if dim == "all" and cell.suppressed:
            for (o2, m2, _d, _g), other in cells.items():
                if (o2, m2) == (org, measure):
                    other.suppressed = True

    partitions: list[tuple[Key | None, list[Key]]] = []
    by_dimension: dict[tuple[str, str, str], list[Key]] = defaultdict(list)
    for key in cells:
        org, measure, dim, _group = key
        if dim != "all":
            by_dimension[(org, measure, dim)].append(key)
    for (org, measure, _dim), keys in by_dimension.items():
        partitions.append(((org, measure, "all", "all"), sorted(keys)))
    children: dict[str, list[str]] = defaultdict(list)
    for org in sorted({k[0] for k in cells}):
        parent = organisations[org].parent_id if org in organisations else None
        if parent is not None:
            children[parent].append(org)
    for parent, kids in children.items():
        for (org, measure, dim, group) in [k for k in cells if k[0] == parent]:
            members = [(kid, measure, dim, group) for kid in kids
                       if (kid, measure, dim, group) in cells]
            if members:
                partitions.append(((org, measure, dim, group), members))

    changed = True
    while changed:
        changed = False
        for total_key, members in partitions:
            total = cells.get(total_key) if total_key else None
            hidden = [k for k in members if cells[k].suppressed]
            if len(hidden) != 1 or (total is not None and total.suppressed):
                continue
            candidates = sorted((len(cells[k].learners), k) for k in members
                                if not cells[k].suppressed and cells[k].learners)
            if candidates:
                cells[candidates[0][1]].suppressed = True
            elif total is not None:
                total.suppressed = True
            changed = True


def _value(measure: str, cell: Cell) -> int | str:
    shown = MEASURES[measure]
    if shown == "learners":
        return len(cell.learners)
    if shown == "hours":
        return str((Decimal(cell.amount) / 60).quantize(Decimal("0.01")))
    return cell.amount


def build_report(
    period: ReportingPeriod,
    events: Iterable[Envelope],
    organisations: Mapping[str, Organisation],
    profiles: Mapping[str, LearnerProfile | None],
    *,
    cutoff_position: int,
    cutoff_recorded_at: str,
    min_cell: int = 10,
    other_groups: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The whole report as plain JSON values, with its content hash."""
    dimensions = STANDARD_DIMENSIONS + tuple(other_groups)
    placements = fold_placements(events)
    cells = compute_cells(period, placements, organisations, profiles, dimensions)
    suppress(cells, organisations, min_cell)
    rows = []
    for (org, measure, dim, group), cell in sorted(cells.items()):
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
        hidden = den.suppressed or (num is not None and num.suppressed)
        participated = len(num.learners) if num is not None else 0
        rate = None if hidden else str(
            (Decimal(participated) * 100 / len(den.learners)).quantize(Decimal("0.1")))
        rates.append({"organisation_id": org, "dimension": dim, "group": group,
                      "percent": rate, "suppressed": hidden})
    used = {key[0] for key in cells}
    body: dict[str, Any] = {
        "report": "wbl-state-feed",
        "format_version": 1,
        "period": {"name": period.name, "starts_on": period.starts_on.isoformat(),
                   "ends_on": period.ends_on.isoformat()},
        "cutoff": {"position": cutoff_position, "recorded_at": cutoff_recorded_at},
        "suppression": {"min_cell": min_cell,
                        "method": "primary (1..n-1 learners) + complementary (dimension "
                                  "totals and organisation hierarchy)"},
        "dimensions": list(dimensions),
        "organisations": [
            {"id": o.id, "name": o.name, "kind": o.kind, "parent_id": o.parent_id}
            for o in sorted(organisations.values(), key=lambda o: o.id) if o.id in used
        ],
        "figures": rows,
        "perkins_5s3": rates,
    }
    body["content_hash"] = content_hash(body)
    return body


def canonical(report: Mapping[str, Any]) -> bytes:
    return json.dumps(report, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def content_hash(report: Mapping[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(
        canonical({k: v for k, v in report.items() if k != "content_hash"})).hexdigest()


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
