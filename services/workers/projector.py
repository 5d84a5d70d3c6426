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
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from itertools import zip_longest
from typing import Any, Protocol

from kafka.errors import KafkaError
from sqlalchemy import (
    Connection,
    Engine,
    MetaData,
    Table,
    bindparam,
    delete,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.exc import OperationalError

from infra import kafka as kafka_io
from infra.consumer import (
    Decision,
    Delivery,
    PartitionPosition,
    SequenceGap,
    TopicReader,
    decide,
)
from infra.leases import Lease, LeaseLost
from projections import apprenticeship_hours as hours_module
from projections import audit_trail as audit_module
from projections import opportunities as opportunities_module
from projections import transcript as transcript_module
from projections.apprenticeship_hours import ApprenticeshipHoursProjection
from projections.audit_trail import AuditTrailProjection
from projections.envelope import Envelope
from projections.opportunities import OpportunityProjection
from projections.tables import applied_versions, consumer_positions, metadata, projection_swaps
from projections.transcript import TranscriptProjection
from services.workers import audit_checkpoints

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
    return [OpportunityProjection(), TranscriptProjection(), ApprenticeshipHoursProjection(),
            AuditTrailProjection()]


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
    ) -> None:
        self.engine = engine
        self.bootstrap = bootstrap
        self.topic = topic
        self.consumer_name = consumer_name
        self.projections = projections if projections is not None else default_projections()
        self.poll_timeout_ms = poll_timeout_ms
        self.max_batch = max_batch
        self.status = ProjectorStatus()
        self._versions: dict[str, int] = {}
        metadata.create_all(engine)
        self.lease = Lease.for_engine(engine, f"projector:{consumer_name}:{topic}")
        self._legacy: list[str] | None = None

    def legacy_layouts(self) -> list[str]:
        """This projector's projections whose tables an earlier layout created: a placement
        row holding all its hour entries as one ``entries`` document (decision 025).
        ``create_all`` does not change an existing table, so they are rebuilt instead."""
        found = []
        inspector = inspect(self.engine)
        for projection in self.projections:
            tables = getattr(projection, "tables", None)
            row_table = getattr(tables, "experience", None)
            if row_table is None:
                row_table = getattr(tables, "placement", None)
            if not isinstance(row_table, Table) or not inspector.has_table(row_table.name):
                continue
            if any(c["name"] == "entries" for c in inspector.get_columns(row_table.name)):
                found.append(projection.name)
        return found

    def _upgrade_layouts(self) -> None:
        """Rebuild (replay and swap, decision 021) what an earlier layout left, before
        applying anything: the new code cannot write into the old tables."""
        if self._legacy is None:
            self._legacy = self.legacy_layouts()
        if not self._legacy:
            return
        log.warning("read models in an earlier layout: rebuilding them before serving",
                    extra={"projections": ",".join(self._legacy)})
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

    def apply_batch(self, reader: TopicReader, deliveries: list[Delivery],
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
                apply_many = getattr(projection, "apply_many", None)
                if apply_many is not None:
                    apply_many(conn, to_apply)
                else:
                    for envelope in to_apply:
                        projection.apply(conn, envelope)
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
        self._upgrade_layouts()
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


# -- rebuild and check: replay into fresh tables, then swap or compare -------------------------


@dataclass(frozen=True)
class ProjectionKind:
    """How to make a projection that writes into fresh tables named with a suffix."""

    name: str
    live_tables: Callable[[], list[Table]]
    fresh: Callable[[MetaData, str], tuple[Projection, list[Table]]]


class _RebuiltOpportunities(OpportunityProjection):
    """The opportunities fold writing into a copy of ``opportunity_view``."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def apply(self, conn: Connection, event: Envelope) -> None:
        if event.aggregate_type != self.aggregate_type:
            return
        row = conn.execute(select(self.table).where(self.table.c.id == event.aggregate_id)
                           ).mappings().first()
        before = opportunities_module._to_view(row) if row is not None else None
        after = opportunities_module.evolve(before, event)
        if after is None:
            return
        values = asdict(after)
        values["hourly_wage"] = str(after.hourly_wage) if after.hourly_wage is not None else None
        if before is None:
            conn.execute(self.table.insert().values(**values))
        else:
            conn.execute(self.table.update().where(self.table.c.id == after.id).values(**values))


def _fresh_opportunities(md: MetaData, suffix: str) -> tuple[Projection, list[Table]]:
    live = opportunities_module.opportunity_view
    table = live.to_metadata(md, name=f"{live.name}{suffix}")
    for index in list(table.indexes):  # keep index names unique across generations
        index.name = f"{index.name}{suffix}"  # type: ignore[assignment]
    return _RebuiltOpportunities(table), [table]


def _fresh_transcripts(md: MetaData, suffix: str) -> tuple[Projection, list[Table]]:
    tables = transcript_module.make_tables(md, suffix)
    return TranscriptProjection(tables), tables.all


def _fresh_hours(md: MetaData, suffix: str) -> tuple[Projection, list[Table]]:
    tables = hours_module.make_tables(md, suffix)
    return ApprenticeshipHoursProjection(tables), tables.all


def _fresh_audit(md: MetaData, suffix: str) -> tuple[Projection, list[Table]]:
    tables = audit_module.make_tables(md, suffix)
    return AuditTrailProjection(tables), tables.all


PROJECTION_KINDS: dict[str, ProjectionKind] = {
    kind.name: kind for kind in (
        ProjectionKind("opportunities", lambda: [opportunities_module.opportunity_view],
                       _fresh_opportunities),
        ProjectionKind(transcript_module.NAME, lambda: transcript_module.LIVE_TABLES.all,
                       _fresh_transcripts),
        ProjectionKind(hours_module.NAME, lambda: hours_module.LIVE_TABLES.all, _fresh_hours),
        ProjectionKind(audit_module.NAME, lambda: audit_module.LIVE_TABLES.all, _fresh_audit),
    )
}


class RebuildFailed(RuntimeError):
    """The rebuild could not reach the live projector's positions."""


@dataclass
class TableDifference:
    table: str
    live_rows: int
    rebuilt_rows: int
    first_difference: str | None


@dataclass
class RebuildResult:
    names: list[str]
    events_applied: int
    positions: dict[int, int]
    seconds: float
    swapped: bool
    differences: list[TableDifference] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return all(d.first_difference is None for d in self.differences)


ProgressCallback = Callable[[int, int], None]
"""Called with (offsets replayed, offsets to replay) as the rebuild advances."""


class Rebuild:
    """Replay the topic from offset 0 into fresh tables while the live projector keeps
    serving, then, in one transaction, bring the fresh tables to exactly the live
    projector's positions and either swap them in (rename) or compare them with the live
    tables (decision 021).
    """

    def __init__(self, engine: Engine, *, bootstrap: str, topic: str,
                 names: list[str] | None = None, live_consumer: str = "live",
                 poll_timeout_ms: int = 200) -> None:
        unknown = [n for n in names or [] if n not in PROJECTION_KINDS]
        if unknown:
            raise ValueError(f"unknown projection(s): {', '.join(unknown)}; known: "
                             f"{', '.join(PROJECTION_KINDS)}")
        self.engine = engine
        self.bootstrap = bootstrap
        self.topic = topic
        self.names = names or list(PROJECTION_KINDS)
        self.live_consumer = live_consumer
        self.suffix = f"__r{uuid.uuid4().hex[:8]}"
        self.md = MetaData()
        self.fresh: dict[str, tuple[Projection, list[Table]]] = {
            n: PROJECTION_KINDS[n].fresh(self.md, self.suffix) for n in self.names}
        self.projector = Projector(
            engine, bootstrap=bootstrap, topic=topic, consumer_name=f"rebuild{self.suffix}",
            projections=[p for p, _ in self.fresh.values()], poll_timeout_ms=poll_timeout_ms)

    # -- positions ------------------------------------------------------------------------

    def _live_positions(self, conn: Connection) -> dict[int, int]:
        rows = conn.execute(select(consumer_positions.c.partition,
                                   consumer_positions.c.next_offset).where(
            consumer_positions.c.consumer == self.live_consumer,
            consumer_positions.c.topic == self.topic)).all()
        return {int(p): int(o) for p, o in rows}

    def _catch_up(self, reader: TopicReader, targets: dict[int, int],
                  conn: Connection | None, on_progress: ProgressCallback | None,
                  deadline: float) -> int:
        """Read until every partition's position equals its target; never past it."""
        applied = 0
        total = sum(targets.values())
        while True:
            behind = [tp for tp in reader.tps
                      if reader.positions[tp.partition].next_offset < targets.get(tp.partition, 0)]
            ahead = [p for p, pos in reader.positions.items()
                     if pos.next_offset > targets.get(p, 0)]
            if ahead:
                raise RebuildFailed(f"partitions {ahead} were replayed past the live projector "
                                    f"(was the topic re-created?); run the rebuild again")
            if on_progress is not None:
                done = sum(min(reader.positions[p].next_offset, t) for p, t in targets.items())
                on_progress(done, total)
            if not behind:
                return applied
            if time.monotonic() > deadline:
                raise RebuildFailed("the topic did not deliver the records up to the live "
                                    "projector's positions in time")
            if set(behind) != set(reader.consumer.assignment()):
                # Read only the partitions still behind. (Re-assigning, not pause/resume:
                # kafka-python 3.0 was seen to stop fetching a resumed partition.)
                reader.consumer.assign(behind)
                for tp in behind:
                    reader.consumer.seek(tp, reader.positions[tp.partition].next_offset)
            deliveries = reader.poll(self.projector.poll_timeout_ms)
            keep = [d for d in deliveries if d.offset < targets.get(d.partition, 0)]
            overshoot = {d.partition for d in deliveries
                         if d.offset >= targets.get(d.partition, 0)}
            if keep:
                applied += self.projector.apply_batch(reader, keep, conn=conn)
            for p in overshoot:  # records past the target are read again later, if at all
                tp = reader.tps[p]
                reader.consumer.seek(tp, reader.positions[p].next_offset)

    def run(self, *, swap: bool, on_progress: ProgressCallback | None = None,
            timeout: float = 3600.0, close_gap: int = 2000) -> RebuildResult:
        started = time.monotonic()
        deadline = started + timeout
        fresh_tables = [t for _, tables in self.fresh.values() for t in tables]
        metadata.create_all(self.engine)
        self.md.create_all(self.engine, tables=fresh_tables)
        admin = kafka_io.admin_client(self.bootstrap)
        try:
            partitions = kafka_io.partition_count(admin, self.topic)
        finally:
            admin.close()
        consumer = kafka_io.consumer(self.bootstrap,
                                     client_id=f"wbl-projector-rebuild{self.suffix}")
        applied = 0
        swapped = False
        try:
            reader = TopicReader(consumer, self.topic, partitions, {})
            # 1. Replay without locks until close to the (moving) live positions.
            while True:
                with self.engine.connect() as conn:
                    targets = self._live_positions(conn)
                applied += self._catch_up(reader, targets, None, on_progress, deadline)
                with self.engine.connect() as conn:
                    latest = self._live_positions(conn)
                if sum(latest.values()) - sum(targets.values()) <= close_gap:
                    break
            # 2. One transaction: stop the live projector, reach its exact positions, then
            #    swap the tables in or compare them.
            with self.engine.begin() as conn:
                self._lock(conn, swap)
                targets = self._live_positions(conn)
                applied += self._catch_up(reader, targets, conn, on_progress, deadline)
                differences: list[TableDifference] = []
                if swap:
                    self._swap(conn)
                else:
                    differences = self._compare(conn)
                conn.execute(insert(projection_swaps).values(
                    id=self.suffix.strip("_"), projection=",".join(self.names),
                    action="swap" if swap else "check",
                    positions=json.dumps(targets, sort_keys=True), events=applied))
            swapped = swap  # committed
        finally:
            consumer.close()
            self._cleanup(drop_fresh=not swapped)  # a failed swap leaves no fresh tables
        return RebuildResult(names=self.names, events_applied=applied, positions=targets,
                             seconds=time.monotonic() - started, swapped=swap,
                             differences=differences)

    def _lock(self, conn: Connection, swap: bool) -> None:
        """Hold off the live projector for the rest of this transaction.

        SQLite: the first write takes the database's single write lock. PostgreSQL: lock the
        live read-model tables, then the positions table, in the order the projector writes
        them, so it waits for us instead of deadlocking with us.
        """
        if conn.dialect.name == "postgresql":
            live = [t.name for n in self.names for t in PROJECTION_KINDS[n].live_tables()]
            mode = "ACCESS EXCLUSIVE" if swap else "EXCLUSIVE"
            conn.execute(text(f"LOCK TABLE {', '.join(live)} IN {mode} MODE"))
            conn.execute(text(f"LOCK TABLE {consumer_positions.name} IN EXCLUSIVE MODE"))
        else:
            conn.execute(delete(projection_swaps).where(projection_swaps.c.id == "lock"))
            conn.execute(insert(projection_swaps).values(
                id="lock", projection="", action="lock", positions="", events=0))
            conn.execute(delete(projection_swaps).where(projection_swaps.c.id == "lock"))

    def _swap(self, conn: Connection) -> None:
        for name in self.names:
            live = PROJECTION_KINDS[name].live_tables()
            _, fresh = self.fresh[name]
            for old, new in zip(live, fresh, strict=True):
                retired = f"{old.name}__old{self.suffix}"
                conn.execute(text(f"ALTER TABLE {old.name} RENAME TO {retired}"))
                conn.execute(text(f"ALTER TABLE {new.name} RENAME TO {old.name}"))
                conn.execute(text(f"DROP TABLE {retired}"))

    def _compare(self, conn: Connection) -> list[TableDifference]:
        out = []
        for name in self.names:
            live = PROJECTION_KINDS[name].live_tables()
            _, fresh = self.fresh[name]
            for old, new in zip(live, fresh, strict=True):
                out.append(compare_tables(conn, old, new))
        return out

    def _cleanup(self, *, drop_fresh: bool) -> None:
        with self.engine.begin() as conn:
            if drop_fresh:
                for _, tables in self.fresh.values():
                    for table in tables:
                        conn.execute(text(f"DROP TABLE IF EXISTS {table.name}"))
            consumer = self.projector.consumer_name
            conn.execute(delete(applied_versions).where(applied_versions.c.consumer == consumer))
            conn.execute(delete(consumer_positions).where(
                consumer_positions.c.consumer == consumer))


def compare_tables(conn: Connection, live: Table, rebuilt: Table) -> TableDifference:
    """Row by row, in primary-key order: the first row that differs, if any."""
    keys = [c.name for c in live.primary_key.columns]
    columns = [c.name for c in live.columns]

    def rows(table: Table) -> Iterator[tuple[Any, ...]]:
        query = select(*(table.c[c] for c in columns)).order_by(*(table.c[k] for k in keys))
        for row in conn.execute(query.execution_options(yield_per=5000)):
            yield tuple(row)

    live_count = rebuilt_count = 0
    first: str | None = None
    for a, b in zip_longest(rows(live), rows(rebuilt)):
        live_count += a is not None
        rebuilt_count += b is not None
        if first is None and a != b:
            where = a if a is not None else b
            key = dict(zip(columns, where or (), strict=False))
            first = (f"{live.name}: row {({k: key.get(k) for k in keys})} differs "
                     f"(live {'missing' if a is None else 'present'}, rebuilt "
                     f"{'missing' if b is None else 'present'})")
    return TableDifference(live.name, live_count, rebuilt_count, first)


def wait_for_event(engine: Engine, recorder: Any, position: int, timeout: float,
                   aggregate_id: str | None = None, consumer: str = "live") -> bool:
    """Read-your-writes for queries not keyed by one aggregate (a learner's transcript, an
    audit search): find which aggregate the event at ``position`` belongs to (one indexed
    read of the store's notification log), then wait for it as ``wait_for_position`` does.
    Every projection is written in the projector's one transaction, so one wait serves all.
    """
    if aggregate_id is None:
        found = recorder.select_notifications(start=position, limit=1)
        if not found or found[0].id != position:
            return False  # no such event (yet): nothing to wait for would be a lie
        aggregate_id = str(found[0].originator_id)
    return wait_for_position(engine, aggregate_id, position, timeout, consumer)
