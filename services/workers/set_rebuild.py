"""Set-based rebuilds (issue 18, decision 065): bulk-load the topic's records into a staging
table, then compute each fresh read model in one ordered pass over it and write it with
batched inserts, instead of folding poll after poll through the live projector's
storage classes.

What the live fold does per poll (read the rows and entries an event names, fold, delete and
re-insert the rows, update entry statuses, look up and save per-aggregate versions, extend
the audit trail's global chain) is replaced by:

1. **Stage**: every record up to the target offsets, read through librdkafka (decision
   070: kafka-python's pure-Python parsing made staging cost as much as a raw read), as the
   reader gives it (header fields and body bytes, not decoded), appended to a temporary
   table ``rebuild_stage__r…`` of one connection held for the load, with one
   ``executemany`` per 20,000 records. Copies are
   kept (skipped on the way out). A temporary table costs no write-ahead log (SQLite) or WAL
   (PostgreSQL), and goes with its connection: a rebuild killed midway leaves none.
2. **Placement read models** (transcripts, apprenticeship hours, opportunities): one pass
   over the staged placement, opportunity and program events in (aggregate, version) order;
   each aggregate is folded from its first event with the projections' own pure ``evolve``
   (so the code that decides every value is the live fold's), and written once, final, with
   its hour entries: no row is read back, deleted or updated.
3. **Audit trail**: one pass in position order; each entry is derived by the projection's
   own ``derive`` (both hash chains: the global one runs while positions are contiguous,
   exactly as ``_extend_global_chain`` fills it in), inserted in position order, then the
   chain heads and the global head.
4. **Bookkeeping**: the rebuild consumer's ``applied_versions`` in one ``INSERT … SELECT …
   GROUP BY``; the reader's positions set to the staged targets, so the ordinary rebuild
   (decision 021) continues from there with the Python folds up to the live projector's
   positions and swaps or compares as before.

Duplicates (same aggregate and version) are skipped as ``applied_versions`` skips them, and
a gap in an aggregate's versions stops the rebuild as it stops the projector. Memory holds
one aggregate's state at a time, plus the audit trail's chain heads (one small tuple per
aggregate) and, while a placement is folded, its entries.
"""

from __future__ import annotations

import gc
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, Index, Table, insert, text

from domain.contract.envelope import Envelope
from infra import bulk_read
from infra.consumer import Fields, PartitionPosition, RawDelivery, TopicReader, envelope_of
from infra.settings import Settings
from projections import apprenticeship_hours as hours_module
from projections import audit_trail as audit_module
from projections import opportunities as opportunities_module
from projections import transcript as transcript_module
from projections.apprenticeship_hours import ApprenticeshipHoursProjection
from projections.audit_trail import GENESIS, GLOBAL_HEAD_ID, AuditTrailProjection, ChainHead
from projections.common import insert_rows
from projections.entry_rows import _to_row as entry_row
from projections.opportunities import OpportunityProjection
from projections.registry import Projection
from projections.tables import applied_versions
from projections.transcript import (
    CREDENTIAL_EVENTS,
    IN_FORCE,
    REISSUED,
    REVOKED,
    TranscriptProjection,
    issuer_key,
)

FLUSH_ROWS = 20_000
"""Rows written per transaction: long enough to batch, short enough that a live projector
sharing a SQLite file waits for the write lock no more than a fraction of a second."""

STAGE_COLUMNS = ("event_id", "event_type", "aggregate_type", "aggregate_id",
                 "aggregate_version", "position", "schema_version", "recorded_at", "body")
"""In the order of ``infra.consumer.Fields`` plus the body: a staged row is a record's
fields and body as ``TopicReader.poll_raw`` gives them, and ``envelope_of`` reads it back."""

PLACEMENT_PASS_AGGREGATES = ("Placement", "Opportunity", "ApprenticeshipProgram")
"""Whose events the transcripts, the apprenticeship hours and the opportunities fold (the
audit trail, which takes every event, has a pass of its own)."""

PLACEMENT_PASS_PROJECTIONS = (TranscriptProjection, ApprenticeshipHoursProjection,
                              OpportunityProjection)
"""The projections ``load_placement_models`` makes."""


class StagedGap(RuntimeError):
    """An aggregate's staged versions have a gap: the topic is missing events."""


@dataclass
class SetBasedFigures:
    """Where a set-based load spent its time (seconds), and what it wrote."""

    staged: int = 0
    distinct: int = 0
    aggregates: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def stage_table_name(suffix: str) -> str:
    return f"rebuild_stage{suffix}"


def create_stage(conn: Connection, name: str) -> None:
    """A temporary table on ``conn``: every later use of the stage goes through ``conn``."""
    body = "BYTEA" if conn.dialect.name == "postgresql" else "BLOB"
    conn.execute(text(
        f"CREATE TEMPORARY TABLE {name} (event_id VARCHAR(200) NOT NULL, "
        f"event_type VARCHAR(100) NOT NULL, aggregate_type VARCHAR(100) NOT NULL, "
        f"aggregate_id VARCHAR(100) NOT NULL, aggregate_version INTEGER NOT NULL, "
        f"position BIGINT NOT NULL, schema_version INTEGER NOT NULL, "
        f"recorded_at VARCHAR(40) NOT NULL, body {body})"))
    conn.commit()


def drop_stage(conn: Connection, name: str) -> None:
    conn.rollback()  # whatever a failed step left open on the staging connection
    conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
    conn.commit()


def _param(conn: Connection) -> str:
    return "%s" if conn.dialect.paramstyle in ("format", "pyformat") else "?"


def stage_records(conn: Connection, name: str, reader: TopicReader, targets: dict[int, int],
                  *, poll_timeout_ms: int, deadline: float,
                  on_progress: Callable[[int, int], None] | None = None,
                  bulk_from: str | None = None) -> int:
    """Append every record below ``targets`` (per partition) to the staging table (on
    ``conn``, which created it); leave ``reader`` positioned exactly at the targets (its
    positions and last event ids set, as if it had applied them). Returns the records
    staged. ``bulk_from``: the bootstrap servers to read the records from through librdkafka
    (``infra/bulk_read.py``, decision 070); None: through ``reader``'s own kafka-python
    consumer."""
    staged = 0
    total = sum(targets.values())
    last_ids: dict[int, str] = {}
    offsets = {p: 0 for p in targets}
    pending: list[tuple[Any, ...]] = []

    def flush() -> None:
        append_staged(conn, name, pending)
        pending.clear()

    if on_progress is not None:
        on_progress(0, total)
    batches = (bulk_read.read_ranges(bulk_from, reader.topic, targets,
                                     deadline=deadline, poll_timeout=poll_timeout_ms / 1000)
               if bulk_from is not None else _kafka_python_batches(reader, targets, offsets,
                                                  poll_timeout_ms=poll_timeout_ms,
                                                  deadline=deadline))
    for batch in batches:  # a timeout is a TimeoutError from either reader
        for partition, offset, fields, value in batch:
            pending.append((*fields, value))
            offsets[partition] = offset + 1
            last_ids[partition] = fields[0]
        if len(pending) >= FLUSH_ROWS:
            staged += len(pending)
            flush()
            if on_progress is not None:
                on_progress(sum(min(offsets.get(q, 0), t) for q, t in targets.items()),
                            total)
    staged += len(pending)
    flush()
    if on_progress is not None:
        on_progress(total, total)
    for q, target in targets.items():
        reader.positions[q] = PartitionPosition(target, last_ids.get(q))
    reader.consumer.assign(reader.tps)
    for tp in reader.tps:
        reader.consumer.seek(tp, reader.positions[tp.partition].next_offset)
    return staged


def append_staged(conn: Connection, name: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Staged rows (``STAGE_COLUMNS``) appended to ``name`` on ``conn``, committed."""
    if not rows:
        return
    p = _param(conn)
    conn.exec_driver_sql(f"INSERT INTO {name} ({', '.join(STAGE_COLUMNS)}) VALUES "
                         f"({', '.join([p] * len(STAGE_COLUMNS))})", list(rows))
    conn.commit()


def _kafka_python_batches(reader: TopicReader, targets: dict[int, int],
                          offsets: dict[int, int], *, poll_timeout_ms: int, deadline: float
                          ) -> Iterator[list[RawDelivery]]:
    """The records below ``targets`` through ``reader``'s kafka-python consumer, poll after
    poll (``offsets``: the next offset each partition needs, kept by the caller)."""
    while True:
        behind = [tp for tp in reader.tps if offsets.get(tp.partition, 0)
                  < targets.get(tp.partition, 0)]
        if not behind:
            return
        if time.monotonic() > deadline:
            raise TimeoutError("the topic did not deliver the records up to the live "
                               "projector's positions in time")
        if set(behind) != set(reader.consumer.assignment()):
            reader.consumer.assign(behind)
            for tp in behind:
                reader.consumer.seek(tp, offsets.get(tp.partition, 0))
        overshoot: set[int] = set()
        batch: list[RawDelivery] = []
        wanted = dict(offsets)
        for partition, offset, fields, value in reader.poll_raw(poll_timeout_ms):
            if offset >= targets.get(partition, 0):
                overshoot.add(partition)  # read again later by the ordinary rebuild
                continue
            if offset < wanted[partition]:
                continue  # fetched again after a seek
            batch.append((partition, offset, fields, value))
            wanted[partition] = offset + 1
        yield batch  # the caller moves ``offsets`` on
        for q in overshoot:
            reader.consumer.seek(reader.tps[q], offsets[q])


def _staged(conn: Connection, name: str, where: str, order: str, *, commit: bool = True
            ) -> Iterator[tuple[Fields, bytes | None]]:
    """The staged rows in ``order``, streamed. ``commit``: end the read afterwards (off when
    the caller writes beside it on the same connection and ends the transaction itself)."""
    query = text(f"SELECT {', '.join(STAGE_COLUMNS)} FROM {name} {where} ORDER BY {order}")
    # The options on the statement, not the connection (which they would change for good).
    result = conn.execute(query.execution_options(stream_results=True, yield_per=10_000))
    for row in result:
        yield (row[0], row[1], row[2], row[3], int(row[4]), int(row[5]), int(row[6]),
               row[7]), row[8]
    if commit:
        conn.commit()  # end the read


def _aggregates(conn: Connection, name: str, where: str) -> Iterator[list[Envelope]]:
    """Each aggregate's distinct events in version order; copies dropped, gaps refused."""
    current: list[Envelope] = []
    for fields, body in _staged(conn, name, where, "aggregate_id, aggregate_version"):
        if current and current[-1].aggregate_id == fields[3]:
            last = current[-1].aggregate_version
            if fields[4] == last:
                continue  # a copy
            if fields[4] != last + 1:
                raise StagedGap(f"{fields[2]} {fields[3]}: version {fields[4]} follows {last}")
            current.append(envelope_of(fields, body))
            continue
        if current:
            yield current
        if fields[4] != 1:
            raise StagedGap(f"{fields[2]} {fields[3]}: first version staged is {fields[4]}")
        current = [envelope_of(fields, body)]
    if current:
        yield current


class _Writer:
    """Rows per table, flushed in transactions of about ``FLUSH_ROWS`` rows."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.rows: dict[str, tuple[Table, list[dict[str, Any]], bool]] = {}
        self.count = 0

    def add(self, table: Table, row: dict[str, Any], *, core: bool = False) -> None:
        """``core``: insert through SQLAlchemy (values the driver does not take as they
        are, e.g. dates)."""
        found = self.rows.get(table.name)
        if found is None:
            found = self.rows[table.name] = (table, [], core)
        found[1].append(row)
        self.count += 1
        if self.count >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.count:
            return
        with self.engine.begin() as conn:
            for table, rows, core in self.rows.values():
                if rows and core:
                    conn.execute(insert(table), rows)
                elif rows:
                    insert_rows(conn, table, rows)
                rows.clear()
        self.count = 0


class _Credentials:
    """``transcript_credential`` as ``TranscriptProjection._credential_rows`` keeps it: a
    row inserted once per credential id, a status change applied over an older version.
    A change naming a credential of another placement (which the domain does not record)
    is applied as an update after the rows are written, in position order."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.foreign: list[tuple[int, str, dict[str, Any]]] = []

    def apply(self, event: Envelope) -> None:
        d = event.data
        version = event.aggregate_version
        if event.event_type in ("CredentialRevoked", "CredentialReissued"):
            change = {"status": REVOKED if event.event_type == "CredentialRevoked"
                      else REISSUED, "status_changed_on": d["business_date"],
                      "status_reason": d["reason"], "version": version}
            row = self.rows.get(d["credential_id"])
            if row is None:
                self.foreign.append((event.position, d["credential_id"], change))
            elif row["version"] < version:
                row.update(change)
        new_id = d.get("new_credential_id") if event.event_type == "CredentialReissued" \
            else d["credential_id"] if event.event_type == "CredentialIssued" else None
        if new_id is not None and new_id not in self.rows:
            self.rows[new_id] = {
                "credential_id": new_id, "placement_id": event.aggregate_id,
                "issuer_key": issuer_key(d["issuer"]), "issuer": d["issuer"],
                "status_index": event.position, "status": IN_FORCE,
                "status_changed_on": None, "status_reason": None, "version": version}


def load_placement_models(engine: Engine, staging: Connection, stage: str,
                          projections: Sequence[Projection]) -> int:
    """Transcripts, apprenticeship hours and opportunities among ``projections``: one
    pass over the staged events of placements, opportunities and programs, by aggregate in
    version order. Returns the distinct events read."""
    transcripts = next((p for p in projections if isinstance(p, TranscriptProjection)), None)
    hours = next((p for p in projections if isinstance(p, ApprenticeshipHoursProjection)),
                 None)
    opportunities = next((p for p in projections if isinstance(p, OpportunityProjection)),
                         None)
    if transcripts is None and hours is None and opportunities is None:
        return 0
    writer = _Writer(engine)
    credentials = _Credentials()
    kinds = ", ".join(f"'{t}'" for t in PLACEMENT_PASS_AGGREGATES)
    where = f"WHERE aggregate_type IN ({kinds})"
    read = 0
    for events in _aggregates(staging, stage, where):
        read += len(events)
        if events[0].aggregate_type == "Placement":
            if transcripts is not None:
                _transcript(writer, transcripts, events, credentials)
            if hours is not None:
                _hours(writer, hours, events)
            continue
        _other(writer, events, transcripts, hours, opportunities)
    if transcripts is not None:
        for row in credentials.rows.values():
            writer.add(transcripts.tables.credential, row)
    writer.flush()
    if transcripts is not None and credentials.foreign:
        c = transcripts.tables.credential
        with engine.begin() as conn:
            for _, credential_id, change in sorted(credentials.foreign, key=lambda f: f[0]):
                conn.execute(c.update().where(c.c.credential_id == credential_id,
                                              c.c.version < change["version"]).values(change))
    return read


def _transcript(writer: _Writer, projection: TranscriptProjection, events: list[Envelope],
                credentials: _Credentials) -> None:
    t = projection.tables
    state: transcript_module.ExperienceState | None = None
    for event in events:
        state = transcript_module.evolve(state, event)
        if event.event_type in CREDENTIAL_EVENTS:
            credentials.apply(event)
    if state is None:
        return
    writer.add(t.experience, transcript_module._to_row(state))
    for entry_id in sorted(state.entries):
        writer.add(t.entry, entry_row(state.placement_id, state.entries[entry_id]))


def _hours(writer: _Writer, projection: ApprenticeshipHoursProjection,
           events: list[Envelope]) -> None:
    t = projection.tables
    state: hours_module.HoursState | None = None
    for event in events:
        state = hours_module.evolve(state, event)
    if state is None:
        return
    writer.add(t.placement, hours_module._to_row(state))
    for entry_id in sorted(state.entries):
        writer.add(t.entry, entry_row(state.placement_id, state.entries[entry_id]))


def _other(writer: _Writer, events: list[Envelope],
           transcripts: TranscriptProjection | None,
           hours: ApprenticeshipHoursProjection | None,
           opportunities: OpportunityProjection | None) -> None:
    """An opportunity's or a program's events: the last row each projection would keep."""
    if transcripts is not None:
        rows = [r for r in map(transcript_module.opportunity_row, events) if r is not None]
        if rows:
            writer.add(transcripts.tables.opportunity, rows[-1])
    if hours is not None:
        programs = [r for r in map(hours_module.program_row, events) if r is not None]
        if programs:
            writer.add(hours.tables.program, programs[-1])
    if opportunities is not None and events[0].aggregate_type == \
            OpportunityProjection.aggregate_type:
        view: opportunities_module.OpportunityView | None = None
        for event in events:
            view = opportunities_module.evolve(view, event)
        if view is not None:
            writer.add(opportunities.table, opportunities_module._row(view), core=True)


HEADS_IN_MEMORY: int = Settings.model_fields["rebuild_heads_in_memory"].default
"""Chain heads the audit trail's pass keeps in memory (about 70 MB at 200,000); the others
wait in a temporary table (``_Heads``). The default of ``WBL_REBUILD_HEADS_IN_MEMORY``,
stated once, in the settings."""


class _Heads:
    """The audit trail's chain head of every aggregate seen so far, for a pass in position
    order: the ``HEADS_IN_MEMORY`` used last in a dict, the older ones in a temporary table
    of the staging connection, read back (and taken out) when their aggregate comes again.
    A dict of every head grew with the aggregates: 478 MB at 1 M events, 965 MB at 5 M
    (1.1 M aggregates, mostly learner days, each of whose events lie close together in
    position order, so few come back once evicted). Decision 073."""

    def __init__(self, staging: Connection, name: str, limit: int) -> None:
        self.staging, self.name, self.limit = staging, name, limit
        self.recent: OrderedDict[str, ChainHead] = OrderedDict()
        self.spilled = 0
        p = _param(staging)
        staging.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {name} (aggregate_id VARCHAR(100) PRIMARY KEY, "
            f"version INTEGER NOT NULL, hash VARCHAR(64) NOT NULL, "
            f"learner_id VARCHAR(100), organisation_id VARCHAR(100))")
        self._select = (f"SELECT version, hash, learner_id, organisation_id FROM {name} "
                        f"WHERE aggregate_id = {p}")
        self._delete = f"DELETE FROM {name} WHERE aggregate_id = {p}"
        self._insert = f"INSERT INTO {name} VALUES ({p}, {p}, {p}, {p}, {p})"

    def get(self, aggregate_id: str) -> ChainHead | None:
        head = self.recent.get(aggregate_id)
        if head is not None or not self.spilled:
            return head
        row = self.staging.exec_driver_sql(self._select, (aggregate_id,)).first()
        if row is None:
            return None
        self.staging.exec_driver_sql(self._delete, (aggregate_id,))
        self.spilled -= 1
        return ChainHead(aggregate_id, int(row[0]), row[1], row[2], row[3])

    def put(self, head: ChainHead) -> None:
        self.recent[head.aggregate_id] = head
        self.recent.move_to_end(head.aggregate_id)
        if len(self.recent) > self.limit:
            self._spill(max(1, self.limit // 10))

    def _spill(self, count: int) -> None:
        """The ``count`` heads used longest ago, into the table."""
        old = [self.recent.popitem(last=False)[1] for _ in range(min(count, len(self.recent)))]
        if not old:
            return
        self.staging.exec_driver_sql(self._insert, [
            (h.aggregate_id, h.version, h.hash, h.learner_id, h.organisation_id) for h in old])
        self.spilled += len(old)

    def everyone(self) -> Iterator[ChainHead]:
        """Every head, by aggregate id: the dict is emptied into the table first, and the
        table is read in its key's order (``drop`` removes it afterwards)."""
        self._spill(len(self.recent))
        result = self.staging.exec_driver_sql(
            f"SELECT aggregate_id, version, hash, learner_id, organisation_id FROM {self.name} "
            f"ORDER BY aggregate_id")
        for row in result:
            yield ChainHead(row[0], int(row[1]), row[2], row[3], row[4])

    def drop(self) -> None:
        """End the staging connection's transaction (the pass's read and whatever a failure
        left open) and drop the table."""
        self.staging.rollback()
        self.staging.exec_driver_sql(f"DROP TABLE IF EXISTS {self.name}")
        self.staging.commit()


def load_audit_trail(engine: Engine, staging: Connection, stage: str,
                     projection: AuditTrailProjection, *,
                     heads_in_memory: int = HEADS_IN_MEMORY) -> int:
    """Every staged event, in position order, as ``AuditTrailProjection`` would store it:
    entries with both hashes (the global one while positions are contiguous from the first,
    NULL after the first missing one, as the live projection leaves them), the chain heads
    and the global head. Returns the distinct events read. Memory stays bounded: the chain
    heads beyond ``heads_in_memory`` wait in a temporary table (``_Heads``)."""
    t = projection.tables
    heads = _Heads(staging, f"{stage}_heads", heads_in_memory)
    writer = _Writer(engine)
    expected = audit_module.FIRST_POSITION
    global_hash = GENESIS
    chained_to: int | None = None
    last_position: int | None = None
    read = 0
    try:
        for fields, body in _staged(staging, stage, "", "position", commit=False):
            position = fields[5]
            if position == last_position:
                continue  # a copy
            last_position = position
            head = heads.get(fields[3])
            version = head.version if head is not None else 0
            if fields[4] != version + 1:
                raise StagedGap(f"{fields[2]} {fields[3]}: version {fields[4]} follows "
                                f"{version} (position {position})")
            event = envelope_of(fields, body)
            entry, new_head = audit_module.derive(event, head)
            heads.put(new_head)
            if position == expected:
                global_hash = audit_module.chain(global_hash, entry["event"].encode("utf-8"))
                entry["global_hash"] = global_hash
                chained_to = position
                expected += 1
            else:
                entry["global_hash"] = None
                expected = -1  # the chain waits at the first missing position
            writer.add(t.entry, entry)
            read += 1
        for h in heads.everyone():
            writer.add(t.chain_head, {"aggregate_id": h.aggregate_id, "version": h.version,
                                      "hash": h.hash, "learner_id": h.learner_id,
                                      "organisation_id": h.organisation_id})
        if chained_to is not None:
            writer.add(t.global_head, {"id": GLOBAL_HEAD_ID, "position": chained_to,
                                       "hash": global_hash})
        writer.flush()
    finally:
        heads.drop()
    return read


def record_versions(staging: Connection, stage: str, consumer: str) -> tuple[int, int]:
    """The rebuild consumer's last version (and its position) per aggregate, in one
    statement: what the projector's ``applied_versions`` would hold after the staged
    records, so the Python folds continue from there and skip what is already in. Returns
    (aggregates, distinct events): versions run from 1 without a gap, so an aggregate's last
    version is how many of its events there are."""
    p = _param(staging)
    staging.exec_driver_sql(
        f"INSERT INTO {applied_versions.name} (consumer, aggregate_id, version, position) "
        f"SELECT {p}, aggregate_id, max(aggregate_version), max(position) FROM {stage} "
        f"GROUP BY aggregate_id", (consumer,))
    row = staging.exec_driver_sql(
        f"SELECT count(*), sum(version) FROM {applied_versions.name} WHERE consumer = {p}",
        (consumer,)).one()
    staging.commit()
    return int(row[0]), int(row[1] or 0)


def secondary_indexes(tables: Sequence[Table]) -> list[Index]:
    return [index for table in tables for index in table.indexes]


def drop_secondary_indexes(engine: Engine, tables: Sequence[Table]) -> None:
    """Before any row goes into the fresh tables: ``load`` builds the indexes after the
    rows are in (one sort each instead of a B-tree insertion per row). Done before the
    placement pass's child starts (decision 076), so that no write of the child's waits on
    (or, on PostgreSQL, deadlocks with) the drop's locks."""
    with engine.begin() as conn:
        for index in secondary_indexes(tables):
            conn.execute(text(f"DROP INDEX {index.name}"))


def load(engine: Engine, staging: Connection, stage: str, projections: Sequence[Projection],
         tables: Sequence[Table], consumer: str, *, heads_in_memory: int = HEADS_IN_MEMORY,
         placements_elsewhere: Callable[[], dict[str, float]] | None = None
         ) -> SetBasedFigures:
    """Compute every fresh read model among ``projections`` from the staged records (their
    secondary indexes dropped first: ``drop_secondary_indexes``), build the indexes once
    the rows are in, then record the rebuild consumer's versions.
    ``placements_elsewhere``: the placement pass runs in another process (decision 076);
    called after the audit trail, it waits for that pass and gives its figures."""
    figures = SetBasedFigures()
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        started = time.perf_counter()
        if placements_elsewhere is None:
            load_placement_models(engine, staging, stage, projections)
            figures.seconds["placements"] = time.perf_counter() - started
        started = time.perf_counter()
        audit = next((p for p in projections if isinstance(p, AuditTrailProjection)), None)
        if audit is not None:
            load_audit_trail(engine, staging, stage, audit, heads_in_memory=heads_in_memory)
        figures.seconds["audit_trail"] = time.perf_counter() - started
        if placements_elsewhere is not None:
            started = time.perf_counter()
            apart = placements_elsewhere()
            figures.seconds["placements_apart"] = apart["seconds"]
            figures.seconds["waited_for_placements"] = time.perf_counter() - started
        started = time.perf_counter()
        with engine.begin() as conn:
            for index in secondary_indexes(tables):
                index.create(conn)
        figures.seconds["indexes"] = time.perf_counter() - started
        started = time.perf_counter()
        figures.aggregates, figures.distinct = record_versions(staging, stage, consumer)
        figures.seconds["versions"] = time.perf_counter() - started
    finally:
        if paused:
            gc.enable()
    return figures
