"""The audit trail: every published event as an entry an auditor can read and re-check.

Each entry says who (actor and role), when in the world (business date), when recorded,
what (event type and a readable summary), why (the reason, where one was given), and holds
the event's canonical bytes. It is tamper-evident (DESIGN.md invariant 6): each entry stores

- ``chain_hash`` = SHA-256(previous entry's ``chain_hash`` of the same aggregate + canonical
  bytes), one chain per aggregate (a placement's chain is its history in version order), and
- ``global_hash`` = SHA-256(previous entry's ``global_hash`` in store-position order +
  canonical bytes), one chain over everything.

Positions are global and gap-free, but partitions are read independently, so entries can
arrive out of position order. An entry is stored at once (its own chain only needs its
aggregate's previous entry, which is in the same partition, earlier); its global hash is
filled in when every lower position has arrived ("chained when contiguous"), so the global
chain is the same however the partitions interleave, and a rebuild gives the same bytes
(decision 020). ``verify`` recomputes both chains from the stored canonical bytes and
re-derives every column, and reports the first entry altered, dropped or reordered; given
anchors (signed checkpoints kept outside the table, decision 041) it also catches a rewrite
that recomputed every later hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    insert,
    select,
    update,
)

from domain.contract.canonical import canonical_json
from domain.contract.envelope import Envelope
from projections.common import hours, insert_rows, load_rows, loads, replace_rows
from projections.tables import metadata as shared_metadata

NAME = "audit_trail"
GENESIS = "0" * 64
GLOBAL_HEAD_ID = 1
FIRST_POSITION = 1
"""The store's notification log starts at 1 and has no gaps (decision 001)."""


@dataclass(frozen=True)
class AuditTables:
    entry: Table
    chain_head: Table
    global_head: Table

    @property
    def all(self) -> list[Table]:
        return [self.entry, self.chain_head, self.global_head]


def make_tables(md: MetaData, suffix: str = "") -> AuditTables:
    entry = Table(
        f"audit_entry{suffix}", md,
        Column("position", BigInteger, primary_key=True, autoincrement=False),
        Column("event_id", String(200), nullable=False),
        Column("aggregate_type", String(100), nullable=False),
        Column("aggregate_id", String(100), nullable=False),
        Column("aggregate_version", Integer, nullable=False),
        Column("event_type", String(100), nullable=False),
        Column("schema_version", Integer, nullable=False),
        Column("actor_id", String(100)),
        Column("actor_role", String(30)),
        Column("business_date", String(10)),
        Column("recorded_at", String(40), nullable=False),
        Column("placement_id", String(100)),
        Column("learner_id", String(100)),
        Column("organisation_id", String(100)),
        Column("summary", Text, nullable=False),
        Column("reason", Text),
        Column("event", Text, nullable=False),
        Column("chain_hash", String(64), nullable=False),
        Column("global_hash", String(64)),
        Index(f"ix_audit_entry_aggregate{suffix}", "aggregate_id", "aggregate_version",
              unique=True),
        Index(f"ix_audit_entry_placement{suffix}", "placement_id", "position"),
        Index(f"ix_audit_entry_learner{suffix}", "learner_id", "position"),
        Index(f"ix_audit_entry_actor{suffix}", "actor_id", "position"),
        Index(f"ix_audit_entry_business_date{suffix}", "business_date"),
    )
    chain_head = Table(
        f"audit_chain_head{suffix}", md,
        Column("aggregate_id", String(100), primary_key=True),
        Column("version", Integer, nullable=False),
        Column("hash", String(64), nullable=False),
        Column("learner_id", String(100)),
        Column("organisation_id", String(100)),
    )
    global_head = Table(
        f"audit_global_head{suffix}", md,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("position", BigInteger, nullable=False),
        Column("hash", String(64), nullable=False),
    )
    return AuditTables(entry, chain_head, global_head)


LIVE_TABLES = make_tables(shared_metadata)


# -- pure: canonical bytes, hashes, entries ----------------------------------------------------


def canonical_bytes(event: Envelope, recorded_at: str | None = None) -> bytes:
    """The event's canonical form: envelope facts and body, sorted keys, no spaces, UTF-8."""
    return canonical_json({
        "aggregate_id": event.aggregate_id, "aggregate_type": event.aggregate_type,
        "aggregate_version": event.aggregate_version, "data": dict(event.data),
        "event_id": event.event_id, "event_type": event.event_type,
        "position": event.position,
        "recorded_at": recorded_at if recorded_at is not None else event.recorded_at.isoformat(),
        "schema_version": event.schema_version,
    })


def envelope_of(canonical: str | bytes) -> Envelope:
    """Read an entry's stored canonical bytes back into the envelope they came from."""
    d = loads(canonical)
    return Envelope(
        event_id=d["event_id"], event_type=d["event_type"], aggregate_type=d["aggregate_type"],
        aggregate_id=d["aggregate_id"], aggregate_version=int(d["aggregate_version"]),
        position=int(d["position"]), schema_version=int(d["schema_version"]),
        recorded_at=datetime.fromisoformat(d["recorded_at"]), data=d["data"],
    )


def chain(previous: str, canonical: bytes) -> str:
    return hashlib.sha256(previous.encode("ascii") + canonical).hexdigest()


@dataclass(frozen=True)
class ChainHead:
    """The last entry of one aggregate's chain, and who that aggregate is about."""

    aggregate_id: str
    version: int
    hash: str
    learner_id: str | None
    organisation_id: str | None


def _h(minutes: Any) -> str:
    return f"{hours(int(minutes))} h"


def _opportunity_posted(d: Mapping[str, Any]) -> str:
    return (f"Posted opportunity \"{d['title']}\" at {d['employer_name']} ({d['wbl_type']}, "
            f"{d['starts_on']} to {d['ends_on']}, capacity {d['capacity']})")


def _opportunity_closed(_d: Mapping[str, Any]) -> str:
    return "Closed the opportunity to new matches"


def _opportunity_revised(d: Mapping[str, Any]) -> str:
    return (f"Revised opportunity \"{d['title']}\" at {d['employer_name']} ({d['starts_on']} "
            f"to {d['ends_on']}, capacity {d['capacity']})")


def _apprenticeship_program_defined(d: Mapping[str, Any]) -> str:
    return (f"Defined program \"{d['title']}\" of {d['sponsor_name']} ({d['approach']}, "
            f"{d['ojl_hours']} h on-the-job, {d['related_instruction_hours_per_year']} h "
            f"related instruction a year)")


def _learner_matched(d: Mapping[str, Any]) -> str:
    program = f", program {d['program_id']}" if d.get("program_id") else ""
    return (f"Matched learner {d['learner_id']} to opportunity {d['opportunity_id']} "
            f"({d['wbl_type']}), supervisor {d['supervisor_id']}{program}")


def _agreement_signed(d: Mapping[str, Any]) -> str:
    return f"Signed the training agreement as {d['party']}"


def _placement_started(_d: Mapping[str, Any]) -> str:
    return "Started the placement"


def _hours_logged(d: Mapping[str, Any]) -> str:
    flags = d.get("child_labour_flags") or []
    flagged = f"; flagged {', '.join(flags)}" if flags else ""
    return (f"Logged {_h(d['minutes'])} of {d['kind']} on {d['business_date']} "
            f"(entry {d['entry_id']}){flagged}")


def _through_link(d: Mapping[str, Any]) -> str:
    """Versions before the link id (HoursApproved 2, HoursRejected 1) have none: the same
    sentence as before, so replaying old events gives the same trail."""
    return f" through approval link {d['link_id']}" if d.get("link_id") else ""


def _hours_approved(d: Mapping[str, Any]) -> str:
    replaces = (f"; it replaces approved entry {d['replaces']}"
                if d.get("replaces") else "")
    return f"Approved hour entry {d['entry_id']}{_through_link(d)}{replaces}"


def _hours_rejected(d: Mapping[str, Any]) -> str:
    return f"Rejected hour entry {d['entry_id']}{_through_link(d)}"


def _proxy_approver_named(d: Mapping[str, Any]) -> str:
    return f"Named {d['proxy_id']} proxy approver of the placement's hours: {d['reason']}"


def _hours_corrected(d: Mapping[str, Any]) -> str:
    stands = (f"; approved entry {d['pending_over']} counts until it is approved"
              if d.get("pending_over") else "")
    return (f"Corrected hour entry {d['supersedes']}: replaced by entry {d['entry_id']}, "
            f"{_h(d['minutes'])} of {d['kind']} on {d['business_date']}{stands}")


def _placement_evaluated(d: Mapping[str, Any]) -> str:
    scores = ", ".join(f"{k} {v}" for k, v in sorted(d["scores"].items()))
    return f"{str(d['stage']).capitalize()} evaluation by {d['evaluator_role']}: {scores}"


def _competency_signed_off(d: Mapping[str, Any]) -> str:
    return f"Signed off competency {d['competency']}"


def _credential_issued(d: Mapping[str, Any]) -> str:
    until = f", valid until {d['expires_on']}" if d.get("expires_on") else ""
    return f"Issued credential {d['kind']} by {d['issuer']}{until}"


def _credential_revoked(d: Mapping[str, Any]) -> str:
    return f"Revoked credential {d['credential_id']}: {d['reason']}"


def _credential_reissued(d: Mapping[str, Any]) -> str:
    return (f"Reissued credential {d['credential_id']} as {d['new_credential_id']} "
            f"({d['kind']} by {d['issuer']}): {d['reason']}")


def _organisation_registered(d: Mapping[str, Any]) -> str:
    under = f" under {d['parent_id']}" if d.get("parent_id") else ""
    return f"Registered {d['kind']} {d['organisation_id']} \"{d['name']}\"{under}"


def _organisation_renamed(d: Mapping[str, Any]) -> str:
    return f"Renamed the organisation \"{d['name']}\""


def _organisation_moved(d: Mapping[str, Any]) -> str:
    return (f"Moved the organisation from {d.get('previous_parent_id') or 'no parent'} "
            f"to {d.get('parent_id') or 'no parent'}")


def _organisation_closed(_d: Mapping[str, Any]) -> str:
    return "Closed the organisation"


def _placement_suspended(_d: Mapping[str, Any]) -> str:
    return "Suspended the placement"


def _placement_reinstated(_d: Mapping[str, Any]) -> str:
    return "Reinstated the placement"


def _placement_withdrawn(d: Mapping[str, Any]) -> str:
    during = " during probation" if d.get("during_probation") else ""
    return f"Withdrew the placement{during}"


def _placement_completed(_d: Mapping[str, Any]) -> str:
    return "Completed the placement"


def _prior_learning_credit_granted(d: Mapping[str, Any]) -> str:
    source = (f" from placement {d['source_placement_id']}"
              if d.get("source_placement_id") else "")
    process = f" toward {d['work_process']}" if d.get("work_process") else ""
    return f"Credited {_h(d['minutes'])} of prior learning ({d['basis']}){process}{source}"


def _learner_day_opened(d: Mapping[str, Any]) -> str:
    return f"Opened learner {d['learner_id']}'s day {d['business_date']}"


def _day_minutes_claimed(d: Mapping[str, Any]) -> str:
    return (f"{_h(d['minutes'])} of entry {d['entry_id']} (placement {d['placement_id']}) "
            f"count toward the learner's day")


def _day_minutes_released(d: Mapping[str, Any]) -> str:
    return f"Entry {d['entry_id']} no longer counts toward the learner's day"


def _learner_week_opened(d: Mapping[str, Any]) -> str:
    return f"Opened learner {d['learner_id']}'s week of {d['business_date']}"


def _week_minutes_claimed(d: Mapping[str, Any]) -> str:
    return (f"{_h(d['minutes'])} of entry {d['entry_id']} (placement {d['placement_id']}) "
            f"count toward the young learner's week")


def _week_minutes_released(d: Mapping[str, Any]) -> str:
    return f"Entry {d['entry_id']} no longer counts toward the learner's week"


def _work_experience_agreement_recorded(_d: Mapping[str, Any]) -> str:
    return "Recorded a WECEP training agreement (29 CFR 570.36)"


def _school_calendar_opened(d: Mapping[str, Any]) -> str:
    return f"Opened the school calendar of {d['organisation_id']}"


def _school_year_recorded(d: Mapping[str, Any]) -> str:
    breaks = len(d.get("breaks") or [])
    return (f"Recorded school year {d['school_year']}: {d['first_day']} to "
            f"{d['last_day']}, {breaks} breaks")


def _school_day_exception_recorded(d: Mapping[str, Any]) -> str:
    what = "a school day" if d.get("school_day") else "not a school day"
    return f"Recorded {d['day']} as {what}: {d['reason']}"


def _child_labour_policy_chosen(d: Mapping[str, Any]) -> str:
    return f"Chose child-labour policy {d['policy']} for {d['organisation_id']}"


def _child_labour_policy_changed(d: Mapping[str, Any]) -> str:
    return f"Changed child-labour policy to {d['policy']}"


def _file_imported(d: Mapping[str, Any]) -> str:
    rejected = len(d.get("rejected") or [])
    refused = f", {rejected} rows refused" if rejected else ""
    return (f"Imported {d['kind']} file {d['file_name']} ({len(d.get('rows') or {})} rows "
            f"recorded{refused}, {d['mode']})")


SUMMARIES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "FileImported": _file_imported,
    "OpportunityPosted": _opportunity_posted,
    "OpportunityClosed": _opportunity_closed,
    "OpportunityRevised": _opportunity_revised,
    "ApprenticeshipProgramDefined": _apprenticeship_program_defined,
    "LearnerMatched": _learner_matched,
    "AgreementSigned": _agreement_signed,
    "PlacementStarted": _placement_started,
    "HoursLogged": _hours_logged,
    "HoursApproved": _hours_approved,
    "HoursRejected": _hours_rejected,
    "HoursCorrected": _hours_corrected,
    "ProxyApproverNamed": _proxy_approver_named,
    "PlacementEvaluated": _placement_evaluated,
    "CompetencySignedOff": _competency_signed_off,
    "CredentialIssued": _credential_issued,
    "CredentialRevoked": _credential_revoked,
    "CredentialReissued": _credential_reissued,
    "OrganisationRegistered": _organisation_registered,
    "OrganisationRenamed": _organisation_renamed,
    "OrganisationMoved": _organisation_moved,
    "OrganisationClosed": _organisation_closed,
    "PlacementSuspended": _placement_suspended,
    "PlacementReinstated": _placement_reinstated,
    "PlacementWithdrawn": _placement_withdrawn,
    "PlacementCompleted": _placement_completed,
    "PriorLearningCreditGranted": _prior_learning_credit_granted,
    "LearnerDayOpened": _learner_day_opened,
    "DayMinutesClaimed": _day_minutes_claimed,
    "DayMinutesReleased": _day_minutes_released,
    "LearnerWeekOpened": _learner_week_opened,
    "WeekMinutesClaimed": _week_minutes_claimed,
    "WeekMinutesReleased": _week_minutes_released,
    "WorkExperienceAgreementRecorded": _work_experience_agreement_recorded,
    "SchoolCalendarOpened": _school_calendar_opened,
    "SchoolYearRecorded": _school_year_recorded,
    "SchoolDayExceptionRecorded": _school_day_exception_recorded,
    "ChildLabourPolicyChosen": _child_labour_policy_chosen,
    "ChildLabourPolicyChanged": _child_labour_policy_changed,
}
"""One sentence per event type, in words an auditor reads: every type of the catalogue has
one (tests/unit/test_registry.py), so no entry is ever just a type name."""

SUMMARISED = frozenset(SUMMARIES)


def summary(event: Envelope) -> str:
    """What changed, in words an auditor reads (pure)."""
    return SUMMARIES[event.event_type](event.data)


def derive(event: Envelope, head: ChainHead | None) -> tuple[dict[str, Any], ChainHead]:
    """The entry for ``event`` (without its global hash) and its aggregate's new chain head."""
    d = event.data
    recorded_at = event.recorded_at.isoformat()
    canonical = canonical_bytes(event, recorded_at)
    previous = head.hash if head is not None else GENESIS
    learner = head.learner_id if head is not None else None
    organisation = head.organisation_id if head is not None else None
    if head is None:
        learner = d.get("learner_id") if isinstance(d.get("learner_id"), str) else None
        organisation = d.get("organisation_id") or d.get("sponsor_id")
    placement = event.aggregate_id if event.aggregate_type == "Placement" else d.get(
        "placement_id")
    reason = d.get("reason")
    entry = {
        "position": event.position, "event_id": event.event_id,
        "aggregate_type": event.aggregate_type, "aggregate_id": event.aggregate_id,
        "aggregate_version": event.aggregate_version, "event_type": event.event_type,
        "schema_version": event.schema_version, "actor_id": d.get("actor_id"),
        "actor_role": d.get("actor_role"), "business_date": d.get("business_date"),
        "recorded_at": recorded_at,
        "placement_id": placement if isinstance(placement, str) else None,
        "learner_id": learner, "organisation_id": organisation, "summary": summary(event),
        "reason": reason if isinstance(reason, str) else None,
        "event": canonical.decode("utf-8"), "chain_hash": chain(previous, canonical),
    }
    new_head = ChainHead(event.aggregate_id, event.aggregate_version, str(entry["chain_hash"]),
                         learner, organisation)
    return entry, new_head


# -- verification (pure over the stored rows) --------------------------------------------------


@dataclass(frozen=True)
class Problem:
    position: int | None
    kind: str  # "altered", "dropped", "reordered" or "rewritten"
    detail: str
    aggregate_type: str | None = None
    aggregate_id: str | None = None
    """The placement (or other aggregate) the entry belongs to, so an auditor knows
    whose record to look at, not only a log position."""
    event_type: str | None = None
    since: int | None = None
    """For "rewritten": the last position a signed checkpoint confirmed; the rewritten
    entry lies after it, at or before ``position``."""


@dataclass(frozen=True)
class Anchor:
    """A signed checkpoint's claim, kept outside the table: the global chain at
    ``position`` covers ``count`` entries and ends in ``global_hash`` (decision 041)."""

    position: int
    global_hash: str
    count: int
    name: str


@dataclass
class VerifyReport:
    entries: int = 0
    chained: int = 0
    aggregates: int = 0
    problem: Problem | None = None
    anchored: int = 0
    """Signed checkpoints the global chain agreed with."""
    anchored_position: int | None = None
    """The highest position a signed checkpoint confirmed."""

    @property
    def ok(self) -> bool:
        return self.problem is None


COMPARED = ("event_id", "aggregate_type", "aggregate_id", "aggregate_version", "event_type",
            "schema_version", "actor_id", "actor_role", "business_date", "recorded_at",
            "placement_id", "learner_id", "organisation_id", "summary", "reason", "chain_hash")


def _named(row: Mapping[str, Any], event: Envelope | None, position: int | None, kind: str,
           detail: str) -> Problem:
    """A problem naming the entry's aggregate and event type: from its stored event when
    that is readable, else from its columns."""
    if event is not None:
        return Problem(position, kind, detail, event.aggregate_type, event.aggregate_id,
                       event.event_type)
    return Problem(position, kind, detail, row.get("aggregate_type"), row.get("aggregate_id"),
                   row.get("event_type"))


def verify_rows(rows: Iterable[Mapping[str, Any]], global_head: Mapping[str, Any] | None,
                chain_heads: Iterable[Mapping[str, Any]],
                anchors: Iterable[Anchor] = ()) -> VerifyReport:
    """Recompute both chains over ``rows`` (in position order) and re-derive every column;
    stop at the first entry that was altered, dropped or reordered. With ``anchors``
    (verified checkpoints), also compare the recomputed global chain with each: a trail
    rewritten with every later hash recomputed is consistent with itself, not with them."""
    report = VerifyReport()
    pending = sorted(anchors, key=lambda a: a.position)
    confirmed = FIRST_POSITION - 1
    heads: dict[str, ChainHead] = {}
    expected_position = FIRST_POSITION
    global_hash = GENESIS
    global_open = True  # False after the first entry still waiting for a lower position
    for row in rows:
        report.entries += 1
        position = int(row["position"])
        try:
            event = envelope_of(row["event"])
        except (ValueError, KeyError, TypeError) as error:
            report.problem = _named(row, None, position, "altered",
                                    f"stored event unreadable: {error}")
            return report
        if event.position != position:
            report.problem = _named(row, event, position, "reordered",
                                    f"entry at position {position} holds the event of "
                                    f"position {event.position}")
            return report
        if position != expected_position and global_open:
            kind = "dropped" if position > expected_position else "reordered"
            report.problem = Problem(expected_position, kind,
                                     f"expected the entry at position {expected_position}, "
                                     f"found position {position}")
            return report
        head = heads.get(event.aggregate_id)
        last_version = head.version if head else 0
        if event.aggregate_version != last_version + 1:
            kind = "dropped" if event.aggregate_version > last_version + 1 else "reordered"
            report.problem = _named(row, event, position, kind,
                                    f"{event.aggregate_id}: version {event.aggregate_version} "
                                    f"follows version {last_version}")
            return report
        try:
            entry, new_head = derive(event, head)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            report.problem = _named(row, event, position, "altered",
                                    f"stored event unreadable: {error!r}")
            return report
        if entry["event"] != row["event"]:
            report.problem = _named(row, event, position, "altered",
                                    "stored event is not canonical")
            return report
        for column in COMPARED:
            if _norm(entry[column]) != _norm(row[column]):
                report.problem = _named(row, event, position, "altered",
                                        f"column {column} does not match the event and chain")
                return report
        heads[event.aggregate_id] = new_head
        stored_global = row["global_hash"]
        if global_open and stored_global is None:
            global_open = False  # waiting for a lower position still unread: not chained yet
        elif global_open:
            global_hash = chain(global_hash, entry["event"].encode("utf-8"))
            if stored_global != global_hash:
                report.problem = _named(row, event, position, "altered",
                                        "global_hash does not match the global chain")
                return report
            report.chained += 1
            expected_position += 1
            while pending and pending[0].position <= position:
                anchor = pending.pop(0)
                if anchor.position < position:
                    continue  # a position the chain never reached (checked below)
                if anchor.global_hash != global_hash or anchor.count != report.chained:
                    report.problem = Problem(
                        position, "rewritten",
                        f"signed checkpoint {anchor.name} says the global chain at position "
                        f"{position} covers {anchor.count} entries ending in "
                        f"{anchor.global_hash}; the trail gives {report.chained} ending in "
                        f"{global_hash}: an entry after position {confirmed} was rewritten "
                        f"and the later hashes recomputed", since=confirmed)
                    return report
                report.anchored += 1
                confirmed = position
                report.anchored_position = position
        elif stored_global is not None:
            report.problem = _named(row, event, position, "altered",
                                    "global_hash set after a gap in the global chain")
            return report
    report.aggregates = len(heads)
    if pending:
        anchor = pending[-1]
        report.problem = Problem(expected_position, "dropped",
                                 f"signed checkpoint {anchor.name} covers position "
                                 f"{anchor.position}; the global chain ends at "
                                 f"{expected_position - 1}", since=confirmed)
        return report
    head_position = int(global_head["position"]) if global_head else FIRST_POSITION - 1
    head_hash = str(global_head["hash"]) if global_head else GENESIS
    if head_position != expected_position - 1 or head_hash != global_hash:
        report.problem = Problem(head_position + 1 if head_position >= expected_position else
                                 expected_position, "dropped",
                                 f"the global head says position {head_position}, the chain "
                                 f"ends at {expected_position - 1}")
        return report
    seen = 0
    for stored in chain_heads:
        seen += 1
        mine = heads.get(str(stored["aggregate_id"]))
        if mine is None or mine.version != int(stored["version"]) or mine.hash != stored["hash"]:
            ours = f"version {mine.version}" if mine else "no entries"
            report.problem = Problem(None, "dropped",
                                     f"aggregate {stored['aggregate_id']}: chain head says "
                                     f"version {stored['version']}, entries give {ours}")
            return report
    if seen != len(heads):
        report.problem = Problem(None, "altered", f"{len(heads)} aggregate chains but "
                                                  f"{seen} chain heads")
    return report


def _norm(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    return value


# -- storage --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditEntry:
    position: int
    event_id: str
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int
    event_type: str
    actor_id: str | None
    actor_role: str | None
    business_date: str | None
    recorded_at: str
    placement_id: str | None
    learner_id: str | None
    organisation_id: str | None
    summary: str
    reason: str | None
    chain_hash: str
    global_hash: str | None


class AuditTrailProjection:
    """Stores one entry per event with both hashes, and the heads of the chains."""

    name = NAME

    def __init__(self, tables: AuditTables | None = None) -> None:
        self.tables = tables or LIVE_TABLES

    def legacy_row_table(self) -> Table | None:
        """No earlier layout kept hour entries here."""
        return None

    def apply(self, conn: Connection, event: Envelope) -> None:
        self.apply_many(conn, [event])

    def apply_many(self, conn: Connection, events: Sequence[Envelope]) -> None:
        if not events:
            return
        t = self.tables
        stored = load_rows(conn, t.chain_head, t.chain_head.c.aggregate_id,
                           (e.aggregate_id for e in events))
        heads = {k: ChainHead(v["aggregate_id"], v["version"], v["hash"], v["learner_id"],
                              v["organisation_id"]) for k, v in stored.items()}
        changed: set[str] = set()
        new_entries: dict[int, dict[str, Any]] = {}
        for event in events:
            head = heads.get(event.aggregate_id)
            if head is not None and event.aggregate_version <= head.version:
                continue  # already in the trail: applying twice changes nothing
            entry, heads[event.aggregate_id] = derive(event, head)
            entry["global_hash"] = None
            new_entries[event.position] = entry
            changed.add(event.aggregate_id)
        if not new_entries:
            return
        updates = self._extend_global_chain(conn, new_entries)
        insert_rows(conn, t.entry, [new_entries[p] for p in sorted(new_entries)])
        if updates:
            conn.execute(
                update(t.entry).where(t.entry.c.position == bindparam("p")).values(
                    global_hash=bindparam("h")),
                updates,
            )
        replace_rows(conn, t.chain_head, t.chain_head.c.aggregate_id, [
            {"aggregate_id": h.aggregate_id, "version": h.version, "hash": h.hash,
             "learner_id": h.learner_id, "organisation_id": h.organisation_id}
            for h in (heads[k] for k in sorted(changed))])

    def _extend_global_chain(self, conn: Connection, new_entries: dict[int, dict[str, Any]]
                             ) -> list[dict[str, Any]]:
        """Chain every entry whose lower positions have all arrived; return the updates for
        entries stored by earlier polls (new entries get their hash before insertion)."""
        t = self.tables
        head = conn.execute(select(t.global_head).where(
            t.global_head.c.id == GLOBAL_HEAD_ID)).mappings().first()
        position = int(head["position"]) if head else FIRST_POSITION - 1
        current = str(head["hash"]) if head else GENESIS
        start = position
        updates: list[dict[str, Any]] = []
        waiting: dict[int, str] = {}
        exhausted = False
        while True:
            wanted = position + 1
            if wanted in new_entries:
                current = chain(current, new_entries[wanted]["event"].encode("utf-8"))
                new_entries[wanted]["global_hash"] = current
            elif wanted in waiting:
                current = chain(current, waiting.pop(wanted).encode("utf-8"))
                updates.append({"p": wanted, "h": current})
            elif not exhausted:
                rows = conn.execute(
                    select(t.entry.c.position, t.entry.c.event)
                    .where(t.entry.c.position >= wanted, t.entry.c.global_hash.is_(None))
                    .order_by(t.entry.c.position).limit(2000)).all()
                waiting = {int(p): str(e) for p, e in rows}
                exhausted = len(rows) < 2000
                if wanted not in waiting:
                    break
                continue
            else:
                break
            position = wanted
        if position != start:
            values = {"position": position, "hash": current}
            if head is None:
                conn.execute(insert(t.global_head).values(id=GLOBAL_HEAD_ID, **values))
            else:
                conn.execute(update(t.global_head).where(
                    t.global_head.c.id == GLOBAL_HEAD_ID).values(**values))
        return updates

    # -- queries ------------------------------------------------------------------------

    def entries(
        self, conn: Connection, *, placement_id: str | None = None,
        learner_id: str | None = None, actor_id: str | None = None,
        aggregate_id: str | None = None, organisation_id: str | None = None,
        event_type: str | None = None, business_from: str | None = None,
        business_to: str | None = None, recorded_from: str | None = None,
        recorded_to: str | None = None, from_position: int | None = None,
        to_position: int | None = None, limit: int = 100, offset: int = 0,
    ) -> list[AuditEntry]:
        e = self.tables.entry
        query = select(*(e.c[f] for f in AuditEntry.__dataclass_fields__)).order_by(e.c.position)
        for column, value in ((e.c.placement_id, placement_id), (e.c.learner_id, learner_id),
                              (e.c.actor_id, actor_id), (e.c.aggregate_id, aggregate_id),
                              (e.c.organisation_id, organisation_id),
                              (e.c.event_type, event_type)):
            if value is not None:
                query = query.where(column == value)
        if business_from is not None:
            query = query.where(e.c.business_date >= business_from)
        if business_to is not None:
            query = query.where(e.c.business_date <= business_to)
        if recorded_from is not None:
            query = query.where(e.c.recorded_at >= recorded_from)
        if recorded_to is not None:  # a date includes its whole day
            query = query.where(e.c.recorded_at < _day_after(recorded_to))
        if from_position is not None:  # the range a checkpoint or a failed verify names
            query = query.where(e.c.position >= from_position)
        if to_position is not None:
            query = query.where(e.c.position <= to_position)
        rows = conn.execute(query.limit(limit).offset(offset)).mappings().all()
        return [AuditEntry(**r) for r in rows]

    def global_head(self, conn: Connection) -> tuple[int, str] | None:
        """The last position chained globally and its hash (what a checkpoint signs)."""
        t = self.tables
        head = conn.execute(select(t.global_head.c.position, t.global_head.c.hash).where(
            t.global_head.c.id == GLOBAL_HEAD_ID)).first()
        return (int(head[0]), str(head[1])) if head is not None else None

    def stored_between(self, conn: Connection, after: int, upto: int
                       ) -> list[dict[str, Any]]:
        """The stored entries of positions ``after + 1 .. upto``: what a checkpoint
        mismatch is narrowed down to."""
        e = self.tables.entry
        rows = conn.execute(select(e.c.position, e.c.event, e.c.aggregate_type,
                                   e.c.aggregate_id, e.c.event_type)
                            .where(e.c.position > after, e.c.position <= upto)
                            .order_by(e.c.position)).mappings().all()
        return [dict(r) for r in rows]

    def verify(self, conn: Connection, anchors: Iterable[Anchor] = ()) -> VerifyReport:
        t = self.tables
        head = conn.execute(select(t.global_head).where(
            t.global_head.c.id == GLOBAL_HEAD_ID)).mappings().first()
        return verify_rows(
            _stream(conn, select(t.entry).order_by(t.entry.c.position)),
            dict(head) if head is not None else None,
            _stream(conn, select(t.chain_head)), anchors)


def _stream(conn: Connection, query: Any) -> Iterator[Mapping[str, Any]]:
    for row in conn.execute(query.execution_options(yield_per=5000)).mappings():
        yield dict(row)


def _day_after(day: str) -> str:
    try:
        return (date.fromisoformat(day[:10]) + timedelta(days=1)).isoformat()
    except ValueError:
        return day
