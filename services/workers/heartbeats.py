"""The relay and the projector as the API sees them, in its process or in others.

In production the three roles run apart (`wbl api`, `wbl relay`, `wbl projector`), and
`wbl run` runs the relay and the projector as child processes of its own (so the API has
a core to itself). The API still owes `/health` and `/metrics` their state, so each worker
process writes a *heartbeat* every ``BEAT_S``: its status as `/health` shows it, into
``worker_heartbeats`` beside the read models. The API reads the rows: a worker whose last
beat is older than ``STALE_S`` is reported not running. The relay's lag is recomputed at
read time from the store and the relay's tracking position, so it is current even between
beats and while the relay is down.

Only the process holding a worker's lease (``infra/leases.py``) beats for it: a second relay
or projector waiting for the lease writes nothing, so `/health` reports the one that works,
with its pid and host. Right after a start the relay may have to refill a topic that lost its
events, and the projector does not know its lag before its first poll: their beats say so
(``phase``) and the lag is what is still to do, never a 0 that only means "not known yet".
The heartbeat table is made with every other table (``infra/schema.py``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
)

from services.ledger import Ledger
from services.workers.projector import Projector
from services.workers.relay import Relay

log = logging.getLogger(__name__)

BEAT_S = 2.0
STALE_S = 10.0

heartbeat_metadata = MetaData()

worker_heartbeats = Table(
    "worker_heartbeats",
    heartbeat_metadata,
    Column("role", String(30), primary_key=True),
    Column("pid", Integer, nullable=False),
    Column("beat_at", Float, nullable=False),  # seconds since the epoch
    Column("status", Text, nullable=False),  # JSON: relay_view / projector_view
)


def relay_view(relay: Relay) -> dict[str, Any]:
    s = relay.status
    relay.refresh_stored_position()
    return {
        "running": s.running and relay.lease.held, "phase": s.phase,
        "lease": relay.lease.holder, "connected": s.connected, "lag": s.lag,
        "stored_position": s.stored_position, "acknowledged_position": s.acknowledged_position,
        "published_total": s.published_total, "refills": s.refills,
        "throughput_per_second": round(s.throughput(), 1), "errors_total": s.errors_total,
        "last_error": s.last_error, "last_error_at": s.last_error_at, "fatal": s.fatal,
    }


def projector_view(projector: Projector) -> dict[str, Any]:
    p = projector.status
    return {
        "running": p.running and projector.lease.held, "phase": p.phase,
        "lease": projector.lease.holder, "connected": p.connected, "lag": p.lag,
        "applied_total": p.applied_total, "duplicates_skipped": p.duplicates_skipped,
        "topic_resets": p.topic_resets, "last_error": p.last_error, "fatal": p.fatal,
        "projections": {name: {"lag": lag} for name, lag in projector.projection_lags().items()},
    }


def beat(engine: Engine, role: str, status: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(delete(worker_heartbeats).where(worker_heartbeats.c.role == role))
        conn.execute(insert(worker_heartbeats).values(
            role=role, pid=os.getpid(), beat_at=time.time(), status=json.dumps(status)))


def keep_beating(engine: Engine, role: str, status: Callable[[], dict[str, Any]],
                 stop: threading.Event) -> threading.Thread:
    """Beat until ``stop``; a failed beat (database briefly away) is logged and retried.
    A worker not holding its lease does not beat: the holder's beat is the one that counts."""

    def loop() -> None:
        running = False
        while not stop.is_set():
            try:
                view = status()
                running = bool(view.get("running"))
                lease = view.get("lease")
                holds = not isinstance(lease, dict) or bool(lease.get("held"))
                # Only the lease holder beats: a second worker, before it even asks for the
                # lease (phase "stopped"), would otherwise replace the holder's beat.
                if holds and view.get("phase") != "waiting_for_lease":
                    beat(engine, role, view)
            except Exception as error:  # a missed beat shows as a stale one
                log.warning("heartbeat not written", extra={"error": type(error).__name__})
            # The first running beat comes at once, and a start or a refill is reported as
            # it goes; a worker at work beats every BEAT_S.
            steady = running and view.get("phase") in ("publishing", "projecting")
            stop.wait(BEAT_S if steady else 0.2)

    thread = threading.Thread(target=loop, name=f"{role}-heartbeat", daemon=True)
    thread.start()
    return thread


def last_beats(engine: Engine) -> dict[str, tuple[float, dict[str, Any]]]:
    """role -> (seconds since its last beat, its status, with the beating process's pid)."""
    now = time.time()
    with engine.connect() as conn:
        rows = conn.execute(select(worker_heartbeats)).all()
    return {r.role: (now - r.beat_at, {**json.loads(r.status), "pid": r.pid}) for r in rows}


class ObservedWorkers:
    """A relay and a projector running in other processes, seen through their heartbeats."""

    def __init__(self, ledger: Ledger, engine: Engine, topic: str) -> None:
        self.ledger = ledger
        self.engine = engine
        self.topic = topic
        self.tracking = ledger.factory.tracking_recorder()

    def views(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        beats = last_beats(self.engine)
        relay: dict[str, Any] | None = None
        if "relay" in beats:
            age, relay = beats["relay"]
            stored = self.ledger.recorder.max_notification_id() or 0
            if relay.get("phase") in ("starting", "refilling"):
                # The recorded position says nothing about a topic being refilled: what is
                # still to publish counts from where the refill is (its last beat).
                done = int(relay.get("acknowledged_position") or 0)
            else:
                done = self.tracking.max_tracking_id(f"relay:{self.topic}") or 0
            relay.update(stored_position=stored, acknowledged_position=done,
                         lag=max(stored - done, 0))
            relay.update(in_process=False, last_beat_s=round(age, 1),
                         running=bool(relay.get("running")) and age < STALE_S)
        projector: dict[str, Any] | None = None
        if "projector" in beats:
            age, projector = beats["projector"]
            projector.update(in_process=False, last_beat_s=round(age, 1),
                             running=bool(projector.get("running")) and age < STALE_S)
        return relay, projector
