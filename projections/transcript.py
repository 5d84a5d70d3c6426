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
import hashlib
import io
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

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
    func,
    insert,
    select,
    update,
)

from domain.contract.canonical import canonical_text
from domain.contract.envelope import Envelope
from projections.common import evolved, hours, loads, replace_rows
from projections.entry_rows import fold_placement_rows, make_entry_table
from projections.hour_entries import (
    LOGGED,
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
    credential: Table

    @property
    def all(self) -> list[Table]:
        return [self.experience, self.opportunity, self.entry, self.credential]


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
    credential = Table(
        # One row per credential ever issued: what its issuer's status list and a verifier
        # read without scanning every experience.
        f"transcript_credential{suffix}", md,
        Column("credential_id", String(100), primary_key=True),
        Column("placement_id", String(100), nullable=False),
        Column("issuer_key", String(100), nullable=False),
        Column("issuer", String(300), nullable=False),
        Column("status_index", BigInteger, nullable=False),
        Column("status", String(20), nullable=False),
        Column("status_changed_on", String(10)),
        Column("status_reason", String(1000)),
        Column("version", Integer, nullable=False),
        Index(f"ix_transcript_credential_list{suffix}", "issuer_key", "status_index"),
    )
    return TranscriptTables(experience, opportunity, entry, credential)


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
        credential = _issued(event, d["credential_id"])
        return evolved(s, credentials=(*s.credentials, credential), **at)
    if kind == "CredentialRevoked":
        return evolved(s, credentials=_changed(s.credentials, d["credential_id"], {
            "status": REVOKED, "status_changed_on": d["business_date"],
            "status_reason": d["reason"]}), **at)
    if kind == "CredentialReissued":
        old = _changed(s.credentials, d["credential_id"], {
            "status": REISSUED, "status_changed_on": d["business_date"],
            "status_reason": d["reason"], "replaced_by": d["new_credential_id"]})
        new = {**_issued(event, d["new_credential_id"]), "replaces": d["credential_id"],
               "reissue_reason": d["reason"]}
        return evolved(s, credentials=(*old, new), **at)
    if kind == "CompetencySignedOff":
        return evolved(s, competencies_signed_off=(*s.competencies_signed_off, d["competency"]),
                       **at)
    return evolved(s, **at)


IN_FORCE, REVOKED, REISSUED = "in force", "revoked", "reissued"
"""A credential's status on the transcript; only one in force verifies."""


def _issued(event: Envelope, credential_id: str) -> dict[str, Any]:
    """A credential as the transcript keeps it. ``status_index`` is the position of the
    event that issued it: unique across the ledger and known to every replay, so it is the
    credential's entry in its issuer's status list without any allocation to coordinate.
    ``issued_at`` (when the issuance was recorded) is the credential's ``validFrom``."""
    d = event.data
    return {
        "credential_id": credential_id, "kind": d["kind"], "issuer": d["issuer"],
        "issued_on": d["business_date"], "expires_on": d.get("expires_on"),
        "issued_at": event.recorded_at.isoformat(), "status_index": event.position,
        "status": IN_FORCE,
    }


def _changed(credentials: Sequence[Mapping[str, Any]], credential_id: str,
             change: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    return tuple({**c, **change} if c["credential_id"] == credential_id else c
                 for c in credentials)


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
        "evaluations": canonical_text(list(s.evaluations)),
        "credentials": canonical_text(list(s.credentials)),
        "competencies_signed_off": canonical_text(list(s.competencies_signed_off)),
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
    """The facts of an opportunity a transcript shows (pure): as posted, then as revised
    (``OpportunityRevised`` holds the whole offer), so every transcript line names the
    opportunity as it reads now."""
    if event.event_type not in ("OpportunityPosted", "OpportunityRevised"):
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
        if self.credentials_in_force:
            parts.append("Credential: " + "; ".join(
                f"{c['kind']} ({c['issuer']})" for c in self.credentials_in_force))
        return " | ".join(parts)

    @property
    def credentials_in_force(self) -> list[dict[str, Any]]:
        """Revoked and reissued credentials stay on the transcript (with their reason) but
        leave the notation line and the exports: a SIS shows what still stands."""
        return [c for c in self.credentials if c.get("status", IN_FORCE) == IN_FORCE]

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
            "credentials": "; ".join(f"{c['kind']} ({c['issuer']})"
                                     for c in e.credentials_in_force),
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
#
# The documents are built here (pure: the same read model and settings give the same bytes);
# they are signed in ``services/credentials`` (decision 046). Every term used is defined by
# the pinned contexts below, so the JSON is exactly what a Data Integrity proof signs.

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
OB_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
CLR_CONTEXT = "https://purl.imsglobal.org/spec/clr/v2p0/context-2.0.1.json"
URN = "urn:wbl-ledger"
_NAMESPACE = uuid.UUID("6f1d7c2e-8a51-4c0f-9d3e-2b7a4e5c9f10")
STATUS_LIST_BITS = 131_072
"""Bits in one status list: the W3C Bitstring Status List minimum (16 KB), so a list does
not tell how many credentials its issuer has."""
CREDENTIAL_EVENTS = frozenset({"CredentialIssued", "CredentialRevoked", "CredentialReissued"})


def _urn_uuid(value: str) -> str:
    try:
        return f"urn:uuid:{uuid.UUID(value)}"
    except ValueError:
        return f"urn:uuid:{uuid.uuid5(_NAMESPACE, value)}"


def issuer_key(issuer: str) -> str:
    """The stable path segment of an issuer named in ``CredentialIssued`` (its DID, its
    status lists): the same name always gives the same key, and no name is in a URL."""
    return str(uuid.uuid5(_NAMESPACE, issuer.strip()))


def did_web(base_url: str) -> str:
    """The did:web identifier whose documents live under ``base_url`` (did:web method
    spec: the host, its port percent-encoded, then each path segment after a colon)."""
    parts = urlsplit(base_url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("a did:web base is an https:// URL with a host")
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    segments = [quote(host, safe="")] + [quote(p, safe="") for p in parts.path.split("/") if p]
    return "did:web:" + ":".join(segments)


@dataclass(frozen=True)
class Issuing:
    """Where this deployment publishes its issuers: ``base_url`` is the public HTTPS address
    of the API (``WBL_PUBLIC_URL``); each issuer is ``did:web:<host>:issuers:<key>``, whose
    DID document and status lists the API serves under ``/issuers/<key>/``."""

    base_url: str

    @property
    def root(self) -> str:
        return self.base_url.rstrip("/")

    def issuer_did(self, issuer: str) -> str:
        return f"{did_web(self.root)}:issuers:{issuer_key(issuer)}"

    def profile(self, issuer: str) -> dict[str, Any]:
        return {"id": self.issuer_did(issuer), "type": ["Profile"], "name": issuer,
                "url": f"{self.root}/issuers/{issuer_key(issuer)}"}

    def status_list_url(self, issuer: str, list_number: int) -> str:
        return f"{self.root}/issuers/{issuer_key(issuer)}/status/{list_number}"

    def status_entry(self, issuer: str, index: int) -> dict[str, Any]:
        """The credential's W3C Bitstring Status List entry (purpose: revocation)."""
        number, bit = divmod(index, STATUS_LIST_BITS)
        url = self.status_list_url(issuer, number)
        return {"id": f"{url}#{bit}", "type": "BitstringStatusListEntry",
                "statusPurpose": "revocation", "statusListIndex": str(bit),
                "statusListCredential": url}


def _timestamp(value: str) -> str:
    """An ISO 8601 instant in UTC with a ``Z``, to the second (VC ``dateTimeStamp``)."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def identity(learner_id: str, salt_from: str) -> dict[str, Any]:
    """The learner as an OB 3.0 ``IdentityObject``: a salted SHA-256 of their id, so the
    credential names nobody by itself, while the learner (who knows their id) or a verifier
    told it can check it is theirs. The salt differs per document (derived from
    ``salt_from``, the credential's id), so two credentials of one learner cannot be linked
    by their hashes; deriving it keeps a document the same each time it is served."""
    salt = hashlib.sha256(f"wbl-ledger/identity-salt/{salt_from}".encode()).hexdigest()[:32]
    digest = hashlib.sha256((learner_id + salt).encode()).hexdigest()
    return {"type": "IdentityObject", "hashed": True, "identityHash": f"sha256${digest}",
            "identityType": "identifier", "salt": salt}


def _achievement_id(experience: Experience, credential: Mapping[str, Any]) -> str:
    return f"{URN}:achievement:{experience.placement_id}:{credential['kind']}"


def _experience_achievement_id(experience: Experience) -> str:
    return f"{URN}:experience:{experience.placement_id}"


def open_badge(experience: Experience, credential: Mapping[str, Any], issuing: Issuing
               ) -> dict[str, Any]:
    """An Open Badges 3.0 ``OpenBadgeCredential`` for one issued credential, unsigned.

    ``validFrom`` is when the issuance was recorded (the credential exists from then on),
    ``awardedDate`` the day it was awarded (the event's business date); ``validUntil`` the
    end of its expiry day. The subject is an ``IdentityObject`` (a salted hash), never the
    learner's id. O*NET occupations align with ``targetType: ext:ONetOccupation`` (O*NET is
    not in OB 3.0's AlignmentTargetType enumeration; ``ext:`` terms extend it).
    ``credentialStatus`` points at the issuer's revocation list.
    """
    what = experience.title or experience.wbl_type_label
    where = f" at {experience.employer_name}" if experience.employer_name else ""
    first, last = experience.dates
    credential_id = str(credential["credential_id"])
    issuer = str(credential["issuer"])
    issued_at = str(credential.get("issued_at") or f"{credential['issued_on']}T00:00:00+00:00")
    achievement: dict[str, Any] = {
        "id": _achievement_id(experience, credential),
        "type": ["Achievement"],
        "achievementType": credential["kind"],
        "name": f"{what}{where}",
        "description": (f"{experience.wbl_type_label} ({experience.wbl_type}, CEDS 001499), "
                        f"{first} to {last}, {experience.approved_hours} approved hours."),
        "criteria": {"narrative": "Completed the work-based-learning experience with a final "
                                  "evaluation recorded in wbl-ledger."},
        "fieldOfStudy": experience.wbl_type_label,
    }
    if experience.occupation_code:
        achievement["alignment"] = [{
            "type": ["Alignment"], "targetName": f"O*NET-SOC {experience.occupation_code}",
            "targetUrl": f"https://www.onetonline.org/link/summary/{experience.occupation_code}",
            "targetType": "ext:ONetOccupation", "targetCode": experience.occupation_code,
            "targetFramework": "O*NET-SOC",
        }]
    doc: dict[str, Any] = {
        "@context": [VC_CONTEXT, OB_CONTEXT],
        "id": _urn_uuid(credential_id),
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "issuer": issuing.profile(issuer),
        "validFrom": _timestamp(issued_at),
        "awardedDate": f"{credential['issued_on']}T00:00:00Z",
        "name": f"{what}{where}",
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "identifier": [identity(experience.learner_id, credential_id)],
            "achievement": achievement,
        },
    }
    if credential.get("expires_on"):
        doc["validUntil"] = f"{credential['expires_on']}T23:59:59Z"
    if credential.get("status_index") is not None:
        doc["credentialStatus"] = issuing.status_entry(issuer, int(credential["status_index"]))
    return doc


def clr(learner_id: str, experiences: Sequence[Experience], signed_badges: Sequence[
        Mapping[str, Any]], issuing: Issuing, *, issuer: str, issued_at: str, clr_id: str
        ) -> dict[str, Any]:
    """A CLR 2.0 ``ClrCredential``, unsigned: the learner's work-based-learning record.

    ``signed_badges`` are the learner's credentials in force, each already signed (CLR 2.0:
    every embedded credential carries its own proof). One ``Achievement`` per experience,
    even without a badge; an ``Association`` says each badge's achievement is part of its
    experience. ``validFrom`` is ``issued_at``, when this record is issued (not any
    experience's end date); the subject is an ``IdentityObject``, as in the badges. The
    contexts come in the order CLR 2.0 requires (VC, CLR, OB: its JSON Schema refuses
    another), unlike a badge's (VC, OB).
    """
    achievements = []
    associations = []
    for e in experiences:
        first, last = e.dates
        achievements.append({
            "id": _experience_achievement_id(e), "type": ["Achievement"],
            "achievementType": "Fieldwork" if e.wbl_type != "Apprenticeship"
            else "ApprenticeshipCertificate",
            "name": e.notation(),
            "description": f"{e.wbl_type_label}, {first} to {last}: {e.status_label}.",
            "criteria": {"narrative": e.evaluation_summary or "No evaluation recorded."},
        })
        for c in e.credentials_in_force:
            associations.append({
                "type": "Association", "associationType": "isPartOf",
                "sourceId": _achievement_id(e, c), "targetId": _experience_achievement_id(e)})
    return {
        "@context": [VC_CONTEXT, CLR_CONTEXT, OB_CONTEXT],
        "id": clr_id,
        "type": ["VerifiableCredential", "ClrCredential"],
        "issuer": issuing.profile(issuer),
        "validFrom": _timestamp(issued_at),
        "awardedDate": _timestamp(issued_at),
        "name": "Work-based learning record",
        "credentialSubject": {
            "type": ["ClrSubject"],
            "identifier": [identity(learner_id, clr_id)],
            "verifiableCredential": [dict(b) for b in signed_badges],
            "achievement": achievements,
            "association": associations,
        },
    }


# -- storage --------------------------------------------------------------------------------


class TranscriptProjection:
    """Stores the fold's result: one row per placement, one per opportunity."""

    name = NAME

    def __init__(self, tables: TranscriptTables | None = None) -> None:
        self.tables = tables or LIVE_TABLES

    def legacy_row_table(self) -> Table | None:
        """Before decision 025 each experience row held its hour entries."""
        return self.tables.experience

    def apply(self, conn: Connection, event: Envelope) -> None:
        self.apply_many(conn, [event])

    def apply_many(self, conn: Connection, events: Sequence[Envelope]) -> None:
        t = self.tables
        opportunities = list({r["opportunity_id"]: r for r in map(opportunity_row, events)
                              if r is not None}.values())  # the last of a poll wins
        replace_rows(conn, t.opportunity, t.opportunity.c.opportunity_id, opportunities)
        fold_placement_rows(conn, t.experience, t.experience.c.placement_id, t.entry,
                            events, evolve, _from_row, _to_row)
        for event in events:
            if event.aggregate_type == "Placement" and event.event_type in CREDENTIAL_EVENTS:
                self._credential_rows(conn, event)

    def _credential_rows(self, conn: Connection, event: Envelope) -> None:
        """Keep ``transcript_credential`` in step. Idempotent: a row is inserted once, and
        a status change applies only over an older version of its placement."""
        c = self.tables.credential
        d = event.data
        version = event.aggregate_version
        if event.event_type in ("CredentialRevoked", "CredentialReissued"):
            status = REVOKED if event.event_type == "CredentialRevoked" else REISSUED
            conn.execute(update(c).where(c.c.credential_id == d["credential_id"],
                                         c.c.version < version).values(
                status=status, status_changed_on=d["business_date"],
                status_reason=d["reason"], version=version))
        new_id = d.get("new_credential_id") if event.event_type == "CredentialReissued" \
            else d["credential_id"] if event.event_type == "CredentialIssued" else None
        if new_id is not None and conn.execute(
                select(c.c.credential_id).where(c.c.credential_id == new_id)).first() is None:
            conn.execute(insert(c).values(
                credential_id=new_id, placement_id=event.aggregate_id,
                issuer_key=issuer_key(d["issuer"]), issuer=d["issuer"],
                status_index=event.position,
                status=IN_FORCE, status_changed_on=None, status_reason=None, version=version))

    def issuer_name(self, conn: Connection, key: str) -> str | None:
        """The name of the issuer whose key is ``key``, if it ever issued a credential."""
        c = self.tables.credential
        row = conn.execute(select(c.c.issuer).where(c.c.issuer_key == key).limit(1)).first()
        return None if row is None else str(row[0])

    def status_at(self, conn: Connection, key: str, index: int) -> Mapping[str, Any] | None:
        """The credential holding entry ``index`` of issuer ``key``'s status lists."""
        c = self.tables.credential
        row = conn.execute(select(c).where(c.c.issuer_key == key, c.c.status_index == index)
                           ).mappings().first()
        return dict(row) if row is not None else None

    def withdrawn_indices(self, conn: Connection, issuer: str, first: int, last: int
                          ) -> list[int]:
        """Status-list indices in ``first..last`` of the issuer's credentials no longer in
        force (revoked, or replaced by a reissue)."""
        c = self.tables.credential
        rows = conn.execute(select(c.c.status_index).where(
            c.c.issuer_key == issuer, c.c.status_index >= first, c.c.status_index <= last,
            c.c.status != IN_FORCE)).all()
        return [int(r[0]) for r in rows]

    # -- queries ------------------------------------------------------------------------

    def placement_ids_of_supervisor(self, conn: Connection, supervisor_id: str) -> list[str]:
        x = self.tables.experience
        return [str(r[0]) for r in conn.execute(
            select(x.c.placement_id).where(x.c.supervisor_id == supervisor_id))]

    def pending_entries(
        self, conn: Connection, *, supervisor_id: str, learner_id: str | None = None,
        kind: str | None = None, limit: int = 100, offset: int = 0,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Entries awaiting a supervisor's review across their placements, oldest work date
        first, and how many there are: one query over the entries table, however many
        placements the supervisor has."""
        x, e = self.tables.experience, self.tables.entry
        where = [x.c.supervisor_id == supervisor_id, e.c.status == LOGGED]
        if learner_id:
            where.append(x.c.learner_id == learner_id)
        if kind:
            where.append(e.c.kind == kind)
        joined = e.join(x, x.c.placement_id == e.c.placement_id)
        total = conn.execute(select(func.count()).select_from(joined).where(*where)).scalar_one()
        rows = conn.execute(
            select(e.c.placement_id, e.c.entry_id, e.c.work_date, e.c.minutes, e.c.kind,
                   x.c.learner_id, x.c.organisation_id)
            .select_from(joined).where(*where)
            .order_by(e.c.work_date, x.c.learner_id, e.c.entry_id)
            .limit(limit).offset(offset)).mappings().all()
        return int(total), [dict(r) for r in rows]

    def experiences(
        self, conn: Connection, *, learner_id: str | None = None,
        organisation_id: str | None = None, supervisor_id: str | None = None,
        placement_id: str | None = None, status: str | None = None,
        wbl_type: str | None = None, limit: int = 100, offset: int = 0,
        program_ids: Collection[str] | None = None,
        placement_ids: Collection[str] | None = None,
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
        if program_ids is not None:  # a sponsor's programs
            query = query.where(x.c.program_id.in_(list(program_ids)))
        if placement_ids is not None:  # the rows a page shows
            query = query.where(x.c.placement_id.in_(list(placement_ids)))
        rows = conn.execute(query.limit(limit).offset(offset)).mappings().all()
        return [experience_of(dict(r)) for r in rows]
