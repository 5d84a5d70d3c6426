"""Replay history: rebuild read models as they stood on a date, into a separate store.

Researchers ask "what did the transcripts show on 1 June 2025?" (by recording time: what
the ledger knew then) or "what had happened by 1 June 2025?" (by business time: what we
know now about days up to then, late corrections included). Both are a filter over the
event log folded by the same projections the live service runs, into a fresh SQLite file
(or database), so the live read models are never touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum

from sqlalchemy import Engine, create_engine

from domain.contract.envelope import Envelope
from projections.registry import Projection, default_projections
from projections.tables import metadata
from services.ledger import Ledger


class ReplayBy(StrEnum):
    RECORDED = "recorded"
    BUSINESS = "business"


@dataclass
class ReplayResult:
    events_read: int = 0
    events_applied: int = 0
    last_position: int = 0


def included(event: Envelope, until: date, by: ReplayBy) -> bool:
    if by is ReplayBy.RECORDED:
        return event.recorded_at <= datetime.combine(until, time.max, tzinfo=UTC)
    business = event.data.get("business_date")
    return business is None or date.fromisoformat(str(business)) <= until


def replay_into(
    ledger: Ledger, engine: Engine, *, until: date, by: ReplayBy, source: str,
    names: list[str] | None = None, batch: int = 2000,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayResult:
    """Fold every included event into fresh projection tables in ``engine``."""
    # Here, not at the top: the reporting module brings SciPy (the state report's suppression),
    # which ``wbl`` must not load to read ``ReplayBy`` (decision 075).
    from services.jobs.reporting import envelopes_until

    chosen: list[Projection] = [p for p in default_projections()
                                if names is None or p.name in names]
    unknown = set(names or ()) - {p.name for p in chosen}
    if unknown:
        raise ValueError(f"no projection named {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(p.name for p in default_projections())}")
    metadata.create_all(engine)
    result = ReplayResult()
    last = ledger.recorder.max_notification_id() or 0
    pending: list[Envelope] = []

    def flush() -> None:
        with engine.begin() as conn:
            for projection in chosen:
                many = getattr(projection, "apply_many", None)
                if many is not None:
                    many(conn, pending)
                else:
                    for event in pending:
                        projection.apply(conn, event)
        result.events_applied += len(pending)
        pending.clear()

    for event in envelopes_until(ledger, last, source):
        result.events_read += 1
        result.last_position = event.position
        if included(event, until, by):
            pending.append(event)
        if len(pending) >= batch:
            flush()
        if progress is not None and result.events_read % batch == 0:
            progress(event.position, last)
    if pending:
        flush()
    if progress is not None:
        progress(last, last)
    return result


def sqlite_engine(path: str) -> Engine:
    return create_engine(f"sqlite:///{path}")


