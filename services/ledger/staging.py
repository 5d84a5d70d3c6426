"""Import staging: many commands, one atomic write."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

Restore = Callable[[UUID, Sequence[Any]], Aggregate]
"""Rebuild an aggregate as the store holds it plus the given pending events."""


@dataclass
class UnitOfWork:
    """Many commands, one atomic write (bulk imports).

    ``staged`` holds every aggregate the unit has used, as the rows that passed left it. A
    row's commands run on the staged aggregates themselves, not on copies: copying a
    placement whose staged events grow with every row made an import's time grow with the
    square of its rows (decision 062). A row that breaks a rule is dropped whole: each
    aggregate it had touched is rebuilt, by ``restore``, from the store and the events staged
    before the row; the rows that passed are saved together by ``Ledger.save_unit``.
    """

    restore: Restore
    staged: dict[UUID, Aggregate] = field(default_factory=dict)
    row: dict[UUID, Aggregate] | None = None
    marks: dict[UUID, int] = field(default_factory=dict)
    missing: set[UUID] = field(default_factory=set)
    """Ids the store did not have when this unit asked (until a row creates one)."""

    looked_up: set[UUID] = field(default_factory=set)
    """Ids whose presence in the store was asked in bulk (``note_stored``)."""

    def not_looked_up(self, ids: Iterable[UUID]) -> list[UUID]:
        """Of ``ids``, those this unit knows nothing about yet."""
        return [i for i in ids if i not in self.looked_up and i not in self.staged
                and i not in self.missing]

    def note_stored(self, asked: Iterable[UUID], stored: set[UUID]) -> None:
        """The answer of one bulk look-up: ``asked`` ids not in ``stored`` are missing."""
        for aggregate_id in asked:
            self.looked_up.add(aggregate_id)
            if aggregate_id not in stored:
                self.missing.add(aggregate_id)

    def to_save(self) -> list[Aggregate]:
        """The staged aggregates with events to save (the others were only read)."""
        return [a for a in self.staged.values() if a.pending_events]
    """This row's aggregates: how many pending events each had when the row first took it."""

    def take(self, aggregate_id: UUID, load: Callable[[UUID], Aggregate]) -> Aggregate:
        """The aggregate for this row: already taken, kept by an earlier row, or loaded.

        A unit remembers what it loaded and what the store did not have, so that the
        calendar, the organisation's settings and a learner's unopened day are read once
        per import, not once per row."""
        assert self.row is not None
        taken = self.row.get(aggregate_id)
        if taken is not None:
            return taken
        aggregate = self.staged.get(aggregate_id)
        if aggregate is None:
            if aggregate_id in self.missing:
                raise AggregateNotFoundError(aggregate_id)
            try:
                aggregate = load(aggregate_id)
            except AggregateNotFoundError:
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

    @contextmanager
    def row_scope(self) -> Iterator[list[tuple[str, int, int]]]:
        """Run one row; on success the yielded list holds (aggregate id, first, last version)
        of the events the row recorded; on an exception nothing of the row is kept."""
        self.row, self.marks = {}, {}
        changes: list[tuple[str, int, int]] = []
        try:
            yield changes
        except BaseException:
            for aggregate_id, aggregate in self.row.items():
                kept = list(aggregate.pending_events[:self.marks[aggregate_id]])
                if kept:
                    self.staged[aggregate_id] = self.restore(aggregate_id, kept)
                else:  # as stored, or new in this row: loaded again when next needed
                    self.staged.pop(aggregate_id, None)
            self.row = None
            raise
        for aggregate_id, aggregate in self.row.items():
            before = aggregate.version - len(aggregate.pending_events) + self.marks[aggregate_id]
            if aggregate.version > before:
                changes.append((str(aggregate_id), before + 1, aggregate.version))
                self.staged[aggregate_id] = aggregate
        self.row = None
