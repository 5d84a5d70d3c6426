"""Health: is the store answering, is the relay keeping up, are the read models current.

The relay and the projector each report which process holds their lease (``lease``: pid,
host, since when), what they are doing (``phase``: ``starting``, ``refilling``,
``publishing`` / ``projecting``) and their lag: right after a start, the events still to
publish or project, never a 0 that only means "not measured yet" (docs/decisions/039).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field
from sqlalchemy import text

from services.api.deps import RuntimeDep
from services.workers.heartbeats import projector_view, relay_view

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str = Field(examples=["ok", "degraded: relay"])
    store: dict[str, Any]
    broker: dict[str, Any]
    relay: dict[str, Any] | None
    projector: dict[str, Any] | None


@router.get("/health", response_model=Health, responses={503: {
    "model": Health,
    "description": "Degraded: the store does not answer, or the relay or the projector is not "
                   "running (no fresh heartbeat from a lease holder) or stopped on a fatal error. "
                   "The body says which, as in a 200 answer.",
}})
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
    relay = relay_view(runtime.relay) if runtime.relay is not None else None
    projector = projector_view(runtime.projector) if runtime.projector is not None else None
    if runtime.observed is not None and (relay is None or projector is None):
        try:
            seen_relay, seen_projector = runtime.observed.views()
        except Exception as error:  # report, never raise
            seen_relay = seen_projector = None
            store.setdefault("error", type(error).__name__)
        relay = relay or seen_relay
        projector = projector or seen_projector
    for role, view in (("relay", relay), ("projector", projector)):
        if view is not None and (not view["running"] or view.get("fatal")):
            problems.append(role)
    if problems:
        response.status_code = 503
    return Health(status="degraded: " + ", ".join(problems) if problems else "ok",
                  store=store, broker=broker, relay=relay, projector=projector)
