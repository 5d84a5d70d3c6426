"""Helpers for the projection tests: publish a generated history to a real topic exactly as
the relay would (CloudEvents binary mode, keyed by aggregate), with duplicates, and run a
projector until it has applied every distinct event."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from kafka import KafkaProducer
from sqlalchemy import Engine, func, select

from domain.contract.canonical import canonical_json
from domain.contract.cloudevents import SPEC_VERSION, TYPE_PREFIX
from domain.contract.envelope import Envelope
from infra import kafka as kafka_io
from infra.settings import Settings
from projections.audit_trail import LIVE_TABLES as AUDIT
from services.workers.projector import Projector


def record_of(e: Envelope) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    headers = [
        ("ce_specversion", SPEC_VERSION.encode()), ("ce_id", e.event_id.encode()),
        ("ce_source", b"/wbl-ledger-test"), ("ce_type", (TYPE_PREFIX + e.event_type).encode()),
        ("ce_time", e.recorded_at.isoformat().encode()), ("ce_subject", e.aggregate_id.encode()),
        ("content-type", b"application/json"),
        ("ce_aggregatetype", e.aggregate_type.encode()),
        ("ce_aggregateversion", str(e.aggregate_version).encode()),
        ("ce_position", str(e.position).encode()),
        ("ce_schemaversion", str(e.schema_version).encode()),
    ]
    return e.aggregate_id.encode(), canonical_json(dict(e.data)), headers


def create_topic(bootstrap: str, topic: str, partitions: int = 3) -> None:
    admin = kafka_io.admin_client(bootstrap)
    try:
        kafka_io.ensure_topic(admin, Settings(topic=topic, topic_partitions=partitions))
    finally:
        admin.close()


def publish(bootstrap: str, topic: str, envelopes: list[Envelope], *,
            duplicates: float = 0.0, replay_head: float = 0.0, seed: int = 1) -> int:
    """Publish in store order; ``duplicates``: share of events sent twice in a row (a relay
    retry); ``replay_head``: share of the history sent again at the end (a relay refill).
    Returns the number of records sent."""
    rng = random.Random(seed)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                             batch_size=262144, max_in_flight_requests_per_connection=1,
                             compression_type="gzip")
    sent = 0
    try:
        for e in envelopes:
            key, value, headers = record_of(e)
            for _ in range(2 if rng.random() < duplicates else 1):
                producer.send(topic, key=key, value=value, headers=headers)
                sent += 1
        for e in envelopes[:int(len(envelopes) * replay_head)]:
            key, value, headers = record_of(e)
            producer.send(topic, key=key, value=value, headers=headers)
            sent += 1
        producer.flush(timeout=60)
    finally:
        producer.close()
    return sent


def audit_entries(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(AUDIT.entry)).scalar() or 0)


def wait_until_applied(engine: Engine, expected: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while audit_entries(engine) < expected:
        assert time.monotonic() < deadline, f"{audit_entries(engine)} of {expected} applied"
        time.sleep(0.2)


@contextmanager
def running(projector: Projector) -> Iterator[Projector]:
    stop = threading.Event()
    thread = threading.Thread(target=projector.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield projector
    finally:
        stop.set()
        thread.join(timeout=20)
