"""Import staging: many commands, one atomic write."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from uuid import UUID

from eventsourcing.domain import Aggregate


@dataclass
class UnitOfWork:
    """Many commands, one atomic write (bulk imports).

    Each row of work runs on copies of the aggregates it touches; a row that breaks a rule
    is dropped whole, and the rows that passed are saved together by ``Ledger.save_unit``.
    """

    staged: dict[UUID, Aggregate] = field(default_factory=dict)
    row: dict[UUID, Aggregate] | None = None

    @contextmanager
    def row_scope(self) -> Iterator[list[tuple[str, int, int]]]:
        """Run one row; on success yield-back list holds (aggregate id, first, last version)
        of the events the row recorded; on an exception nothing of the row is kept."""
        self.row = {}
        changes: list[tuple[str, int, int]] = []
        try:
            yield changes
        except BaseException:
            self.row = None
            raise
        for aggregate_id, aggregate in self.row.items():
            before = self.staged[aggregate_id].version if aggregate_id in self.staged else (
                aggregate.version - len(aggregate.pending_events))
            if aggregate.version > before:
                changes.append((str(aggregate_id), before + 1, aggregate.version))
                self.staged[aggregate_id] = aggregate
        self.row = None
