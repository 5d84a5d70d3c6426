"""The API's view of a relay and a projector in other processes (decision 037): their
heartbeats make `/health` and `/metrics` report them, and a stale beat reports them down."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import update

from infra.settings import Settings
from services.api.app import create_app
from services.api.auth import issue_token
from services.bootstrap import Runtime
from services.workers.heartbeats import beat, heartbeat_metadata, worker_heartbeats

SECRET = "observed-workers-secret-0123456789abcdef"


@pytest.fixture
def api_only(store_settings: Settings) -> Iterator[tuple[Runtime, TestClient]]:
    runtime = Runtime.build(store_settings.model_copy(
        update={"jwt_secret": SecretStr(SECRET)}), relay=False, projector=False)
    try:
        with TestClient(create_app(runtime=runtime)) as client:
            yield runtime, client
    finally:
        runtime.stop()


def test_workers_of_other_processes_are_reported_from_their_heartbeats(
        api_only: tuple[Runtime, TestClient]) -> None:
    runtime, client = api_only
    assert runtime.observed is not None
    health = client.get("/health").json()
    assert health["relay"] is None and health["projector"] is None  # none has beaten yet

    heartbeat_metadata.create_all(runtime.engine)
    beat(runtime.engine, "relay", {"running": True, "connected": True, "lag": 99,
                                   "fatal": False})
    beat(runtime.engine, "projector", {"running": True, "connected": True, "lag": 3,
                                       "fatal": False, "projections": {"audit_trail": {
                                           "lag": 3}}})
    answer = client.get("/health")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["relay"]["in_process"] is False and body["relay"]["running"] is True
    assert body["relay"]["lag"] == 0  # recomputed from the store, not the beat's 99
    assert body["projector"]["lag"] == 3
    key = client.app.state.token_key  # type: ignore[attr-defined]
    admin = {"Authorization": "Bearer " + issue_token(key, actor_id="adm", role="admin")}
    metrics = client.get("/metrics", headers=admin).text
    assert 'wbl_worker_up{role="relay"} 1.0' in metrics
    assert 'wbl_projection_lag_records{consumer="live"} 3.0' in metrics

    with runtime.engine.begin() as conn:  # the projector stopped beating a minute ago
        conn.execute(update(worker_heartbeats).where(worker_heartbeats.c.role == "projector")
                     .values(beat_at=time.time() - 60))
    stale = client.get("/health")
    assert stale.status_code == 503
    assert stale.json()["projector"]["running"] is False
    assert "projector" in stale.json()["status"]
    assert 'wbl_worker_up{role="projector"} 0.0' in client.get("/metrics", headers=admin).text
    assert json.loads(stale.text)["relay"]["running"] is True
