"""Test helpers: read a whole topic, and reconcile it with the event store."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from services.ledger import Ledger


@dataclass(frozen=True)
class TopicRecord:
    partition: int
    offset: int
    key: bytes
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def aggregate_id(self) -> str:
        return self.headers["ce_subject"]

    @property
    def version(self) -> int:
        return int(self.headers["ce_aggregateversion"])


def read_topic(bootstrap: str, topic: str, timeout: float = 30.0) -> list[TopicRecord]:
    """Every record of every partition, read up to each partition's high watermark."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        (description,) = admin.describe_topics([topic])
        partitions = [p["partition_index"] for p in description["partitions"]]
    finally:
        admin.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             group_id=None, auto_offset_reset="earliest")
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    records: list[TopicRecord] = []
    done: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(done) < len(tps):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for batch in consumer.poll(timeout_ms=300).values():
                for r in batch:
                    records.append(TopicRecord(
                        r.partition, r.offset, r.key,
                        {k: v.decode() for k, v in r.headers}, json.loads(r.value)))
            for tp in tps:
                hw = consumer.highwater(tp)
                if hw is not None and consumer.position(tp) >= hw:
                    done.add(tp.partition)
    finally:
        consumer.close()
    return sorted(records, key=lambda r: (r.partition, r.offset))


def stored_events(ledger: Ledger) -> dict[tuple[str, int], int]:
    """(aggregate id, version) -> position, for every event in the store."""
    result: dict[tuple[str, int], int] = {}
    start = 0
    while True:
        batch = ledger.recorder.select_notifications(start=start, limit=1000,
                                                     inclusive_of_start=False)
        if not batch:
            return result
        for n in batch:
            result[(str(n.originator_id), n.originator_version)] = n.id
        start = batch[-1].id


@dataclass
class Reconciliation:
    records: int
    distinct: int
    duplicates: int


def reconcile(ledger: Ledger, records: list[TopicRecord]) -> Reconciliation:
    """Assert the topic holds exactly the stored history, each aggregate in version order
    within one partition, copies only of events already seen; return the counts."""
    store = stored_events(ledger)
    seen: dict[tuple[str, int], TopicRecord] = {}
    last_version: dict[str, int] = defaultdict(int)
    partition_of: dict[str, int] = {}
    duplicates = 0
    for r in records:  # sorted by partition, then offset
        assert partition_of.setdefault(r.aggregate_id, r.partition) == r.partition, (
            f"{r.aggregate_id} found in two partitions")
        key = (r.aggregate_id, r.version)
        if key in seen:
            duplicates += 1
            assert seen[key].body == r.body, f"two different bodies for {key}"
            continue
        assert r.version == last_version[r.aggregate_id] + 1, (
            f"{r.aggregate_id}: version {r.version} after {last_version[r.aggregate_id]} "
            f"(partition {r.partition} offset {r.offset})")
        last_version[r.aggregate_id] = r.version
        seen[key] = r
        assert int(r.headers["ce_position"]) == store.get(key), f"unknown or moved event {key}"
    missing = set(store) - set(seen)
    assert not missing, (
        f"{len(missing)} stored events are not on the topic, e.g. {sorted(missing)[:3]}")
    return Reconciliation(records=len(records), distinct=len(seen), duplicates=duplicates)


# -- a realistic workload through the ledger application --------------------------------

WORKLOAD_ORG = "org-1"


def placement_story(ledger: Ledger, *, learner: str, days: int = 5) -> int:
    """One placement's life up to approved hours; returns how many events it recorded."""
    from datetime import date, timedelta
    from decimal import Decimal

    from domain.actor import Actor, Role

    coordinator = Actor("coord-1", Role.COORDINATOR, WORKLOAD_ORG)
    supervisor = Actor("super-1", Role.SUPERVISOR, WORKLOAD_ORG)
    employer = Actor("employer-1", Role.EMPLOYER, WORKLOAD_ORG)
    me = Actor(learner, Role.LEARNER, WORKLOAD_ORG)
    before = ledger.recorder.max_notification_id() or 0
    opportunity = ledger.post_opportunity(
        coordinator, organisation_id=WORKLOAD_ORG, title="Machinist intern",
        employer_name="Acme", worksite="Main St", wbl_type="PaidInternship", paid=True,
        hourly_wage=Decimal("16.50"), starts_on=date(2026, 1, 5), ends_on=date(2026, 6, 30),
        posted_on=date(2026, 1, 2))
    placement = ledger.match_learner(
        coordinator, opportunity.aggregate_id, learner_id=learner, supervisor_id=supervisor.id,
        learner_born_on=date(2000, 1, 1), matched_on=date(2026, 1, 3)).aggregate_id
    for party, actor in (("learner", me), ("employer", employer), ("coordinator", coordinator)):
        ledger.sign_agreement(actor, placement, party=party, signed_on=date(2026, 1, 4))
    ledger.start_placement(coordinator, placement, started_on=date(2026, 1, 5))
    for day in range(days):
        logged = ledger.log_hours(me, placement, work_date=date(2026, 1, 5) + timedelta(day),
                                  minutes=240)
        ledger.approve_hours(supervisor, placement, entry_id=str(logged.created_id),
                             approved_on=date(2026, 1, 5) + timedelta(day + 1))
    return (ledger.recorder.max_notification_id() or 0) - before
