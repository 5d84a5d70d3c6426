"""Rebuild and check: replay the topic from offset 0 into fresh tables beside the live ones,
then swap them in atomically (``wbl projections rebuild``) or compare them row for row
(``wbl projections check``); decision 021. Which projections exist, and how to make a fresh
copy of each, is ``projections/registry.py``'s one table.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    MetaData,
    Table,
    delete,
    insert,
    inspect,
    select,
    text,
)

from infra import kafka as kafka_io
from infra.consumer import (
    TopicReader,
)
from projections.registry import REGISTRY, Projection
from projections.tables import applied_versions, consumer_positions, metadata, projection_swaps
from services.workers import set_rebuild, set_rebuild_apart
from services.workers.projector import Projector

log = logging.getLogger(__name__)

PROJECTION_KINDS = REGISTRY
"""Every registered projection, by name (``projections.registry.REGISTRY``)."""


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
    set_based: set_rebuild.SetBasedFigures | None = None
    """With ``set_based``: what the staging and the set-wise load did, and their times."""
    swapped_after: float | None = None
    """Seconds from the start to the swap's commit, when the fresh tables began to serve
    (``seconds`` also counts dropping the retired ones after it)."""

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
                 poll_timeout_ms: int = 200, set_based: bool = False,
                 bulk_read: bool = True,
                 heads_in_memory: int = set_rebuild.HEADS_IN_MEMORY,
                 placements_apart: bool = False) -> None:
        """``set_based``: load the records up to the live positions into a staging table
        and compute the fresh tables from it in one ordered pass per read model
        (``services/workers/set_rebuild.py``, decision 065), before the usual catch-up;
        ``bulk_read``: stage them through librdkafka (decision 070), not kafka-python;
        ``heads_in_memory``: the audit trail's chain heads the set-based pass keeps in
        memory, the rest in a temporary table (decision 073); ``placements_apart``: the
        set-based placement pass in a child process beside the audit trail's (decision
        076; needs ``bulk_read``)."""
        unknown = [n for n in names or [] if n not in PROJECTION_KINDS]
        if unknown:
            raise ValueError(f"unknown projection(s): {', '.join(unknown)}; known: "
                             f"{', '.join(PROJECTION_KINDS)}")
        self.engine = engine
        self.bootstrap = bootstrap
        self.topic = topic
        self.names = names or list(PROJECTION_KINDS)
        self.live_consumer = live_consumer
        self.set_based = set_based
        self.bulk_read = bulk_read
        self.heads_in_memory = heads_in_memory
        self.placements_apart = placements_apart and bulk_read
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
            # Take what is already fetched into one transaction, as the live projector does
            # behind the topic end (up to its max_batch): a rebuild is always behind, and a
            # transaction per poll (max_poll_records) cost it a commit and a version lookup
            # every 1,000 events (docs/performance.md, decision 058).
            while deliveries and len(deliveries) < self.projector.max_batch:
                more = reader.poll(0)
                if not more:
                    break
                deliveries.extend(more)
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
        figures: set_rebuild.SetBasedFigures | None = None
        loaded = started
        retired: list[str] = []
        swapped_after: float | None = None
        self._drop_retired()
        try:
            reader = TopicReader(consumer, self.topic, partitions, {})
            if self.set_based:
                # 0. Everything up to the live positions as they are now, set-wise; the
                #    Python folds take over from there (steps 1 and 2).
                prepared = time.monotonic() - started
                figures = self._load_set_based(reader, on_progress, deadline)
                figures.seconds = {"prepare": prepared, **figures.seconds}
                applied += figures.distinct
                loaded = time.monotonic()
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
                    retired = self._swap(conn)
                else:
                    differences = self._compare(conn)
                conn.execute(insert(projection_swaps).values(
                    id=self.suffix.strip("_"), projection=",".join(self.names),
                    action="swap" if swap else "check",
                    positions=json.dumps(targets, sort_keys=True), events=applied))
            swapped = swap  # committed
            swapped_after = time.monotonic() - started
        finally:
            consumer.close()
            self._cleanup(drop_fresh=not swapped)  # a failed swap leaves no fresh tables
        if swapped:
            self._drop_retired(retired)
        if figures is not None:
            figures.seconds["catch_up_and_finish"] = time.monotonic() - loaded
        return RebuildResult(names=self.names, events_applied=applied, positions=targets,
                             seconds=time.monotonic() - started, swapped=swap,
                             differences=differences, set_based=figures,
                             swapped_after=swapped_after)

    def _load_set_based(self, reader: TopicReader, on_progress: ProgressCallback | None,
                        deadline: float) -> set_rebuild.SetBasedFigures:
        stage = set_rebuild.stage_table_name(self.suffix)
        with self.engine.connect() as conn:
            targets = self._live_positions(conn)
        fresh_tables = [t for _, tables in self.fresh.values() for t in tables]
        set_rebuild.drop_secondary_indexes(self.engine, fresh_tables)
        apart: set_rebuild_apart.PlacementsApart | None = None
        try:
            # The staging table is a temporary table of this one connection, held for the
            # load.
            with self.engine.connect() as staging:
                set_rebuild.create_stage(staging, stage)
                try:
                    started = time.perf_counter()
                    try:
                        staged = set_rebuild.stage_records(
                            staging, stage, reader, targets,
                            poll_timeout_ms=self.projector.poll_timeout_ms, deadline=deadline,
                            on_progress=on_progress,
                            bulk_from=self.bootstrap if self.bulk_read else None)
                    except TimeoutError as error:
                        raise RebuildFailed(str(error)) from error
                    staging_seconds = time.perf_counter() - started
                    # Started once the records are staged: reading the topic beside the
                    # staging slowed both (the broker serves two readers on two cores).
                    apart = self._start_placements_apart(targets, deadline)
                    try:
                        figures = set_rebuild.load(
                            self.engine, staging, stage,
                            [p for p, _ in self.fresh.values()], fresh_tables,
                            self.projector.consumer_name,
                            heads_in_memory=self.heads_in_memory,
                            placements_elsewhere=None if apart is None else apart.result)
                    except set_rebuild.StagedGap as error:
                        raise RebuildFailed(f"the topic is missing events ({error}): let "
                                            f"the relay refill it, then rebuild again"
                                            ) from error
                    except set_rebuild_apart.PlacementPassFailed as error:
                        raise RebuildFailed(str(error)) from error
                finally:
                    set_rebuild.drop_stage(staging, stage)
        finally:
            if apart is not None:
                apart.stop()
        figures.staged = staged
        figures.seconds = {"staging": staging_seconds, **figures.seconds}
        return figures

    def _start_placements_apart(self, targets: dict[int, int], deadline: float
                                ) -> set_rebuild_apart.PlacementsApart | None:
        """The placement pass's child, started, when asked for and there is a pass to run
        (decision 076); it reads the topic itself, up to the same ``targets``."""
        names = tuple(n for n, (p, _) in self.fresh.items()
                      if isinstance(p, set_rebuild.PLACEMENT_PASS_PROJECTIONS))
        if not self.placements_apart or not names:
            return None
        return set_rebuild_apart.PlacementsApart(set_rebuild_apart.PlacementJob(
            database_url=self.engine.url.render_as_string(hide_password=False),
            bootstrap=self.bootstrap, topic=self.topic, targets=dict(targets),
            suffix=self.suffix, names=names,
            deadline_seconds=max(1.0, deadline - time.monotonic()), parent_pid=os.getpid()))

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

    RETIRED = "__old__r"
    """In the name of a live table a swap retired, until it is dropped."""

    def _swap(self, conn: Connection) -> list[str]:
        """The fresh tables renamed in, the live ones renamed out: returns the retired
        tables' names, dropped after the swap's commit (decision 070: dropping a million
        rows' tables inside the swap held the live projector off for half a minute)."""
        retired_names = []
        for name in self.names:
            live = PROJECTION_KINDS[name].live_tables()
            _, fresh = self.fresh[name]
            for old, new in zip(live, fresh, strict=True):
                retired = f"{old.name}__old{self.suffix}"
                conn.execute(text(f"ALTER TABLE {old.name} RENAME TO {retired}"))
                conn.execute(text(f"ALTER TABLE {new.name} RENAME TO {old.name}"))
                retired_names.append(retired)
        return retired_names

    def _drop_retired(self, names: list[str] | None = None) -> None:
        """Drop retired tables, each in a transaction of its own: ``names``, or every one
        a rebuild stopped between its swap and its drops left behind."""
        if names is None:
            names = [n for n in inspect(self.engine).get_table_names() if self.RETIRED in n]
        for name in names:
            with self.engine.begin() as conn:
                conn.execute(text(f"DROP TABLE IF EXISTS {name}"))

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


