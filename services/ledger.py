"""The ledger application: one method per command and per query.

It is the only thing the HTTP API and the CLI call. Each command loads the
aggregates it needs, lets them check their rules, and saves the new events in
one atomic write; the store's unique (aggregate id, version) constraint is the
optimistic-concurrency check, so two writers can never both win.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Transcoding

from domain.actor import Actor
from domain.errors import ConcurrentChange, StaleVersion, UnknownAggregate
from domain.opportunity import Opportunity


class DateAsISO(Transcoding):
    """Business dates (a day worked, a start date) are stored as ISO strings."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


@dataclass(frozen=True)
class CommandResult:
    """What a client needs after a command: the new version (for ``If-Match``) and the
    position of the last event in the store's notification log (to wait for read models)."""

    aggregate_id: UUID
    version: int
    position: int


class Ledger(Application[UUID]):
    name = "WBLLedger"

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    # -- helpers -------------------------------------------------------------------

    @staticmethod
    def today() -> date:
        return datetime.now(UTC).date()

    def _save_all(self, *aggregates: Aggregate) -> CommandResult:
        """Save atomically; a concurrent writer's event at the same version refuses ours."""
        try:
            recordings = self.save(*aggregates)
        except IntegrityError as error:
            raise ConcurrentChange(
                "Another change was recorded at the same time; reload and try again."
            ) from error
        first = aggregates[0]
        position = max((r.notification.id for r in recordings), default=0)
        return CommandResult(aggregate_id=first.id, version=first.version, position=position)

    def _load(self, kind: type[Any], aggregate_id: UUID, expected_version: int | None) -> Any:
        try:
            aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise UnknownAggregate(
                f"No {kind.__name__.lower()} with id {aggregate_id} is recorded.",
                code=f"unknown-{kind.__name__.lower()}",
            ) from None
        if not isinstance(aggregate, kind):
            raise UnknownAggregate(
                f"No {kind.__name__.lower()} with id {aggregate_id} is recorded.",
                code=f"unknown-{kind.__name__.lower()}",
            )
        if expected_version is not None and aggregate.version != expected_version:
            raise StaleVersion(
                f"You expected version {expected_version}, but the record is at version "
                f"{aggregate.version}; reload it and decide again."
            )
        return aggregate

    # -- opportunities -------------------------------------------------------------

    def post_opportunity(self, actor: Actor, **details: Any) -> CommandResult:
        details.setdefault("posted_on", self.today())
        opportunity = Opportunity.post(actor=actor, **details)
        return self._save_all(opportunity)

    def close_opportunity(
        self,
        actor: Actor,
        opportunity_id: UUID,
        *,
        reason: str,
        expected_version: int | None = None,
    ) -> CommandResult:
        opportunity: Opportunity = self._load(Opportunity, opportunity_id, expected_version)
        opportunity.close(actor=actor, reason=reason, closed_on=self.today())
        return self._save_all(opportunity)

    def get_opportunity(self, opportunity_id: UUID) -> Opportunity:
        opportunity: Opportunity = self._load(Opportunity, opportunity_id, None)
        return opportunity
