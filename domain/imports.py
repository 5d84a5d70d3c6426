"""A file of historical records brought into the ledger (trackers, timesheets, RAPIDS).

Recorded in the same atomic write as the events its rows produced, so the ledger always
knows where an imported event came from: the file's SHA-256 and the row number. Its id is
derived from the file's hash, which is what makes importing the same file twice record
nothing the second time.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.actor import Actor


class ImportedFile(Aggregate):
    @staticmethod
    def create_id(file_hash: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"wbl-ledger:import:{file_hash}")

    @classmethod
    def record(
        cls,
        *,
        actor: Actor,
        file_hash: str,
        file_name: str,
        kind: str,
        mode: str,
        rows_total: int,
        rows: list[dict[str, Any]],
        rejected: list[dict[str, Any]],
        imported_on: date,
    ) -> ImportedFile:
        return cls(
            actor_id=actor.id, actor_role=str(actor.role), business_date=imported_on,
            file_hash=file_hash, file_name=file_name, kind=kind, mode=mode,
            rows_total=rows_total, rows=rows, rejected=rejected,
        )

    @event("FileImported")
    def __init__(
        self,
        *,
        actor_id: str,
        actor_role: str,
        business_date: date,
        file_hash: str,
        file_name: str,
        kind: str,
        mode: str,
        rows_total: int,
        rows: list[dict[str, Any]],
        rejected: list[dict[str, Any]],
    ) -> None:
        """A file of historical records was imported: ``rows`` maps each recorded row
        number to the events it produced (aggregate id, first and last version);
        ``rejected`` lists the rows refused, with the rule that refused them (recorded
        only when valid rows were kept)."""
        self.file_hash = file_hash
        self.file_name = file_name
        self.kind = kind
        self.mode = mode
        self.rows_total = rows_total
        self.rows = rows
        self.rejected = rejected
