"""Kafka -> read models.

For each poll it opens one database transaction, applies every new event to every
projection, and moves its positions (partition offsets and per-aggregate versions)
in that same transaction: a crash anywhere leaves read models and positions agreeing,
and an event read twice changes nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from kafka.errors import KafkaError
from sqlalchemy import Connection, Engine, delete, insert, select, update

from infra import kafka as kafka_io
from infra.consumer import (
    Decision,
    Delivery,
    PartitionPosition,
    SequenceGap,
    TopicReader,
    decide,
)
from projections.envelope import Envelope
from projections.opportunities import OpportunityProjection
from projections.tables import applied_versions, consumer_positions, metadata

log = logging.getLogger(__name__)


class TopicChanged(RuntimeError):
    """The topic under a running reader was re-created; reconnect and check positions."""


def _check_not_recreated(reader: TopicReader) -> None:
    for tp in reader.tps:
        highwater = reader.consumer.highwater(tp)
        if highwater is not None and highwater < reader.positions[tp.partition].next_offset:
            raise TopicChanged(f"partition {tp.partition} now ends before this reader's position")


class Projection(Protocol):
    name: str

    def apply(self, conn: Connection, event: Envelope) -> None: ...


def default_projections() -> list[Projection]:
    return [OpportunityProjection()]


@dataclass
class ProjectorStatus:
    running: bool = False
    connected: bool = False
    applied_total: int = 0
    duplicates_skipped: int = 0
    topic_resets: int = 0
    lag: int | None = None
    last_error: str | None = None
    fatal: bool = False
    last_applied_at: float | None = None
    errors: list[str] = field(default_factory=list)


class Projector:
    def __init__(
        self,
        engine: Engine,
        *,
        bootstrap: str,
        topic: str,
        consumer_name: str = "live",
        projections: list[Projection] | None = None,
        poll_timeout_ms: int = 200,
    ) -> None:
        self.engine = engine
        self.bootstrap = bootstrap
        self.topic = topic
        self.consumer_name = consumer_name
        self.projections = projections if projections is not None else default_projections()
        self.poll_timeout_ms = poll_timeout_ms
        self.status = ProjectorStatus()
        self._versions: dict[str, int] = {}
        metadata.create_all(engine)

    # -- positions, held in the read-model database ---------------------------------

    def load_positions(self) -> dict[int, PartitionPosition]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(consumer_positions).where(
                    consumer_positions.c.consumer == self.consumer_name,
                    consumer_positions.c.topic == self.topic,
                )
            ).mappings()
            return {
                r["partition"]: PartitionPosition(r["next_offset"], r["last_event_id"])
                for r in rows
            }

    def _last_version(self, conn: Connection, aggregate_id: str) -> int:
        if aggregate_id not in self._versions:
            found = conn.execute(
                select(applied_versions.c.version).where(
                    applied_versions.c.consumer == self.consumer_name,
                    applied_versions.c.aggregate_id == aggregate_id,
                )
            ).scalar()
            self._versions[aggregate_id] = int(found or 0)
        return self._versions[aggregate_id]

    def apply_batch(self, reader: TopicReader, deliveries: list[Delivery]) -> int:
        """Apply one poll's deliveries in one transaction; return how many were new."""
        applied = 0
        seen: dict[str, int] = {}
        try:
            with self.engine.begin() as conn:
                moved: dict[int, Delivery] = {}
                for delivery in deliveries:
                    envelope = delivery.envelope
                    last = seen.get(envelope.aggregate_id)
                    if last is None:
                        last = self._last_version(conn, envelope.aggregate_id)
                    if decide(envelope, last) is Decision.APPLY:
                        for projection in self.projections:
                            projection.apply(conn, envelope)
                        self._save_version(conn, envelope, had_row=last > 0)
                        seen[envelope.aggregate_id] = envelope.aggregate_version
                        applied += 1
                    else:
                        self.status.duplicates_skipped += 1
                    moved[delivery.partition] = delivery
                for partition, delivery in moved.items():
                    self._save_position(conn, partition, delivery)
        except Exception:
            self._versions.clear()  # the cache may hold versions of a rolled-back transaction
            raise
        self._versions.update(seen)
        for delivery in deliveries:
            reader.advance(delivery)
        self.status.applied_total += applied
        if applied:
            self.status.last_applied_at = time.time()
        return applied

    def _save_version(self, conn: Connection, envelope: Envelope, *, had_row: bool) -> None:
        values = {"version": envelope.aggregate_version, "position": envelope.position}
        if had_row:
            conn.execute(
                update(applied_versions)
                .where(
                    applied_versions.c.consumer == self.consumer_name,
                    applied_versions.c.aggregate_id == envelope.aggregate_id,
                )
                .values(**values)
            )
        else:
            conn.execute(
                insert(applied_versions).values(
                    consumer=self.consumer_name, aggregate_id=envelope.aggregate_id, **values
                )
            )

    def _save_position(self, conn: Connection, partition: int, delivery: Delivery) -> None:
        key = (
            consumer_positions.c.consumer == self.consumer_name,
            consumer_positions.c.topic == self.topic,
            consumer_positions.c.partition == partition,
        )
        conn.execute(delete(consumer_positions).where(*key))
        conn.execute(
            insert(consumer_positions).values(
                consumer=self.consumer_name,
                topic=self.topic,
                partition=partition,
                next_offset=delivery.offset + 1,
                last_event_id=delivery.envelope.event_id,
            )
        )

    # -- the loop ---------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; reconnect with backoff when the broker goes away.

        A gap in an aggregate's versions first makes the projector reconnect and check its
        saved positions against the topic (a topic re-created under a running reader looks
        like a gap); only a gap that is still there after that check stops it for good.
        """
        self.status.running = True
        backoff = 0.2
        gap_retried = False
        try:
            while not stop.is_set():
                try:
                    self._session(stop)
                    backoff = 0.2
                except SequenceGap as error:
                    if gap_retried:
                        self.status.last_error = str(error)
                        self.status.fatal = True
                        log.error("projector stopped: %s", error)
                        return
                    gap_retried = True
                    log.warning("sequence gap; checking positions against the topic again")
                except (KafkaError, OSError, TopicChanged) as error:
                    self.status.connected = False
                    self.status.last_error = f"{type(error).__name__}: {error}"
                    log.warning("projector reconnecting", extra={"error": str(error)})
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                else:
                    gap_retried = False
        finally:
            self.status.running = False
            self.status.connected = False

    def _session(self, stop: threading.Event) -> None:
        admin = kafka_io.admin_client(self.bootstrap)
        try:
            while not kafka_io.wait_for_topic(admin, self.topic, timeout=1.0):
                if stop.is_set():
                    return
            partitions = kafka_io.partition_count(admin, self.topic)
        finally:
            admin.close()
        consumer = kafka_io.consumer(
            self.bootstrap, client_id=f"wbl-projector-{self.consumer_name}"
        )
        try:
            reader = TopicReader(consumer, self.topic, partitions, self.load_positions())
            self.status.connected = True
            next_layout_check = time.monotonic() + 5
            while not stop.is_set():
                deliveries = reader.poll(self.poll_timeout_ms)
                self.status.topic_resets += reader.resets
                reader.resets = 0
                if deliveries:
                    self.apply_batch(reader, deliveries)
                self.status.lag = reader.lag()
                _check_not_recreated(reader)
                if time.monotonic() >= next_layout_check:
                    found = consumer.partitions_for_topic(self.topic) or set()
                    if len(found) != partitions:
                        raise TopicChanged(
                            f"topic now has {len(found)} partitions, not {partitions}"
                        )
                    next_layout_check = time.monotonic() + 5
        finally:
            consumer.close()


def wait_for_position(
    engine: Engine, aggregate_id: str, position: int, timeout: float, consumer: str = "live"
) -> bool:
    """Read-your-writes: wait until this aggregate's read models include ``position``.

    The API calls it with the position a command answered; it reads only the projector's
    bookkeeping table, so it works in the API process of a split deployment too.
    """
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        with engine.connect() as conn:
            found = conn.execute(
                select(applied_versions.c.position).where(
                    applied_versions.c.consumer == consumer,
                    applied_versions.c.aggregate_id == aggregate_id,
                )
            ).scalar()
        if found is not None and found >= position:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
