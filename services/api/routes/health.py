"""Health: is the store answering, is the relay keeping up, are the read models current."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel
from sqlalchemy import text

from services.api.deps import RuntimeDep

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str
    store: dict[str, Any]
    broker: dict[str, Any]
    relay: dict[str, Any] | None
    projector: dict[str, Any] | None


@router.get("/health", response_model=Health)
def health(runtime: RuntimeDep, response: Response) -> Health:
    problems = []
    store: dict[str, Any] = {"kind": "postgresql" if runtime.settings.uses_postgres else "sqlite"}
    try:
        store["position"] = runtime.ledger.recorder.max_notification_id() or 0
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        store["ok"] = True
    except Exception as error:  # report, never raise: health must answer
        store["ok"] = False
        store["error"] = type(error).__name__
        problems.append("store")
    broker = {"bootstrap_servers": runtime.bootstrap, "local": runtime.broker is not None}
    relay = None
    if runtime.relay is not None:
        s = runtime.relay.status
        runtime.relay.refresh_stored_position()
        relay = {
            "running": s.running, "connected": s.connected, "lag": s.lag,
            "stored_position": s.stored_position, "acknowledged_position": s.acknowledged_position,
            "published_total": s.published_total, "refills": s.refills,
            "throughput_per_second": round(s.throughput(), 1), "errors_total": s.errors_total,
            "last_error": s.last_error, "last_error_at": s.last_error_at,
        }
        if not s.running or s.fatal:
            problems.append("relay")
    projector = None
    if runtime.projector is not None:
        p = runtime.projector.status
        projector = {
            "running": p.running, "connected": p.connected, "lag": p.lag,
            "applied_total": p.applied_total, "duplicates_skipped": p.duplicates_skipped,
            "topic_resets": p.topic_resets, "last_error": p.last_error,
            "projections": {name: {"lag": lag}
                            for name, lag in runtime.projector.projection_lags().items()},
        }
        if not p.running or p.fatal:
            problems.append("projector")
    if problems:
        response.status_code = 503
    return Health(status="degraded: " + ", ".join(problems) if problems else "ok",
                  store=store, broker=broker, relay=relay, projector=projector)
