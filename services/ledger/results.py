"""What every command answers."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from infra.command_log import RecordedCommand


@dataclass(frozen=True)
class CommandResult:
    """What a client needs after a command: the new version (for ``If-Match``) and the
    position of the last event in the store's notification log (to wait for read models)."""

    aggregate_id: UUID
    version: int
    position: int
    created_id: str | None = None
    """The id of the hour entry, evaluation or credential the command created, if any."""

    @classmethod
    def recorded(cls, done: RecordedCommand) -> CommandResult:
        """The result of a keyed command the store had already recorded."""
        return cls(done.aggregate_id, done.version, done.position, done.created_id)
