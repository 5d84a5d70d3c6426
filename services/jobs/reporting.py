"""State reporting: compute a report as of a cut-off, keep it, compare it with the last one
for the same period, and publish it on the reporting topic for state systems.

The cut-off is a position in the event log (or the last position recorded by a given
time). Everything the report reads is fixed by it: the events up to that position (the
organisation hierarchy among them: decision 047), the learner profiles as they stood then,
and the report kept for the period with the latest earlier cut-off (what readers already
know, so the suppression does not count on hiding it: decision 048). So the same cut-off
gives the same bytes years later, whatever corrections or moves were recorded since; a new
report with a later cut-off shows them, and `difference` lists what changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, cast

from kafka import KafkaProducer
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
)

from domain.contract.canonical import canonical_json
from domain.contract.catalogue import topics_of
from domain.contract.cloudevents import from_record, to_record
from domain.contract.envelope import Envelope
from infra import kafka as kafka_io
from infra.personal_data import PersonalDataVault
from infra.settings import Settings
from projections.state_report import (
    REPORT_EVENTS,
    ReportingPeriod,
    build_report,
    difference,
)
from services.ledger import Ledger

reporting_metadata = MetaData()

state_reports = Table(
    "state_reports",
    reporting_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("period", String(50), nullable=False, index=True),
    Column("cutoff_position", BigInteger, nullable=False),
    Column("content_hash", String(80), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


class CutoffError(ValueError):
    pass


def envelopes_until(ledger: Ledger, position: int, source: str,
                    event_types: Iterable[str] | None = None) -> Iterator[Envelope]:
    """Every stored event up to ``position``, in the published form readers see; with
    ``event_types``, only those (the store filters by topic: nothing else is decoded)."""
    topics = topics_of(event_types) if event_types is not None else ()
    start = 0
    while start < position:
        batch = ledger.recorder.select_notifications(start=start, limit=2000, stop=position,
                                                     topics=topics, inclusive_of_start=False)
        if not batch:
            return
        for n in batch:
            record = to_record(ledger.mapper.to_domain_event(n), n.topic, n.id, source)
            yield from_record(record.headers, record.value)
        start = batch[-1].id


def resolve_cutoff(ledger: Ledger, *, position: int | None = None,
                   as_of: datetime | None = None) -> tuple[int, datetime]:
    """(position, its recording time). ``as_of`` picks the last event recorded by then."""
    last = ledger.recorder.max_notification_id() or 0
    if position is not None and position > last:
        raise CutoffError(f"Position {position} is beyond the log (last is {last}).")
    chosen, recorded = 0, datetime.min.replace(tzinfo=UTC)
    target = position if position is not None else last
    if as_of is None:
        # Only the last event up to the target is needed: read back from it, not every
        # event from the start (at 100,000 events that decoded them all again: 5 s).
        window = 1000
        while target > 0:
            start = max(target - window, 0)
            batch = ledger.recorder.select_notifications(
                start=start, limit=window + 1, stop=target, inclusive_of_start=False)
            if batch:
                event: Any = ledger.mapper.to_domain_event(batch[-1])
                chosen, recorded = batch[-1].id, cast(datetime, event.timestamp)
                break
            if start == 0:
                break
            window *= 10
        return (position if position is not None else chosen), recorded
    start = 0
    while start < target:
        batch = ledger.recorder.select_notifications(start=start, limit=5000, stop=target,
                                                     inclusive_of_start=False)
        if not batch:
            break
        for n in batch:
            event = ledger.mapper.to_domain_event(n)  # every event of ours has a timestamp
            when = cast(datetime, event.timestamp)
            if as_of is not None and when > as_of:
                return chosen, recorded
            chosen, recorded = n.id, when
        start = batch[-1].id
    if position is not None:
        return position, recorded
    return chosen, recorded


def previous_report(engine: Engine, period: str, cutoff: int) -> dict[str, Any] | None:
    """The report kept for ``period`` with the latest cut-off before ``cutoff``: what its
    readers already know. Reports kept later at later cut-offs do not change it, so a
    report computed again at the same cut-off is the same bytes."""
    reporting_metadata.create_all(engine)
    with engine.connect() as conn:
        body = conn.execute(
            select(state_reports.c.body).where(
                state_reports.c.period == period, state_reports.c.cutoff_position < cutoff)
            .order_by(state_reports.c.cutoff_position.desc(), state_reports.c.id)
            .limit(1)).scalar()
    return json.loads(body) if body else None


def compute_state_report(
    ledger: Ledger, engine: Engine, vault: PersonalDataVault, settings: Settings,
    period: ReportingPeriod, *, position: int | None = None, as_of: datetime | None = None,
    min_cell: int = 10, other_groups: tuple[str, ...] = (), workers: int = 1,
) -> dict[str, Any]:
    """The report as of the cut-off; ``HierarchyUnresolved`` when an organisation it names
    was not registered (as an event) by then. ``workers``: processes for the suppression
    (``wbl report state`` uses every core; a server keeps its requests in one)."""
    cutoff, recorded = resolve_cutoff(ledger, position=position, as_of=as_of)
    # The events as they are read, only the types the report folds, in one pass that keeps
    # none of them: the report's memory does not grow with the history (decision 066).
    events = envelopes_until(ledger, cutoff, settings.event_source, REPORT_EVENTS)
    profiles = vault.profiles_as_of(None, recorded)  # learners absent here: NotReported
    return build_report(period, events, None, profiles,
                        cutoff_position=cutoff, cutoff_recorded_at=recorded.isoformat(),
                        min_cell=min_cell, other_groups=other_groups,
                        previous=previous_report(engine, period.name, cutoff),
                        workers=workers)


def save_report(engine: Engine, report: dict[str, Any]) -> list[dict[str, Any]]:
    """Keep the report; return its difference from the last one kept for the same period."""
    reporting_metadata.create_all(engine)
    with engine.begin() as conn:
        previous = conn.execute(
            select(state_reports.c.body).where(
                state_reports.c.period == report["period"]["name"])
            .order_by(state_reports.c.id.desc()).limit(1)).scalar()
        conn.execute(insert(state_reports).values(
            period=report["period"]["name"], cutoff_position=report["cutoff"]["position"],
            content_hash=report["content_hash"], body=json.dumps(report, sort_keys=True),
            created_at=datetime.now(UTC)))
    return difference(json.loads(previous), report) if previous else []


def publish_report(bootstrap: str, topic: str, report: dict[str, Any], source: str) -> int:
    """One record per organisation on the reporting topic (key: organisation id), each a
    CloudEvent carrying the period, the cut-off and the report's content hash."""
    admin = kafka_io.admin_client(bootstrap)
    try:
        kafka_io.ensure_topic(admin, Settings(topic=topic))
    finally:
        admin.close()
    producer: KafkaProducer = kafka_io.producer(bootstrap)
    try:
        by_org: dict[str, list[dict[str, Any]]] = {}
        for row in report["figures"]:
            by_org.setdefault(row["organisation_id"], []).append(row)
        futures = []
        for org, rows in sorted(by_org.items()):
            body = {"period": report["period"], "cutoff": report["cutoff"],
                    "content_hash": report["content_hash"], "organisation_id": org,
                    "figures": rows,
                    "perkins_5s3": [r for r in report["perkins_5s3"]
                                    if r["organisation_id"] == org]}
            headers = [
                ("ce_specversion", b"1.0"),
                ("ce_id", f"{report['content_hash']}/{org}".encode()),
                ("ce_source", source.encode()),
                ("ce_type", b"org.wbl-ledger.StateReportPublished"),
                ("ce_time", datetime.now(UTC).isoformat().encode()),
                ("ce_subject", org.encode()),
                ("content-type", b"application/json"),
            ]
            futures.append(producer.send(topic, key=org.encode(), value=canonical_json(body),
                                         headers=headers))
        producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=30)
        return len(futures)
    finally:
        producer.close()

