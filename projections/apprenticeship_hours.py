"""Hours toward an apprenticeship, per learner and program.

Registered apprenticeship (29 CFR 29.5(b)(2)-(4)): a time-based term needs at least 2,000
hours of on-the-job learning (OJL), split by the standard's work processes, plus related
instruction (144 hours a year is the norm); competency-based and hybrid terms add
competencies to sign off. Sponsors keep records of hours of work and of training
(29.5(b)(6)), and may credit prior experience or a linked pre-apprenticeship (29.5(b)(12)).

One row per placement (``apprenticeship_hours_placement``) folded from its events, and one
row per program (``apprenticeship_program``) from ``ApprenticeshipProgramDefined``: the work
processes' targets and the related-instruction hours a year live only there, so they are
joined at query time (decision 022). Approved, pending and rejected minutes are kept
apart; corrections replace what they supersede and rejected minutes never count.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)

from domain.contract.canonical import canonical_text
from domain.contract.envelope import Envelope
from projections.common import evolved, hours, load_rows, loads, replace_rows
from projections.entry_rows import fold_placement_rows, make_entry_table
from projections.hour_entries import (
    ON_THE_JOB,
    RELATED_INSTRUCTION,
    SLOT,
    Change,
    Entry,
    entry_changes,
)
from projections.tables import metadata as shared_metadata

NAME = "apprenticeship_hours"
DAYS_PER_PROGRAM_YEAR = 365


@dataclass(frozen=True)
class HoursTables:
    placement: Table
    program: Table
    entry: Table

    @property
    def all(self) -> list[Table]:
        return [self.placement, self.program, self.entry]


def make_tables(md: MetaData, suffix: str = "") -> HoursTables:
    placement = Table(
        f"apprenticeship_hours_placement{suffix}", md,
        Column("placement_id", String(100), primary_key=True),
        Column("learner_id", String(100), nullable=False),
        Column("organisation_id", String(100), nullable=False),
        Column("program_id", String(100)),
        Column("wbl_type", String(50), nullable=False),
        Column("pre_apprenticeship", Boolean, nullable=False),
        Column("approach", String(30)),
        Column("status", String(20), nullable=False),
        Column("starts_on", String(10), nullable=False),
        Column("started_on", String(10)),
        Column("completed_on", String(10)),
        Column("ojl_minutes_required", Integer, nullable=False),
        Column("pre_apprenticeship_hours_count", Boolean, nullable=False),
        Column("approved_ojl_minutes", Integer, nullable=False),
        Column("pending_ojl_minutes", Integer, nullable=False),
        Column("rejected_ojl_minutes", Integer, nullable=False),
        Column("approved_ri_minutes", Integer, nullable=False),
        Column("pending_ri_minutes", Integer, nullable=False),
        Column("rejected_ri_minutes", Integer, nullable=False),
        Column("credited_minutes", Integer, nullable=False),
        Column("credited_pre_apprenticeship_minutes", Integer, nullable=False),
        Column("work_processes", Text, nullable=False),
        Column("related_instruction_by_year", Text, nullable=False),
        Column("credits", Text, nullable=False),
        Column("competencies", Text, nullable=False),
        Column("competencies_signed_off", Text, nullable=False),
        Column("tallies", Text, nullable=False),
        Column("version", Integer, nullable=False),
        Column("position", BigInteger, nullable=False),
        Index(f"ix_apprenticeship_hours_learner{suffix}", "learner_id", "program_id"),
        Index(f"ix_apprenticeship_hours_program{suffix}", "program_id"),
        # A school's or employer's list (``progress(organisation_id=…)``), in its order: at
        # 5 M events the list scanned the learner index, p99 199 ms (decision 070).
        Index(f"ix_apprenticeship_hours_org{suffix}", "organisation_id", "learner_id",
              "program_id", "position"),
    )
    program = Table(
        f"apprenticeship_program{suffix}", md,
        Column("program_id", String(100), primary_key=True),
        Column("sponsor_id", String(100), nullable=False),
        Column("sponsor_name", String(500), nullable=False),
        Column("title", String(500), nullable=False),
        Column("rapids_code", String(50), nullable=False),
        Column("onet_code", String(20), nullable=False),
        Column("approach", String(30), nullable=False),
        Column("ojl_hours", Integer, nullable=False),
        Column("related_instruction_hours_per_year", Integer, nullable=False),
        Column("work_processes", Text, nullable=False),
        Column("competencies", Text, nullable=False),
        Column("pre_apprenticeship_hours_count", Boolean, nullable=False),
        Column("position", BigInteger, nullable=False),
        Index(f"ix_apprenticeship_program_sponsor{suffix}", "sponsor_id"),
    )
    entry = make_entry_table(md, f"apprenticeship_hours_entry{suffix}")
    return HoursTables(placement, program, entry)


LIVE_TABLES = make_tables(shared_metadata)


# -- the pure fold --------------------------------------------------------------------------


@dataclass(frozen=True)
class HoursState:
    placement_id: str
    learner_id: str
    organisation_id: str
    program_id: str | None
    wbl_type: str
    pre_apprenticeship: bool
    approach: str | None
    starts_on: str
    ojl_minutes_required: int
    work_processes: tuple[str, ...]
    competencies: tuple[str, ...]
    pre_apprenticeship_hours_count: bool
    status: str = "matched"
    started_on: str | None = None
    completed_on: str | None = None
    entries: Mapping[str, Entry] = field(default_factory=dict)
    """The entries the fold has seen: all of them in a pure fold from the first event; in
    storage those a poll's events name, and all of a placement starting in that poll."""
    ojl: tuple[int, int, int] = (0, 0, 0)
    """On-the-job minutes: approved, pending, rejected."""
    ri: tuple[int, int, int] = (0, 0, 0)
    """Related-instruction minutes: approved, pending, rejected."""
    by_work_process: Mapping[str, tuple[int, int, int, int]] = field(default_factory=dict)
    """Per work process: approved, pending, rejected minutes and how many entries count."""
    ri_by_year: Mapping[str, tuple[int, int, int, int]] = field(default_factory=dict)
    """Per program year: related-instruction minutes by status and how many entries count."""
    credits: tuple[Mapping[str, Any], ...] = ()
    competencies_signed_off: tuple[str, ...] = ()
    version: int = 0
    position: int = 0


_STATUS = {"PlacementStarted": "active", "PlacementSuspended": "suspended",
           "PlacementReinstated": "active", "PlacementCompleted": "completed",
           "PlacementWithdrawn": "withdrawn"}


def evolve(state: HoursState | None, event: Envelope) -> HoursState | None:
    """The pure fold of one placement's events into its hours record."""
    if event.aggregate_type != "Placement":
        return state
    d = event.data
    kind = event.event_type
    if kind == "LearnerMatched":
        return HoursState(
            placement_id=event.aggregate_id, learner_id=d["learner_id"],
            organisation_id=d["organisation_id"], program_id=d.get("program_id"),
            wbl_type=d["wbl_type"], pre_apprenticeship=bool(d.get("pre_apprenticeship")),
            approach=d.get("approach"), starts_on=d["starts_on"],
            ojl_minutes_required=int(d.get("ojl_minutes_required") or 0),
            work_processes=tuple(d.get("work_processes") or ()),
            competencies=tuple(d.get("competencies") or ()),
            pre_apprenticeship_hours_count=bool(d.get("pre_apprenticeship_hours_count")),
            by_work_process={str(w): (0, 0, 0, 0) for w in d.get("work_processes") or ()},
            version=event.aggregate_version, position=event.position,
        )
    if state is None:
        return None
    at = {"version": event.aggregate_version, "position": event.position}
    entry_moves = entry_changes(state.entries, event)
    if entry_moves is not None:
        return _with_entries(state, entry_moves, at)
    s = state
    if kind in _STATUS:
        changes: dict[str, Any] = {"status": _STATUS[kind], **at}
        if kind == "PlacementStarted":
            changes["started_on"] = d["business_date"]
            # Program years count from the first day: recount related instruction (an
            # empty map unless entries were recorded before the start; the storage class
            # loads every entry of a placement that starts, so this sees them all).
            first_day = d["business_date"]
            ri_by_year: dict[str, list[int]] = {}
            for e in s.entries.values():
                _tally_year(ri_by_year, first_day, e, 1)
            changes["ri_by_year"] = _frozen(ri_by_year)
        if kind == "PlacementCompleted":
            changes["completed_on"] = d["business_date"]
        return evolved(s, **changes)
    if kind == "PriorLearningCreditGranted":
        credit = {"minutes": int(d["minutes"]), "basis": d["basis"],
                  "work_process": d.get("work_process"),
                  "source_placement_id": d.get("source_placement_id"),
                  "granted_on": d["business_date"]}
        return evolved(s, credits=(*s.credits, credit), **at)
    if kind == "CompetencySignedOff":
        return evolved(s, competencies_signed_off=(*s.competencies_signed_off, d["competency"]),
                       **at)
    return evolved(s, **at)


Tally = dict[str, list[int]]


def _frozen(tally: Tally) -> dict[str, tuple[int, int, int, int]]:
    return {k: (v[0], v[1], v[2], v[3]) for k, v in tally.items() if v[3]}


def _tally_year(years: Tally, first_day: str, e: Entry, sign: int) -> None:
    if e.kind != RELATED_INSTRUCTION or e.status not in SLOT:
        return
    year = years.setdefault(str(program_year(first_day, e.work_date)), [0, 0, 0, 0])
    year[SLOT[e.status]] += sign * e.minutes
    year[3] += sign


def _tally_processes(processes: Tally, e: Entry, sign: int) -> None:
    if e.kind != ON_THE_JOB or e.status not in SLOT:
        return
    for work_process, minutes in e.allocations:
        process = processes.setdefault(work_process, [0, 0, 0, 0])
        process[SLOT[e.status]] += sign * minutes
        process[3] += sign


def _with_entries(s: HoursState, changes: list[Change], at: dict[str, int]) -> HoursState:
    """Move the totals by each change (the entry's minutes leave its old status and join
    its new one; superseded entries count nowhere): the cost of an event does not depend
    on how many entries the placement already holds."""
    ojl, ri = list(s.ojl), list(s.ri)
    processes: Tally | None = None
    years: Tally | None = None
    entries = dict(s.entries)
    for before, after in changes:
        for e, sign in ((before, -1), (after, 1)):
            if e is None or e.status not in SLOT:
                continue
            if e.kind == ON_THE_JOB:
                ojl[SLOT[e.status]] += sign * e.minutes
                if e.allocations:
                    if processes is None:
                        processes = {k: list(v) for k, v in s.by_work_process.items()}
                    _tally_processes(processes, e, sign)
            elif e.kind == RELATED_INSTRUCTION:
                ri[SLOT[e.status]] += sign * e.minutes
                if years is None:
                    years = {k: list(v) for k, v in s.ri_by_year.items()}
                _tally_year(years, s.started_on or s.starts_on, e, sign)
        entries[after.entry_id] = after
    changed: dict[str, Any] = {}
    if processes is not None:
        named = set(s.work_processes)
        changed["by_work_process"] = {k: (v[0], v[1], v[2], v[3])
                                      for k, v in processes.items() if v[3] or k in named}
    if years is not None:
        changed["ri_by_year"] = _frozen(years)
    return evolved(s, entries=entries, ojl=(ojl[0], ojl[1], ojl[2]), ri=(ri[0], ri[1], ri[2]),
                   **changed, **at)


def program_year(first_day: str, work_date: str) -> int:
    """Program year of a work date: 1 for the first 365 days from the start, and so on."""
    days = (date.fromisoformat(work_date) - date.fromisoformat(first_day)).days
    return max(days // DAYS_PER_PROGRAM_YEAR, 0) + 1


def related_instruction_by_year(state: HoursState) -> dict[str, list[int]]:
    """Related-instruction minutes per program year: [approved, pending, rejected]."""
    return {year: [a, p, r] for year, (a, p, r, _) in
            sorted(state.ri_by_year.items(), key=lambda kv: int(kv[0]))}


def _to_row(s: HoursState) -> dict[str, Any]:
    return {
        "placement_id": s.placement_id, "learner_id": s.learner_id,
        "organisation_id": s.organisation_id, "program_id": s.program_id,
        "wbl_type": s.wbl_type, "pre_apprenticeship": s.pre_apprenticeship,
        "approach": s.approach, "status": s.status, "starts_on": s.starts_on,
        "started_on": s.started_on, "completed_on": s.completed_on,
        "ojl_minutes_required": s.ojl_minutes_required,
        "pre_apprenticeship_hours_count": s.pre_apprenticeship_hours_count,
        "approved_ojl_minutes": s.ojl[0], "pending_ojl_minutes": s.ojl[1],
        "rejected_ojl_minutes": s.ojl[2], "approved_ri_minutes": s.ri[0],
        "pending_ri_minutes": s.ri[1], "rejected_ri_minutes": s.ri[2],
        "credited_minutes": sum(int(c["minutes"]) for c in s.credits),
        "credited_pre_apprenticeship_minutes": sum(
            int(c["minutes"]) for c in s.credits if c["basis"] == "pre_apprenticeship"),
        "work_processes": canonical_text({k: [v[0], v[1], v[2]]
                                 for k, v in sorted(s.by_work_process.items())}),
        "related_instruction_by_year": canonical_text(related_instruction_by_year(s)),
        "credits": canonical_text(list(s.credits)),
        "competencies": canonical_text(list(s.competencies)),
        "competencies_signed_off": canonical_text(list(s.competencies_signed_off)),
        "tallies": canonical_text({"names": list(s.work_processes),
                          "wp": {k: list(v) for k, v in s.by_work_process.items()},
                          "ri": {k: list(v) for k, v in s.ri_by_year.items()}}),
        "version": s.version, "position": s.position,
    }


def _from_row(row: Mapping[str, Any], entries: Mapping[str, Entry]) -> HoursState:
    tallies = loads(row["tallies"])
    return HoursState(
        placement_id=row["placement_id"], learner_id=row["learner_id"],
        organisation_id=row["organisation_id"], program_id=row["program_id"],
        wbl_type=row["wbl_type"], pre_apprenticeship=bool(row["pre_apprenticeship"]),
        approach=row["approach"], starts_on=row["starts_on"],
        ojl_minutes_required=row["ojl_minutes_required"],
        work_processes=tuple(tallies["names"]),
        competencies=tuple(loads(row["competencies"])),
        pre_apprenticeship_hours_count=bool(row["pre_apprenticeship_hours_count"]),
        status=row["status"], started_on=row["started_on"], completed_on=row["completed_on"],
        entries=entries,
        ojl=(row["approved_ojl_minutes"], row["pending_ojl_minutes"], row["rejected_ojl_minutes"]),
        ri=(row["approved_ri_minutes"], row["pending_ri_minutes"], row["rejected_ri_minutes"]),
        by_work_process={k: (v[0], v[1], v[2], v[3]) for k, v in tallies["wp"].items()},
        ri_by_year={k: (v[0], v[1], v[2], v[3]) for k, v in tallies["ri"].items()},
        credits=tuple(loads(row["credits"])),
        competencies_signed_off=tuple(loads(row["competencies_signed_off"])),
        version=row["version"], position=row["position"],
    )


def program_row(event: Envelope) -> dict[str, Any] | None:
    if event.event_type != "ApprenticeshipProgramDefined":
        return None
    d = event.data
    return {
        "program_id": event.aggregate_id, "sponsor_id": d["sponsor_id"],
        "sponsor_name": d["sponsor_name"], "title": d["title"],
        "rapids_code": d["rapids_code"], "onet_code": d["onet_code"],
        "approach": d["approach"], "ojl_hours": int(d["ojl_hours"]),
        "related_instruction_hours_per_year": int(d["related_instruction_hours_per_year"]),
        "work_processes": canonical_text({k: int(v) for k, v in d["work_processes"].items()}),
        "competencies": canonical_text(list(d.get("competencies") or [])),
        "pre_apprenticeship_hours_count": bool(d.get("pre_apprenticeship_hours_count")),
        "position": event.position,
    }


# -- progress (pure, at query time) ----------------------------------------------------------


@dataclass(frozen=True)
class WorkProcessProgress:
    name: str
    target_minutes: int | None
    approved_minutes: int
    pending_minutes: int
    rejected_minutes: int
    credited_minutes: int
    missing_minutes: int | None


@dataclass(frozen=True)
class YearOfInstruction:
    program_year: int
    target_minutes: int | None
    approved_minutes: int
    pending_minutes: int
    rejected_minutes: int
    missing_minutes: int | None


@dataclass(frozen=True)
class PreApprenticeship:
    placement_id: str
    status: str
    approved_ojl_minutes: int
    credited_minutes: int
    program_counts_it: bool


@dataclass(frozen=True)
class Progress:
    placement_id: str
    learner_id: str
    organisation_id: str
    program_id: str | None
    program_title: str | None
    sponsor_id: str | None
    program_known: bool
    wbl_type: str
    pre_apprenticeship: bool
    approach: str | None
    status: str
    started_on: str | None
    completed_on: str | None
    required_ojl_minutes: int
    approved_ojl_minutes: int
    pending_ojl_minutes: int
    rejected_ojl_minutes: int
    approved_ri_minutes: int
    pending_ri_minutes: int
    rejected_ri_minutes: int
    prior_learning_credit_minutes: int
    pre_apprenticeship_credit_minutes: int
    counted_ojl_minutes: int
    percent_complete: Decimal | None
    work_processes: list[WorkProcessProgress]
    related_instruction: list[YearOfInstruction]
    competencies_missing: list[str]
    pre_apprenticeships: list[PreApprenticeship]
    missing: list[str]
    version: int
    position: int

    @property
    def counted_ojl_hours(self) -> Decimal:
        return hours(self.counted_ojl_minutes)


def progress(row: Mapping[str, Any], program: Mapping[str, Any] | None,
             pre_apprenticeships: Sequence[Mapping[str, Any]] = ()) -> Progress:
    """What counts, what is pending or refused, and what is still missing (pure)."""
    credits = list(loads(row["credits"]))
    credited = int(row["credited_minutes"])
    pre_credit = int(row["credited_pre_apprenticeship_minutes"])
    targets: dict[str, int] = loads(program["work_processes"]) if program else {}
    required = int(program["ojl_hours"]) * 60 if program else int(row["ojl_minutes_required"])
    approach = row["approach"] or (program["approach"] if program else None)
    ri_per_year = int(program["related_instruction_hours_per_year"]) * 60 if program else None
    counted = int(row["approved_ojl_minutes"]) + credited
    missing: list[str] = []

    work_processes = []
    for name, (approved, pending, rejected) in loads(row["work_processes"]).items():
        wp_credit = sum(int(c["minutes"]) for c in credits if c.get("work_process") == name)
        target = targets[name] * 60 if name in targets else None
        gap = None if target is None else max(target - approved - wp_credit, 0)
        work_processes.append(WorkProcessProgress(name, target, approved, pending, rejected,
                                                  wp_credit, gap))
        if gap:
            missing.append(f"work process {name}: {hours(gap)} h")

    instruction = []
    for year, (approved, pending, rejected) in loads(row["related_instruction_by_year"]).items():
        gap = None if ri_per_year is None else max(ri_per_year - approved, 0)
        instruction.append(YearOfInstruction(int(year), ri_per_year, approved, pending,
                                             rejected, gap))
    if ri_per_year and not instruction:
        instruction.append(YearOfInstruction(1, ri_per_year, 0, 0, 0, ri_per_year))
    for y in instruction:
        if y.missing_minutes:
            missing.append(f"related instruction, program year {y.program_year}: "
                           f"{hours(y.missing_minutes)} h")

    signed = set(loads(row["competencies_signed_off"]))
    competencies_missing = [c for c in loads(row["competencies"]) if c not in signed]
    if approach in ("competency_based", "hybrid"):
        missing.extend(f"competency {c}" for c in competencies_missing)
    if approach in ("time_based", "hybrid", None) and required and counted < required:
        missing.insert(0, f"on-the-job learning: {hours(required - counted)} h")

    percent: Decimal | None = None
    if approach == "competency_based":
        wanted = len(loads(row["competencies"]))
        if wanted:
            percent = (Decimal(100) * (wanted - len(competencies_missing)) / wanted)
    elif required:
        percent = Decimal(100) * min(counted, required) / Decimal(required)
    if percent is not None:
        percent = percent.quantize(Decimal("0.1"))
    if program is None and row["program_id"] is not None:
        missing.append("program definition not yet read: work-process and related-"
                       "instruction targets unknown")

    credited_sources = {c.get("source_placement_id") for c in credits}
    linked = [
        PreApprenticeship(
            placement_id=p["placement_id"], status=p["status"],
            approved_ojl_minutes=int(p["approved_ojl_minutes"]),
            credited_minutes=sum(int(c["minutes"]) for c in credits
                                 if c.get("source_placement_id") == p["placement_id"]),
            program_counts_it=bool(row["pre_apprenticeship_hours_count"]),
        )
        for p in pre_apprenticeships
        if p["placement_id"] != row["placement_id"] and (
            p["placement_id"] in credited_sources or row["pre_apprenticeship_hours_count"])
    ]
    return Progress(
        placement_id=row["placement_id"], learner_id=row["learner_id"],
        organisation_id=row["organisation_id"], program_id=row["program_id"],
        program_title=program["title"] if program else None,
        sponsor_id=program["sponsor_id"] if program else None,
        program_known=program is not None, wbl_type=row["wbl_type"],
        pre_apprenticeship=bool(row["pre_apprenticeship"]), approach=approach,
        status=row["status"], started_on=row["started_on"], completed_on=row["completed_on"],
        required_ojl_minutes=required,
        approved_ojl_minutes=int(row["approved_ojl_minutes"]),
        pending_ojl_minutes=int(row["pending_ojl_minutes"]),
        rejected_ojl_minutes=int(row["rejected_ojl_minutes"]),
        approved_ri_minutes=int(row["approved_ri_minutes"]),
        pending_ri_minutes=int(row["pending_ri_minutes"]),
        rejected_ri_minutes=int(row["rejected_ri_minutes"]),
        prior_learning_credit_minutes=credited - pre_credit,
        pre_apprenticeship_credit_minutes=pre_credit, counted_ojl_minutes=counted,
        percent_complete=percent, work_processes=work_processes,
        related_instruction=instruction, competencies_missing=competencies_missing,
        pre_apprenticeships=linked, missing=missing if row["status"] != "completed" else [],
        version=row["version"], position=row["position"],
    )


# -- storage --------------------------------------------------------------------------------


class ApprenticeshipHoursProjection:
    """Stores the fold's result: one row per placement, one per program."""

    name = NAME

    def __init__(self, tables: HoursTables | None = None) -> None:
        self.tables = tables or LIVE_TABLES

    def legacy_row_table(self) -> Table | None:
        """Before decision 025 each placement row held its hour entries."""
        return self.tables.placement

    def program_ids_of(self, conn: Connection, sponsor_id: str) -> list[str]:
        """The programs a sponsor registered."""
        g = self.tables.program
        return [str(r[0]) for r in conn.execute(
            select(g.c.program_id).where(g.c.sponsor_id == sponsor_id))]

    def apply(self, conn: Connection, event: Envelope) -> None:
        self.apply_many(conn, [event])

    def apply_many(self, conn: Connection, events: Sequence[Envelope]) -> None:
        t = self.tables
        programs = [r for r in (program_row(e) for e in events) if r is not None]
        replace_rows(conn, t.program, t.program.c.program_id, programs)
        fold_placement_rows(
            conn, t.placement, t.placement.c.placement_id, t.entry, events, evolve,
            _from_row, _to_row,
            whole={e.aggregate_id for e in events if e.event_type == "PlacementStarted"})

    # -- queries ------------------------------------------------------------------------

    def progress(
        self, conn: Connection, *, learner_id: str | None = None,
        program_id: str | None = None, placement_id: str | None = None,
        organisation_id: str | None = None, sponsor_id: str | None = None,
        status: str | None = None, apprenticeships_only: bool = True,
        limit: int = 100, offset: int = 0, placement_ids: Collection[str] | None = None,
    ) -> list[Progress]:
        p, g = self.tables.placement, self.tables.program
        query = (select(p, g.c.sponsor_id.label("program_sponsor_id"))
                 .select_from(p.outerjoin(g, g.c.program_id == p.c.program_id))
                 .order_by(p.c.learner_id, p.c.program_id, p.c.position))
        for column, value in ((p.c.learner_id, learner_id), (p.c.program_id, program_id),
                              (p.c.placement_id, placement_id),
                              (p.c.organisation_id, organisation_id),
                              (g.c.sponsor_id, sponsor_id), (p.c.status, status)):
            if value is not None:
                query = query.where(column == value)
        if apprenticeships_only:
            query = query.where(p.c.program_id.is_not(None))
        if placement_ids is not None:  # a supervisor's placements
            query = query.where(p.c.placement_id.in_(list(placement_ids)))
        rows = conn.execute(query.limit(limit).offset(offset)).mappings().all()
        program_rows = load_rows(conn, g, g.c.program_id,
                                 (r["program_id"] for r in rows if r["program_id"]))
        learners = sorted({r["learner_id"] for r in rows})
        pre: dict[str, list[dict[str, Any]]] = {}
        if learners:
            for r in conn.execute(select(p).where(p.c.learner_id.in_(learners),
                                                  p.c.pre_apprenticeship.is_(True))).mappings():
                pre.setdefault(r["learner_id"], []).append(dict(r))
        return [progress(dict(r), program_rows.get(r["program_id"]), pre.get(r["learner_id"], []))
                for r in rows]

    def program(self, conn: Connection, program_id: str) -> dict[str, Any] | None:
        g = self.tables.program
        row = conn.execute(select(g).where(g.c.program_id == program_id)).mappings().first()
        return dict(row) if row is not None else None
