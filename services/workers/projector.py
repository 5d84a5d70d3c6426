"""Kafka -> read models.

For each poll it opens one database transaction, applies every new event to every
projection, and moves its positions (partition offsets and per-aggregate versions)
in that same transaction: a crash anywhere leaves read models and positions agreeing,
and an event read twice changes nothing.

One projector per consumer name runs at a time: it holds that consumer's lease
(``infra/leases.py``) and a second one waits for it (docs/decisions/039).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass, field

from kafka.errors import KafkaError
from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    delete,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import OperationalError

from domain.contract.envelope import Envelope
from infra import kafka as kafka_io
from infra.consumer import (
    Decision,
    Delivery,
    PartitionPosition,
    Reader,
    SequenceGap,
    TopicReader,
    decide,
)
from infra.leases import Lease, LeaseLost
from infra.prefetch import PrefetchingReader
from projections.registry import REGISTRY, Projection, default_projections
from projections.tables import applied_versions, consumer_positions, ensure_indexes, metadata
from services.workers import audit_checkpoints

log = logging.getLogger(__name__)


class TopicChanged(RuntimeError):
    """The topic under a running reader was re-created; reconnect and check positions."""


def _check_not_recreated(reader: Reader) -> None:
    for partition, position in reader.positions.items():
        highwater = reader.highwater(partition)
        if highwater is not None and highwater < position.next_offset:
            raise TopicChanged(f"partition {partition} now ends before this reader's position")


VERSION_CACHE_LIMIT = 200_000


@dataclass
class ProjectorStatus:
    running: bool = False
    phase: str = "stopped"
    """waiting_for_lease, starting (lag not known yet), projecting."""
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
        max_batch: int = 5000,
        prefetch: bool = False,
    ) -> None:
        """``prefetch``: fetch and decode records in a child process while this one folds
        (``infra/prefetch.py``, decision 063); for replays and long backlogs."""
        self.engine = engine
        self.bootstrap = bootstrap
        self.topic = topic
        self.consumer_name = consumer_name
        self.projections = projections if projections is not None else default_projections()
        self.poll_timeout_ms = poll_timeout_ms
        self.max_batch = max_batch
        self.prefetch = prefetch
        self.status = ProjectorStatus()
        self._versions: dict[str, int] = {}
        metadata.create_all(engine)
        self.lease = Lease.for_engine(engine, f"projector:{consumer_name}:{topic}")
        self._legacy: list[str] | None = None
        self._upgraded = False

    def legacy_layouts(self) -> list[str]:
        """This projector's projections whose tables an earlier layout created: a placement
        row holding all its hour entries as one ``entries`` document (decision 025).
        ``create_all`` does not change an existing table, so they are rebuilt instead."""
        found = []
        inspector = inspect(self.engine)
        for projection in self.projections:
            row_table = projection.legacy_row_table()
            if row_table is None or not inspector.has_table(row_table.name):
                continue
            if any(c["name"] == "entries" for c in inspector.get_columns(row_table.name)):
                found.append(projection.name)
        return found

    def upgrade_schema(self) -> None:
        """Bring read models an earlier release made up to this one's, once, before
        applying anything, and only under the lease, so two processes never race to do it:

        - indexes added since the tables were made (decision 070) are created; a rebuild's
          fresh tables come with theirs, so only the live projector needs this;
        - what an earlier layout left is rebuilt (replay and swap, decision 021): the new
          code cannot write into the old tables.
        """
        if not self._upgraded:
            ensure_indexes(self.engine,
                           [t for kind in REGISTRY.values() for t in kind.live_tables()])
            self._upgraded = True
        if self._legacy is None:
            self._legacy = self.legacy_layouts()
        if not self._legacy:
            return
        log.warning("read models in an earlier layout: rebuilding them before serving",
                    extra={"projections": ",".join(self._legacy)})
        from services.workers.rebuild import Rebuild  # rebuilds run a Projector

        Rebuild(self.engine, bootstrap=self.bootstrap, topic=self.topic, names=self._legacy,
                live_consumer=self.consumer_name, poll_timeout_ms=self.poll_timeout_ms,
                ).run(swap=True)
        self._legacy = []

    # -- positions, held in the read-model database ---------------------------------

    def projection_lags(self) -> dict[str, int | None]:
        """Offsets behind the topic end, per projection. Every projection of this projector
        moves with its one consumer position (they share the transaction), so they share a
        lag; a rebuild runs as another consumer with its own."""
        return {p.name: self.status.lag for p in self.projections}

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

    def _last_versions(self, conn: Connection, aggregate_ids: set[str]) -> dict[str, int]:
        """Last applied version per aggregate (0: none), from the cache or in one query per
        few hundred ids. The cache is bounded so a long replay keeps memory flat."""
        if len(self._versions) > VERSION_CACHE_LIMIT:
            self._versions.clear()
        missing = sorted(a for a in aggregate_ids if a not in self._versions)
        for start in range(0, len(missing), 500):
            part = missing[start:start + 500]
            found = dict(conn.execute(
                select(applied_versions.c.aggregate_id, applied_versions.c.version).where(
                    applied_versions.c.consumer == self.consumer_name,
                    applied_versions.c.aggregate_id.in_(part),
                )
            ).all())
            for aggregate_id in part:
                self._versions[aggregate_id] = int(found.get(aggregate_id, 0))
        return {a: self._versions[a] for a in aggregate_ids}

    def apply_batch(self, reader: Reader, deliveries: list[Delivery],
                    conn: Connection | None = None) -> int:
        """Apply one poll's deliveries in one transaction; return how many were new.

        With ``conn`` the work joins that (caller's) transaction: the rebuild's swap applies
        its last events inside the transaction that renames the tables.

        The cyclic garbage collector is paused for the batch: a replay batch allocates a few
        hundred thousand short-lived objects (envelopes, states, rows), freed by reference
        counting, and the collector's passes over them were a seventh of the replay's time.
        Anything cyclic is collected when it resumes, a fraction of a second later.
        """
        paused = gc.isenabled()
        if paused:
            gc.disable()
        try:
            if conn is None:
                with self.engine.begin() as own:
                    applied, skipped, seen = self._apply_in(own, deliveries)
            else:
                applied, skipped, seen = self._apply_in(conn, deliveries)
        except Exception:
            self._versions.clear()  # the cache may hold versions of a rolled-back transaction
            raise
        finally:
            if paused:
                gc.enable()
        self._versions.update(seen)
        for delivery in deliveries:
            reader.advance(delivery)
        self.status.applied_total += applied
        self.status.duplicates_skipped += skipped
        if applied:
            self.status.last_applied_at = time.time()
        return applied

    def _apply_in(self, conn: Connection, deliveries: list[Delivery]
                  ) -> tuple[int, int, dict[str, int]]:
        before = self._last_versions(conn, {d.envelope.aggregate_id for d in deliveries})
        last = dict(before)
        to_apply: list[Envelope] = []
        newest: dict[str, Envelope] = {}
        skipped = 0
        moved: dict[int, Delivery] = {}
        for delivery in deliveries:
            envelope = delivery.envelope
            if decide(envelope, last[envelope.aggregate_id]) is Decision.APPLY:
                to_apply.append(envelope)
                last[envelope.aggregate_id] = envelope.aggregate_version
                newest[envelope.aggregate_id] = envelope
            else:
                skipped += 1
            moved[delivery.partition] = delivery
        if to_apply:
            for projection in self.projections:
                projection.apply_many(conn, to_apply)
            self._save_versions(conn, newest, before)
        for partition, delivery in moved.items():
            self._save_position(conn, partition, delivery)
        return len(to_apply), skipped, {a: e.aggregate_version for a, e in newest.items()}

    def _save_versions(self, conn: Connection, newest: dict[str, Envelope],
                       before: dict[str, int]) -> None:
        updates = [{"b_id": a, "b_version": e.aggregate_version, "b_position": e.position}
                   for a, e in newest.items() if before[a] > 0]
        inserts = [{"consumer": self.consumer_name, "aggregate_id": a,
                    "version": e.aggregate_version, "position": e.position}
                   for a, e in newest.items() if before[a] == 0]
        if updates:
            conn.execute(
                update(applied_versions)
                .where(
                    applied_versions.c.consumer == self.consumer_name,
                    applied_versions.c.aggregate_id == bindparam("b_id"),
                )
                .values(version=bindparam("b_version"), position=bindparam("b_position")),
                updates,
            )
        if inserts:
            conn.execute(insert(applied_versions), inserts)

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
                if not self.lease.held:
                    self.status.phase = "waiting_for_lease"
                    if not self.lease.acquire(stop):
                        return
                    log.info("projector lease acquired", extra={"lease": self.lease.name})
                try:
                    self._session(stop)
                    backoff = 0.2
                except LeaseLost as error:
                    self.status.connected = False
                    self.status.last_error = str(error)
                    log.warning("projector lost its lease; waiting for it again")
                except SequenceGap as error:
                    if gap_retried:
                        self.status.last_error = str(error)
                        self.status.fatal = True
                        log.error("projector stopped: %s", error)
                        return
                    gap_retried = True
                    log.warning("sequence gap; checking positions against the topic again")
                except (KafkaError, OSError, TopicChanged, OperationalError) as error:
                    # OperationalError: the database was busy (e.g. a rebuild swapping tables
                    # holds the lock) or went away; the transaction rolled back, so reconnect
                    # and resume from the saved positions.
                    self.status.connected = False
                    self.status.last_error = f"{type(error).__name__}: {error}"
                    log.warning("projector reconnecting", extra={"error": str(error)})
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                else:
                    gap_retried = False
        finally:
            self.lease.release()
            self.status.running = False
            self.status.connected = False
            self.status.phase = "stopped"

    def _session(self, stop: threading.Event) -> None:
        self.status.phase = "starting"
        self.status.lag = None
        self.upgrade_schema()
        admin = kafka_io.admin_client(self.bootstrap)
        try:
            while not kafka_io.wait_for_topic(admin, self.topic, timeout=1.0):
                if stop.is_set():
                    return
            partitions = kafka_io.partition_count(admin, self.topic)
        finally:
            admin.close()
        client_id = f"wbl-projector-{self.consumer_name}"
        reader: Reader
        if self.prefetch:
            reader = PrefetchingReader(self.bootstrap, self.topic, partitions,
                                       self.load_positions(), client_id=client_id,
                                       batch=self.max_batch, timeout_ms=self.poll_timeout_ms)
        else:
            reader = TopicReader(kafka_io.consumer(self.bootstrap, client_id=client_id),
                                 self.topic, partitions, self.load_positions())
        try:
            self._read(stop, reader, partitions)
        finally:
            reader.close()

    def _read(self, stop: threading.Event, reader: Reader, partitions: int) -> None:
        self.status.connected = True
        next_layout_check = time.monotonic() + 5
        while not stop.is_set():
            self.lease.check()
            deliveries = reader.poll(self.poll_timeout_ms)
            # Behind the topic end (a replay, a backlog), take what is already fetched
            # into one transaction: fewer commits and each touched row written once.
            while deliveries and len(deliveries) < self.max_batch:
                more = reader.poll(0)
                if not more:
                    break
                deliveries.extend(more)
            self.status.topic_resets += reader.resets
            reader.resets = 0
            if deliveries:
                self.apply_batch(reader, deliveries)
                audit_checkpoints.after_commit(self)  # signed head, decision 041
            self.status.lag = reader.lag()
            self.status.phase = "projecting"
            _check_not_recreated(reader)
            if time.monotonic() >= next_layout_check:
                found = reader.partition_count()
                if found != partitions:
                    raise TopicChanged(f"topic now has {found} partitions, not {partitions}")
                next_layout_check = time.monotonic() + 5
