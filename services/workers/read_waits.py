"""Read your own writes: how the API waits until the read models show a position.

It reads only the projector's bookkeeping table (``applied_versions``), so it works in the
API process of a split deployment too; ``services/api/read_your_writes.py`` decides what to
wait for (decision 042).
"""

from __future__ import annotations

import time

from sqlalchemy import (
    Engine,
    select,
)

from projections.tables import applied_versions


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
