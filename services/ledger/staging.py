"""Import staging: many commands, one atomic write, in memory that does not grow with the
file (decision 067)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent

Restore = Callable[[UUID, Sequence[Any], Sequence[Any]], Aggregate]
"""Rebuild an aggregate as the store holds it plus ``written`` (events the unit has already
moved to its spill) plus ``pending`` (events it still holds); only ``pending`` stay pending."""


@dataclass(frozen=True)
class UnitLimits:
    """How much of an import a unit of work holds in memory (decision 067)."""

    spill_after_events: int = 20_000
    """Staged events held before they are written to the unit's spill file."""
    aggregates_in_memory: int = 50_000
    """Staged aggregates kept once their events are spilled (the most recently used); one
    needed again is rebuilt from the store and the spill."""
    ids_remembered: int = 100_000
    """Ids the unit remembers the store did not have (``missing``); past this they are
    forgotten and asked again when needed."""


class Spill:
    """The staged events of the rows that passed, out of memory: SQLite's private temporary
    database (a file in the temporary directory that SQLite removes as it opens it, so that
    not even a killed import leaves it behind; ``SQLITE_TMPDIR`` chooses where). Nothing
    here is in the store until ``Ledger.save_unit`` copies it there, in order, in one
    transaction."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("", isolation_level=None)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=FILE"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute("CREATE TABLE staged (seq INTEGER PRIMARY KEY, originator_id BLOB, "
                         "originator_version INTEGER, topic TEXT, state BLOB)")
        self._db.execute("CREATE INDEX staged_originator ON staged (originator_id, "
                         "originator_version)")
        self._db.execute("CREATE TABLE provenance (seq INTEGER PRIMARY KEY, line INTEGER, "
                         "originator_id TEXT, first INTEGER, last INTEGER)")
        self.events = 0

    def append(self, events: Sequence[StoredEvent]) -> None:
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT INTO staged (originator_id, originator_version, topic, state) "
            "VALUES (?,?,?,?)",
            [(_blob(e.originator_id), e.originator_version, e.topic, e.state)
             for e in events])
        self._db.execute("COMMIT")
        self.events += len(events)

    def add_rows(self, rows: Sequence[tuple[int, str, int, int]]) -> None:
        """Provenance: (line, aggregate id, first version, last version) of rows that passed."""
        self._db.executemany("INSERT INTO provenance (line, originator_id, first, last) "
                             "VALUES (?,?,?,?)", rows)

    def rows(self) -> Iterator[tuple[int, str, int, int]]:
        yield from self._db.execute(
            "SELECT line, originator_id, first, last FROM provenance ORDER BY seq")

    def events_of(self, originator_id: UUID) -> list[StoredEvent]:
        return [StoredEvent(originator_id, version, topic, state)
                for version, topic, state in self._db.execute(
                    "SELECT originator_version, topic, state FROM staged "
                    "WHERE originator_id = ? ORDER BY originator_version",
                    (_blob(originator_id),))]

    def chunks(self, size: int) -> Iterator[list[StoredEvent]]:
        """Every spilled event, in the order spilled (each aggregate's in version order)."""
        last = 0
        while True:
            rows = self._db.execute(
                "SELECT seq, originator_id, originator_version, topic, state FROM staged "
                "WHERE seq > ? ORDER BY seq LIMIT ?", (last, size)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [StoredEvent(UUID(bytes=r[1]), r[2], r[3], r[4]) for r in rows]

    def close(self) -> None:
        self._db.close()


def _row_json(line: int, events: list[str]) -> bytes:
    return f'{{"row":{int(line)},"events":[{",".join(events)}]}}'.encode()


def _blob(originator_id: UUID | str) -> bytes:
    return (originator_id if isinstance(originator_id, UUID) else UUID(originator_id)).bytes


@dataclass
class UnitOfWork:
    """Many commands, one atomic write (bulk imports).

    ``staged`` holds the aggregates the unit has used, as the rows that passed left them. A
    row's commands run on the staged aggregates themselves, not on copies: copying a
    placement whose staged events grow with every row made an import's time grow with the
    square of its rows (decision 062). A row that breaks a rule is dropped whole: each
    aggregate it had touched is rebuilt, by ``restore``, from the store and the events staged
    before the row.

    So that memory does not grow with the file (decision 067), between rows the unit moves
    the staged events to its ``Spill`` once they pass ``limits.spill_after_events``, and
    keeps only the ``limits.aggregates_in_memory`` most recently used aggregates; one needed
    again is rebuilt from the store and the spill. The store sees nothing until
    ``Ledger.save_unit`` writes the spill and what is left in one transaction, so an
    all-or-nothing import refused at its last row stores nothing.
    """

    restore: Restore
    to_stored: Callable[[Any], StoredEvent]
    from_stored: Callable[[StoredEvent], Any]
    limits: UnitLimits = field(default_factory=UnitLimits)
    staged: dict[UUID, Aggregate] = field(default_factory=dict)
    row: dict[UUID, Aggregate] | None = None
    marks: dict[UUID, int] = field(default_factory=dict)
    """This row's aggregates: how many pending events each had when the row first took it."""

    missing: set[UUID] = field(default_factory=set)
    """Ids the store did not have when this unit asked (until a row creates one)."""

    windows: dict[Hashable, tuple[int, int, frozenset[UUID]]] = field(default_factory=dict)
    """Per series (a learner's days, a learner's weeks): the days of its last bulk look-up
    and which of its records the store held then (``note_window``)."""

    spill: Spill | None = None
    held: int = 0
    """Events staged in memory (not yet spilled)."""

    recorded: list[tuple[int, str, int, int]] = field(default_factory=list)
    """(line, aggregate id, first, last version) of the rows recorded since the last spill."""

    def known_absent(self, series: Hashable, day: int, aggregate_id: UUID) -> bool | None:
        """Whether the store lacks ``aggregate_id``, the record of ``series`` (a learner's
        days, or weeks) on ``day`` (an ordinal), as the last bulk look-up of that series
        answered; None when that look-up did not reach ``day``."""
        window = self.windows.get(series)
        if window is None or not window[0] <= day <= window[1]:
            return None
        return aggregate_id not in window[2]

    def note_window(self, series: Hashable, first: int, last: int, stored: set[UUID]
                    ) -> None:
        """The answer of one bulk look-up: of ``series``' records from day ``first`` to
        ``last``, the store holds ``stored``. One window a series is kept."""
        self.windows[series] = (first, last, frozenset(stored))

    def take(self, aggregate_id: UUID, load: Callable[[UUID], Aggregate], *,
             absent: bool = False) -> Aggregate:
        """The aggregate for this row: already taken, kept by an earlier row, rebuilt from
        the spill, or loaded.

        A unit remembers what it loaded and what the store did not have, so that the
        calendar, the organisation's settings and a learner's unopened day are read once
        per import, not once per row; ``absent``: the caller knows the store lacks it."""
        assert self.row is not None
        taken = self.row.get(aggregate_id)
        if taken is not None:
            return taken
        aggregate = self.staged.pop(aggregate_id, None)  # put back last: recently used
        if aggregate is None:
            if aggregate_id in self.missing:  # never a record a row created (row_scope)
                raise AggregateNotFoundError(aggregate_id)
            written = self._spilled(aggregate_id)
            if written:
                aggregate = self.restore(aggregate_id, written, [])
            elif absent:
                raise AggregateNotFoundError(aggregate_id)
            else:
                try:
                    aggregate = load(aggregate_id)
                except AggregateNotFoundError:
                    if len(self.missing) >= self.limits.ids_remembered:
                        self.missing.clear()
                    self.missing.add(aggregate_id)
                    raise
        self.staged[aggregate_id] = aggregate
        self.row[aggregate_id] = aggregate
        self.marks[aggregate_id] = len(aggregate.pending_events)
        return aggregate

    def enter(self, aggregate: Aggregate) -> None:
        """Count ``aggregate``, saved by this row's command, as this row's: one it did not
        take through ``take`` is new (or read past the unit), so all its events are the
        row's."""
        assert self.row is not None
        if aggregate.id not in self.row:
            self.row[aggregate.id] = aggregate
            self.marks[aggregate.id] = 0

    def _spilled(self, aggregate_id: UUID) -> list[Any]:
        if self.spill is None or self.spill.events == 0:
            return []
        return [self.from_stored(e) for e in self.spill.events_of(aggregate_id)]

    @contextmanager
    def row_scope(self, line: int = 0) -> Iterator[list[tuple[str, int, int]]]:
        """Run one row; on success the yielded list holds (aggregate id, first, last version)
        of the events the row recorded; on an exception nothing of the row is kept."""
        self.row, self.marks = {}, {}
        changes: list[tuple[str, int, int]] = []
        try:
            yield changes
        except BaseException:
            for aggregate_id, aggregate in self.row.items():
                kept = list(aggregate.pending_events[:self.marks[aggregate_id]])
                written = self._spilled(aggregate_id)
                if kept or written:
                    self.staged[aggregate_id] = self.restore(aggregate_id, written, kept)
                else:  # as stored, or new in this row: loaded again when next needed
                    self.staged.pop(aggregate_id, None)
            self.row = None
            raise
        for aggregate_id, aggregate in self.row.items():
            before = aggregate.version - len(aggregate.pending_events) + self.marks[aggregate_id]
            if aggregate.version > before:
                changes.append((str(aggregate_id), before + 1, aggregate.version))
                self.staged[aggregate_id] = aggregate
                self.held += aggregate.version - before
                if before == 0:
                    self.missing.discard(aggregate_id)
        self.row = None
        self.recorded.extend((line, *change) for change in changes)
        if self.held >= self.limits.spill_after_events:
            self.spill_staged()

    def spill_staged(self) -> None:
        """Move every staged event to the spill, then forget the least recently used
        aggregates beyond ``limits.aggregates_in_memory``."""
        assert self.row is None
        if self.spill is None:
            self.spill = Spill()
        events: list[StoredEvent] = []
        for aggregate in self.staged.values():
            pending = aggregate.pending_events
            if pending:
                events.extend(self.to_stored(e) for e in pending)
                pending.clear()
        self.spill.append(events)
        self.spill.add_rows(self.recorded)
        self.recorded = []
        self.held = 0
        excess = len(self.staged) - self.limits.aggregates_in_memory
        if excess > 0:
            for aggregate_id in list(self.staged)[:excess]:
                del self.staged[aggregate_id]

    def provenance_json(self) -> Iterator[bytes]:
        """Each recorded row as ``ImportedFile.rows`` holds it (its line and the events it
        recorded: aggregate id, first and last version), one row's JSON at a time, as the
        event's transcoder writes it (no spaces; ids and numbers need no escaping)."""
        assert self.spill is not None and not self.recorded, "spill_staged() first"
        line: int | None = None
        events: list[str] = []
        for row_line, aggregate_id, first, last in self.spill.rows():
            if row_line != line:
                if line is not None:
                    yield _row_json(line, events)
                line, events = row_line, []
            events.append(f'["{aggregate_id}",{int(first)},{int(last)}]')
        if line is not None:
            yield _row_json(line, events)

    def to_save(self) -> list[Aggregate]:
        """The staged aggregates with events to save (the others were only read)."""
        return [a for a in self.staged.values() if a.pending_events]

    def close(self) -> None:
        if self.spill is not None:
            self.spill.close()
            self.spill = None
