"""Transcript notations: every work-based-learning experience of a learner, as a student
information system imports it, and as Open Badges 3.0 / CLR 2.0 documents.

One row per placement (``transcript_experience``), folded from the placement's own events
(which arrive in version order), plus one row per opportunity (``transcript_opportunity``)
holding the title and employer that only ``OpportunityPosted`` carries. The two are joined
when read, never copied at fold time: an opportunity and its placements have different keys,
so a reader may see a placement's partition before the opportunity's (decision 022).

States want experiences on transcripts (DESIGN.md: recognised on transcripts, as digital
badges, or as credit); the notation line is the plain-text form a SIS import takes.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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

from projections.common import dumps, evolved, hours, loads, replace_rows
from projections.entry_rows import fold_placement_rows, make_entry_table
from projections.envelope import Envelope
from projections.hour_entries import (
    ON_THE_JOB,
    RELATED_INSTRUCTION,
    SLOT,
    Change,
    Entry,
    entry_changes,
)
from projections.tables import metadata as shared_metadata

NAME = "transcripts"

CEDS_WBL_TYPES: dict[str, tuple[str, str]] = {
    # CEDS 001499 option -> (notation code, label)
    "Apprenticeship": ("WBL-APPR", "Apprenticeship"),
    "ClinicalWork": ("WBL-CLIN", "Clinical work experience"),
    "CooperativeEducation": ("WBL-COOP", "Cooperative education"),
    "JobShadowing": ("WBL-SHADOW", "Job shadowing"),
    "Mentorship": ("WBL-MENTOR", "Mentorship"),
    "NonPaidInternship": ("WBL-INTERN", "Non-paid internship"),
    "OnTheJob": ("WBL-OJT", "On-the-job training"),
    "PaidInternship": ("WBL-INTERN", "Paid internship"),
    "ServiceLearning": ("WBL-SVC", "Service learning"),
    "SupervisedAgricultural": ("WBL-SAE", "Supervised agricultural experience"),
    "UnpaidInternship": ("WBL-INTERN", "Unpaid internship"),
    "Other": ("WBL-OTHER", "Other work-based learning"),
}
PRE_APPRENTICESHIP_CODE = "WBL-PREAPP"

STATUS_LABELS = {
    "matched": "Matched", "active": "In progress", "suspended": "Suspended",
    "completed": "Completed", "withdrawn": "Withdrawn",
}


# -- tables ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TranscriptTables:
    experience: Table
    opportunity: Table
    entry: Table

    @property
    def all(self) -> list[Table]:
        return [self.experience, self.opportunity, self.entry]


def make_tables(md: MetaData, suffix: str = "") -> TranscriptTables:
    experience = Table(
        f"transcript_experience{suffix}", md,
        Column("placement_id", String(100), primary_key=True),
        Column("learner_id", String(100), nullable=False),
        Column("organisation_id", String(100), nullable=False),
        Column("opportunity_id", String(100), nullable=False),
        Column("supervisor_id", String(100), nullable=False),
        Column("program_id", String(100)),
        Column("wbl_type", String(50), nullable=False),
        Column("pre_apprenticeship", Boolean, nullable=False),
        Column("starts_on", String(10), nullable=False),
        Column("ends_on", String(10), nullable=False),
        Column("matched_on", String(10), nullable=False),
        Column("started_on", String(10)),
        Column("ended_on", String(10)),
        Column("status", String(20), nullable=False),
        Column("status_reason", String(1000)),
        Column("approved_minutes", Integer, nullable=False),
        Column("pending_minutes", Integer, nullable=False),
        Column("rejected_minutes", Integer, nullable=False),
        Column("evaluations", Text, nullable=False),
        Column("credentials", Text, nullable=False),
        Column("competencies_signed_off", Text, nullable=False),
        Column("version", Integer, nullable=False),
        Column("position", BigInteger, nullable=False),
        Index(f"ix_transcript_experience_learner{suffix}", "learner_id", "matched_on"),
        Index(f"ix_transcript_experience_org{suffix}", "organisation_id"),
        Index(f"ix_transcript_experience_supervisor{suffix}", "supervisor_id"),
    )
    opportunity = Table(
        f"transcript_opportunity{suffix}", md,
        Column("opportunity_id", String(100), primary_key=True),
        Column("organisation_id", String(100), nullable=False),
        Column("title", String(500), nullable=False),
        Column("employer_name", String(500), nullable=False),
        Column("wbl_type", String(50), nullable=False),
        Column("occupation_code", String(20)),
        Column("career_pathway", String(200)),
        Column("position", BigInteger, nullable=False),
    )
    entry = make_entry_table(md, f"transcript_hour_entry{suffix}")
    return TranscriptTables(experience, opportunity, entry)


LIVE_TABLES = make_tables(shared_metadata)


# -- the pure fold --------------------------------------------------------------------------


@dataclass(frozen=True)
class ExperienceState:
    placement_id: str
    learner_id: str
    organisation_id: str
    opportunity_id: str
    supervisor_id: str
    program_id: str | None
    wbl_type: str
    pre_apprenticeship: bool
    starts_on: str
    ends_on: str
    matched_on: str
    started_on: str | None = None
    ended_on: str | None = None
    status: str = "matched"
    status_reason: str | None = None
    entries: Mapping[str, Entry] = field(default_factory=dict)
    """The entries the fold has seen: all of them in a pure fold from the first event; in
    storage only those a poll's events name (the rest stay in ``transcript_hour_entry``)."""
    approved_minutes: int = 0
    pending_minutes: int = 0
    rejected_minutes: int = 0
    evaluations: tuple[Mapping[str, Any], ...] = ()
    credentials: tuple[Mapping[str, Any], ...] = ()
    competencies_signed_off: tuple[str, ...] = ()
    version: int = 0
    position: int = 0


def evolve(state: ExperienceState | None, event: Envelope) -> ExperienceState | None:
    """The pure fold of one placement's events into its transcript experience."""
    if event.aggregate_type != "Placement":
        return state
    d = event.data
    kind = event.event_type
    if kind == "LearnerMatched":
        return ExperienceState(
            placement_id=event.aggregate_id, learner_id=d["learner_id"],
            organisation_id=d["organisation_id"], opportunity_id=d["opportunity_id"],
            supervisor_id=d["supervisor_id"], program_id=d.get("program_id"),
            wbl_type=d["wbl_type"], pre_apprenticeship=bool(d.get("pre_apprenticeship")),
            starts_on=d["starts_on"], ends_on=d["ends_on"], matched_on=d["business_date"],
            version=event.aggregate_version, position=event.position,
        )
    if state is None:
        return None
    at = {"version": event.aggregate_version, "position": event.position}
    changes = entry_changes(state.entries, event)
    if changes is not None:
        return _with_entries(state, changes, at)
    s = state
    if kind == "PlacementStarted":
        return evolved(s, status="active", started_on=d["business_date"], **at)
    if kind == "PlacementSuspended":
        return evolved(s, status="suspended", status_reason=d.get("reason"), **at)
    if kind == "PlacementReinstated":
        return evolved(s, status="active", status_reason=d.get("reason"), **at)
    if kind == "PlacementCompleted":
        return evolved(s, status="completed", ended_on=d["business_date"], status_reason=None,
                       **at)
    if kind == "PlacementWithdrawn":
        return evolved(s, status="withdrawn", ended_on=d["business_date"],
                       status_reason=d.get("reason"), **at)
    if kind == "PlacementEvaluated":
        evaluation = {
            "evaluation_id": d["evaluation_id"], "stage": d["stage"],
            "evaluator_role": d["evaluator_role"], "evaluated_on": d["business_date"],
            "scores": dict(sorted(d["scores"].items())),
        }
        return evolved(s, evaluations=(*s.evaluations, evaluation), **at)
    if kind == "CredentialIssued":
        credential = {
            "credential_id": d["credential_id"], "kind": d["kind"], "issuer": d["issuer"],
            "issued_on": d["business_date"], "expires_on": d.get("expires_on"),
        }
        return evolved(s, credentials=(*s.credentials, credential), **at)
    if kind == "CompetencySignedOff":
        return evolved(s, competencies_signed_off=(*s.competencies_signed_off, d["competency"]),
                       **at)
    return evolved(s, **at)


_COUNTED_KINDS = (ON_THE_JOB, RELATED_INSTRUCTION)


def _with_entries(s: ExperienceState, changes: list[Change], at: dict[str, int]
                  ) -> ExperienceState:
    """Move the totals by each change: the entry's minutes leave its old status and join
    its new one (superseded entries count nowhere), so the cost is per event, not per
    entry the placement holds."""
    sums = [s.approved_minutes, s.pending_minutes, s.rejected_minutes]
    entries = dict(s.entries)
    for before, after in changes:
        if before is not None and before.kind in _COUNTED_KINDS and before.status in SLOT:
            sums[SLOT[before.status]] -= before.minutes
        if after.kind in _COUNTED_KINDS and after.status in SLOT:
            sums[SLOT[after.status]] += after.minutes
        entries[after.entry_id] = after
    return evolved(s, entries=entries, approved_minutes=sums[0], pending_minutes=sums[1],
                   rejected_minutes=sums[2], **at)


def _to_row(s: ExperienceState) -> dict[str, Any]:
    return {
        "placement_id": s.placement_id, "learner_id": s.learner_id,
        "organisation_id": s.organisation_id, "opportunity_id": s.opportunity_id,
        "supervisor_id": s.supervisor_id, "program_id": s.program_id, "wbl_type": s.wbl_type,
        "pre_apprenticeship": s.pre_apprenticeship, "starts_on": s.starts_on,
        "ends_on": s.ends_on, "matched_on": s.matched_on, "started_on": s.started_on,
        "ended_on": s.ended_on, "status": s.status, "status_reason": s.status_reason,
        "approved_minutes": s.approved_minutes, "pending_minutes": s.pending_minutes,
        "rejected_minutes": s.rejected_minutes,
        "evaluations": dumps(list(s.evaluations)), "credentials": dumps(list(s.credentials)),
        "competencies_signed_off": dumps(list(s.competencies_signed_off)),
        "version": s.version, "position": s.position,
    }


def _from_row(row: Mapping[str, Any], entries: Mapping[str, Entry]) -> ExperienceState:
    return ExperienceState(
        placement_id=row["placement_id"], learner_id=row["learner_id"],
        organisation_id=row["organisation_id"], opportunity_id=row["opportunity_id"],
        supervisor_id=row["supervisor_id"], program_id=row["program_id"],
        wbl_type=row["wbl_type"], pre_apprenticeship=bool(row["pre_apprenticeship"]),
        starts_on=row["starts_on"], ends_on=row["ends_on"], matched_on=row["matched_on"],
        started_on=row["started_on"], ended_on=row["ended_on"], status=row["status"],
        status_reason=row["status_reason"], entries=entries,
        approved_minutes=row["approved_minutes"], pending_minutes=row["pending_minutes"],
        rejected_minutes=row["rejected_minutes"],
        evaluations=tuple(loads(row["evaluations"])),
        credentials=tuple(loads(row["credentials"])),
        competencies_signed_off=tuple(loads(row["competencies_signed_off"])),
        version=row["version"], position=row["position"],
    )


def opportunity_row(event: Envelope) -> dict[str, Any] | None:
    """The facts of an opportunity a transcript shows (pure)."""
    if event.event_type != "OpportunityPosted":
        return None
    d = event.data
    return {
        "opportunity_id": event.aggregate_id, "organisation_id": d["organisation_id"],
        "title": d["title"], "employer_name": d["employer_name"], "wbl_type": d["wbl_type"],
        "occupation_code": d.get("occupation_code"), "career_pathway": d.get("career_pathway"),
        "position": event.position,
    }


# -- what a transcript shows -----------------------------------------------------------------


@dataclass(frozen=True)
class TranscriptConfig:
    """The state's course code for work-based learning and the credits one experience earns
    (states differ: e.g. 0.5 Carnegie unit per completed internship); configurable per export."""

    course_code: str = "WBL"
    credits: Decimal = Decimal("0.5")
    credits_only_when_completed: bool = True


@dataclass(frozen=True)
class Experience:
    placement_id: str
    learner_id: str
    organisation_id: str
    opportunity_id: str
    supervisor_id: str
    program_id: str | None
    wbl_type: str
    wbl_type_label: str
    notation_code: str
    title: str | None
    employer_name: str | None
    occupation_code: str | None
    starts_on: str
    ends_on: str
    started_on: str | None
    ended_on: str | None
    status: str
    status_label: str
    status_reason: str | None
    approved_minutes: int
    pending_minutes: int
    rejected_minutes: int
    evaluations: list[dict[str, Any]]
    evaluation_summary: str | None
    credentials: list[dict[str, Any]]
    competencies_signed_off: list[str]
    version: int
    position: int

    @property
    def approved_hours(self) -> Decimal:
        return hours(self.approved_minutes)

    @property
    def dates(self) -> tuple[str, str]:
        """First and last day of the experience as recorded (planned end while active)."""
        return (self.started_on or self.starts_on, self.ended_on or self.ends_on)

    def notation(self) -> str:
        """One line a student information system imports, e.g.
        ``WBL-INTERN | Acme Robotics | 2026-01-12..2026-05-22 | 120.0 h | Completed |
        Credential: Certificate (OSHA)``."""
        first, last = self.dates
        parts = [self.notation_code, self.employer_name or "(employer pending)",
                 f"{first}..{last}", f"{hours(self.approved_minutes, '0.1')} h",
                 self.status_label]
        if self.credentials:
            parts.append("Credential: " + "; ".join(
                f"{c['kind']} ({c['issuer']})" for c in self.credentials))
        return " | ".join(parts)

    def credits(self, config: TranscriptConfig) -> Decimal:
        if config.credits_only_when_completed and self.status != "completed":
            return Decimal("0")
        return config.credits


def evaluation_summary(evaluations: Sequence[Mapping[str, Any]]) -> str | None:
    """The last final evaluation (else the last interim one) as a readable line."""
    if not evaluations:
        return None
    finals = [e for e in evaluations if e["stage"] == "final"]
    chosen = (finals or list(evaluations))[-1]
    scores = [int(v) for v in chosen["scores"].values()]
    mean = (Decimal(sum(scores)) / Decimal(len(scores))).quantize(Decimal("0.01"))
    return (f"{chosen['stage'].capitalize()} evaluation {chosen['evaluated_on']} by "
            f"{chosen['evaluator_role']}: {mean}/4 across {len(scores)} "
            f"competenc{'y' if len(scores) == 1 else 'ies'} ({len(evaluations)} evaluation"
            f"{'' if len(evaluations) == 1 else 's'} in all)")


def experience_of(row: Mapping[str, Any]) -> Experience:
    wbl_type = row["wbl_type"]
    code, label = CEDS_WBL_TYPES.get(wbl_type, ("WBL-OTHER", wbl_type))
    if row["pre_apprenticeship"]:
        code, label = PRE_APPRENTICESHIP_CODE, f"Pre-apprenticeship ({label})"
    evaluations = list(loads(row["evaluations"]))
    return Experience(
        placement_id=row["placement_id"], learner_id=row["learner_id"],
        organisation_id=row["organisation_id"], opportunity_id=row["opportunity_id"],
        supervisor_id=row["supervisor_id"], program_id=row["program_id"], wbl_type=wbl_type,
        wbl_type_label=label, notation_code=code, title=row.get("title"),
        employer_name=row.get("employer_name"), occupation_code=row.get("occupation_code"),
        starts_on=row["starts_on"], ends_on=row["ends_on"], started_on=row["started_on"],
        ended_on=row["ended_on"], status=row["status"],
        status_label=STATUS_LABELS.get(row["status"], row["status"]),
        status_reason=row["status_reason"], approved_minutes=row["approved_minutes"],
        pending_minutes=row["pending_minutes"], rejected_minutes=row["rejected_minutes"],
        evaluations=evaluations, evaluation_summary=evaluation_summary(evaluations),
        credentials=list(loads(row["credentials"])),
        competencies_signed_off=list(loads(row["competencies_signed_off"])),
        version=row["version"], position=row["position"],
    )


CSV_FIELDS = [
    "learner_id", "course_code", "credits", "notation", "wbl_type", "wbl_type_label", "title",
    "employer_name", "first_day", "last_day", "approved_hours", "status", "evaluation_summary",
    "credentials", "placement_id",
]


def export_rows(experiences: Iterable[Experience], config: TranscriptConfig
                ) -> list[dict[str, str]]:
    out = []
    for e in experiences:
        first, last = e.dates
        out.append({
            "learner_id": e.learner_id, "course_code": config.course_code,
            "credits": str(e.credits(config)), "notation": e.notation(),
            "wbl_type": e.wbl_type, "wbl_type_label": e.wbl_type_label,
            "title": e.title or "", "employer_name": e.employer_name or "",
            "first_day": first, "last_day": last, "approved_hours": str(e.approved_hours),
            "status": e.status_label, "evaluation_summary": e.evaluation_summary or "",
            "credentials": "; ".join(f"{c['kind']} ({c['issuer']})" for c in e.credentials),
            "placement_id": e.placement_id,
        })
    return out


def to_csv(experiences: Iterable[Experience], config: TranscriptConfig) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(export_rows(experiences, config))
    return buffer.getvalue()


# -- Open Badges 3.0 and CLR 2.0 -------------------------------------------------------------

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
OB_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
CLR_CONTEXT = "https://purl.imsglobal.org/spec/clr/v2p0/context-2.0.1.json"
URN = "urn:wbl-ledger"
_NAMESPACE = uuid.UUID("6f1d7c2e-8a51-4c0f-9d3e-2b7a4e5c9f10")


def _urn_uuid(value: str) -> str:
    try:
        return f"urn:uuid:{uuid.UUID(value)}"
    except ValueError:
        return f"urn:uuid:{uuid.uuid5(_NAMESPACE, value)}"


def _profile(issuer: str) -> dict[str, Any]:
    return {"id": f"{URN}:issuer:{uuid.uuid5(_NAMESPACE, issuer)}", "type": ["Profile"],
            "name": issuer}


def open_badge(experience: Experience, credential: Mapping[str, Any]) -> dict[str, Any]:
    """An unsigned Open Badges 3.0 ``OpenBadgeCredential`` for one issued credential.

    Shape per the 1EdTech OB 3.0 data model (VC data model 2.0): ``@context``, ``id``,
    ``type``, ``issuer`` (a ``Profile``), ``validFrom``, ``name`` and a ``credentialSubject``
    of type ``AchievementSubject`` holding the ``Achievement``. Not yet present: a ``proof``
    (signing needs the issuer's key and DID; see docs/projections.md).
    """
    what = experience.title or experience.wbl_type_label
    where = f" at {experience.employer_name}" if experience.employer_name else ""
    first, last = experience.dates
    doc: dict[str, Any] = {
        "@context": [VC_CONTEXT, OB_CONTEXT],
        "id": _urn_uuid(str(credential["credential_id"])),
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "issuer": _profile(str(credential["issuer"])),
        "validFrom": f"{credential['issued_on']}T00:00:00Z",
        "name": f"{what}{where}",
        "credentialSubject": {
            "id": f"{URN}:learner:{experience.learner_id}",
            "type": ["AchievementSubject"],
            "achievement": {
                "id": f"{URN}:achievement:{experience.placement_id}:{credential['kind']}",
                "type": ["Achievement"],
                "achievementType": credential["kind"],
                "name": f"{what}{where}",
                "description": (f"{experience.wbl_type_label} ({experience.wbl_type}, CEDS "
                                 f"001499), {first} to {last}, {experience.approved_hours} "
                                 f"approved hours."),
                "criteria": {"narrative": "Completed the work-based-learning experience with "
                                          "a final evaluation recorded in wbl-ledger."},
                "fieldOfStudy": experience.wbl_type_label,
            },
        },
    }
    if experience.occupation_code:
        doc["credentialSubject"]["achievement"]["alignment"] = [{
            "type": ["Alignment"], "targetName": experience.occupation_code,
            "targetUrl": f"https://www.onetonline.org/link/summary/{experience.occupation_code}",
            "targetType": "ceterms:Occupation", "targetCode": experience.occupation_code,
        }]
    if credential.get("expires_on"):
        doc["validUntil"] = f"{credential['expires_on']}T23:59:59Z"
    return doc


def clr(learner_id: str, experiences: Sequence[Experience], *, issuer: str,
        issued_on: str) -> dict[str, Any]:
    """An unsigned CLR 2.0 ``ClrCredential``: the learner's work-based-learning record, each
    issued credential as an embedded ``OpenBadgeCredential``, each experience as an
    ``Achievement`` (with its approved hours as a result) even when no badge was issued."""
    badges = [open_badge(e, c) for e in experiences for c in e.credentials]
    achievements = []
    for e in experiences:
        first, last = e.dates
        achievements.append({
            "id": f"{URN}:experience:{e.placement_id}", "type": ["Achievement"],
            "achievementType": "Fieldwork" if e.wbl_type != "Apprenticeship"
            else "ApprenticeshipCertificate",
            "name": e.notation(),
            "description": f"{e.wbl_type_label}, {first} to {last}: {e.status_label}.",
            "criteria": {"narrative": e.evaluation_summary or "No evaluation recorded."},
        })
    return {
        "@context": [VC_CONTEXT, CLR_CONTEXT, OB_CONTEXT],
        "id": f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'clr/{learner_id}/{issued_on}')}",
        "type": ["VerifiableCredential", "ClrCredential"],
        "issuer": _profile(issuer),
        "validFrom": f"{issued_on}T00:00:00Z",
        "name": f"Work-based learning record of {learner_id}",
        "credentialSubject": {
            "id": f"{URN}:learner:{learner_id}",
            "type": ["ClrSubject"],
            "verifiableCredential": badges,
            "achievement": achievements,
        },
    }


# -- storage --------------------------------------------------------------------------------


class TranscriptProjection:
    """Stores the fold's result: one row per placement, one per opportunity."""

    name = NAME

    def __init__(self, tables: TranscriptTables | None = None) -> None:
        self.tables = tables or LIVE_TABLES

    def apply(self, conn: Connection, event: Envelope) -> None:
        self.apply_many(conn, [event])

    def apply_many(self, conn: Connection, events: Sequence[Envelope]) -> None:
        t = self.tables
        opportunities = [r for r in (opportunity_row(e) for e in events) if r is not None]
        replace_rows(conn, t.opportunity, t.opportunity.c.opportunity_id, opportunities)
        fold_placement_rows(conn, t.experience, t.experience.c.placement_id, t.entry,
                            events, evolve, _from_row, _to_row)

    # -- queries ------------------------------------------------------------------------

    def experiences(
        self, conn: Connection, *, learner_id: str | None = None,
        organisation_id: str | None = None, supervisor_id: str | None = None,
        placement_id: str | None = None, status: str | None = None,
        wbl_type: str | None = None, limit: int = 100, offset: int = 0,
    ) -> list[Experience]:
        x, o = self.tables.experience, self.tables.opportunity
        query = (
            select(x, o.c.title, o.c.employer_name, o.c.occupation_code)
            .select_from(x.outerjoin(o, o.c.opportunity_id == x.c.opportunity_id))
            .order_by(x.c.learner_id, x.c.matched_on, x.c.position)
        )
        for column, value in ((x.c.learner_id, learner_id),
                              (x.c.organisation_id, organisation_id),
                              (x.c.supervisor_id, supervisor_id),
                              (x.c.placement_id, placement_id), (x.c.status, status),
                              (x.c.wbl_type, wbl_type)):
            if value is not None:
                query = query.where(column == value)
        rows = conn.execute(query.limit(limit).offset(offset)).mappings().all()
        return [experience_of(dict(r)) for r in rows]
