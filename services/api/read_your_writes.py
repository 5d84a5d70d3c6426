"""Read your own writes: ``GET …?min_position=N`` waits until the read models show the
event at position N, or, for a query about one aggregate, that aggregate's last event at or
before N.

Why per aggregate: positions are global (the store's notification log) but the topic's
partitions are read independently, so there is no one "projected up to N" watermark. A
command's answer names the position of the *target's* last event (a placement's, not the
learner's day saved beside it); a query filtered to one placement waits for that
placement's last event at or before N, which is exactly what the query can show. A
position past the end of the log cannot have been answered by any command: the caller's
mistake, a 422 naming the rule, never a 503.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from services.api.errors import ProblemError
from services.workers.read_waits import wait_for_position


def _last_position_of(recorder: Any, aggregate_id: str, at_most: int) -> int | None:
    try:
        originator = UUID(aggregate_id)
    except ValueError:
        return None  # not an aggregate's id: no event of it to wait for
    found: int | None = recorder.last_position_of(originator, at_most)
    return found


def target_position(recorder: Any, position: int, aggregate_id: str | None
                    ) -> tuple[str, int] | None:
    """(aggregate, position) to wait for; None when there is nothing to wait for. Raises a
    422 problem when ``position`` is past the end of the log."""
    last = int(recorder.max_notification_id() or 0)
    if position > last:
        raise ProblemError(
            422, "min-position-beyond-log", "No such position",
            f"min_position {position} is past the end of the event log (last position "
            f"{last}); use the position a command answered.", field="min_position")
    if aggregate_id is not None:
        found = _last_position_of(recorder, aggregate_id, position)
        return None if found is None else (aggregate_id, found)
    notes = recorder.select_notifications(start=position, limit=1)
    if not notes or notes[0].id != position:
        return None
    return str(notes[0].originator_id), position


def read_your_writes(engine: Any, recorder: Any, timeout: float, min_position: int | None,
                     aggregate_id: str | None = None) -> None:
    """Wait for ``min_position`` to be in the read models, or answer 503 (projector behind)."""
    if min_position is None:
        return
    target = target_position(recorder, min_position, aggregate_id)
    if target is None:
        return
    if not wait_for_position(engine, target[0], target[1], timeout):
        raise ProblemError(
            503, "read-model-behind", "The read model has not caught up yet",
            f"Position {min_position} is not yet in the read models; retry shortly.",
            headers={"Retry-After": "1"},
        )
