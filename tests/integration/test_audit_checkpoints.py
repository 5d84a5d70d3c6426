"""Signed checkpoints of the audit trail (decision 041), from outside: the service runs
(ledger, relay, real broker, projector publishing checkpoints), and the auditor types
`wbl audit verify` / `wbl audit checkpoint` or calls the HTTP API.

- an untouched trail verifies against the checkpoints the projector published;
- a forged checkpoint (bad signature under the service's key) is refused;
- a rewrite of the table that alters one entry and recomputes every later hash (both
  chains and both heads: the table agrees with itself) is caught by a signed checkpoint,
  and the report names the placement, the event type and the position;
- after a key rotation, checkpoints signed by the retired key still verify;
- `/audit-trail` filters by a position range (over HTTP, in the first test).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from kafka import KafkaProducer
from pydantic import SecretStr
from sqlalchemy import delete, select

from infra.settings import Settings
from projections.audit_checkpoints import b64url, kid_of, parse, raw_public, sign
from projections.audit_trail import LIVE_TABLES as AUDIT
from projections.audit_trail import AuditTrailProjection, envelope_of
from services.api.app import create_app
from services.api.auth import issue_token
from services.bootstrap import Runtime
from services.workers.audit_checkpoints import read_checkpoints
from tests.support import placement_story

pytestmark = pytest.mark.integration
SECRET = "checkpoint-tests-secret-0123456789abcdef"


def _key_text(key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(raw).decode()


def _wbl(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`wbl audit …` as an auditor types it, with the service's settings in WBL_*."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("WBL_")}
    base.update({
        "WBL_DATA_DIR": str(settings.data_dir), "WBL_LOG_LEVEL": "WARNING",
        "WBL_KAFKA_BOOTSTRAP_SERVERS": str(settings.kafka_bootstrap_servers),
        "WBL_TOPIC": settings.topic,
        "WBL_AUDIT_CHECKPOINT_TOPIC": settings.audit_checkpoint_topic})
    if settings.database_url:
        base["WBL_DATABASE_URL"] = settings.database_url
    base.update(env)
    wbl = Path(sys.executable).with_name("wbl")
    return subprocess.run([str(wbl), "audit", *args], env=base, capture_output=True,
                          text=True, timeout=60, cwd=Path.cwd())


def _wait_for(condition: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _chained(runtime: Runtime) -> int:
    with runtime.engine.connect() as conn:
        head = AuditTrailProjection().global_head(conn)
    return head[0] if head else 0


@pytest.fixture
def service(store_settings: Settings, kafka_bootstrap: str, topic_name: str
            ) -> Iterator[tuple[Runtime, TestClient, dict[str, str], int]]:
    """The service with a short checkpoint interval and the embedded default's key file;
    one placement's history, projected. Yields the runtime, an HTTP client, an auditor's
    headers and the last position."""
    settings = store_settings.model_copy(update={
        "kafka_bootstrap_servers": kafka_bootstrap, "topic": topic_name,
        "audit_checkpoint_topic": f"{topic_name}.checkpoints",
        "audit_checkpoint_every_events": 8, "jwt_secret": SecretStr(SECRET)})
    runtime = Runtime.build(settings)
    runtime.start()
    app = create_app(runtime=runtime)
    try:
        with TestClient(app) as client:
            auditor = {"Authorization": "Bearer " + issue_token(
                app.state.token_key, actor_id="aud-1", role="state_auditor")}
            for day in range(3):  # in steps, so the projector commits several batches
                placement_story(runtime.ledger, learner=f"lrn-{day}", days=4)
                last = runtime.ledger.recorder.max_notification_id() or 0
                _wait_for(lambda last=last: _chained(runtime) == last, "projected")
            yield runtime, client, auditor, last
    finally:
        runtime.stop()


def _rewrite(runtime: Runtime, position: int) -> tuple[str, str]:
    """What someone who can write the table does: alter the entry at ``position`` and
    recompute every hash after it with the projection's own code (both chains, both
    heads), so the trail is consistent with itself. Returns its aggregate id and type."""
    projection = AuditTrailProjection()
    with runtime.engine.begin() as conn:
        rows = conn.execute(select(AUDIT.entry.c.event).order_by(AUDIT.entry.c.position)
                            ).scalars().all()
        events = [envelope_of(e) for e in rows]
        victim = events[position - 1]
        assert victim.position == position and victim.event_type == "HoursLogged"
        data = dict(victim.data)
        data["minutes"] = int(data["minutes"]) + 600  # ten hours more than were worked
        events[position - 1] = replace(victim, data=data)
        for table in AUDIT.all:
            conn.execute(delete(table))
        projection.apply_many(conn, events)
    assert projection_verifies_alone(runtime), "the rewrite is consistent with itself"
    return victim.aggregate_id, victim.event_type


def projection_verifies_alone(runtime: Runtime) -> bool:
    with runtime.engine.connect() as conn:
        return AuditTrailProjection().verify(conn).ok


def _forge(settings: Settings, position: int, kid: str) -> None:
    """A checkpoint naming the service's key but signed by another one."""
    stranger = sign(Ed25519PrivateKey.generate(), position=position, global_hash="f" * 64,
                    count=position, created_at="2026-12-01T00:00:00+00:00")
    forged = replace(stranger, kid=kid)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    try:
        producer.send(settings.audit_checkpoint_topic, value=forged.to_json()).get(timeout=15)
    finally:
        producer.close()


def _check_position_range(client: TestClient, auditor: dict[str, str], last: int) -> None:
    """`/audit-trail?from_position=&to_position=`: the range a verification names."""
    found = client.get("/audit-trail", headers=auditor,
                       params={"from_position": 5, "to_position": 9}).json()
    assert [e["position"] for e in found] == [5, 6, 7, 8, 9]
    tail = client.get("/audit-trail", headers=auditor,
                      params={"from_position": last - 1, "limit": 500}).json()
    assert [e["position"] for e in tail] == [last - 1, last]
    for params in ({"from_position": 9, "to_position": 5}, {"from_position": 0},
                   {"to_position": "x"}):
        refused = client.get("/audit-trail", headers=auditor, params=params)
        assert refused.status_code == 422, (params, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")


def test_a_rewrite_that_recomputes_every_hash_is_caught_by_a_signed_checkpoint(
    service: tuple[Runtime, TestClient, dict[str, str], int],
) -> None:
    runtime, client, auditor, last = service
    settings = runtime.settings
    assert runtime.bootstrap is not None
    # The projector published checkpoints as it went, signed with the data folder's key.
    _wait_for(lambda: len(read_checkpoints(runtime.bootstrap or "",
                                           settings.audit_checkpoint_topic)) >= 2,
              "the projector published checkpoints")
    published = _wbl(settings, "checkpoint")
    assert published.returncode == 0, published.stderr
    head = parse(published.stdout.strip())
    assert head.position == last and head.count == last
    keys = client.get("/audit-trail/checkpoint-keys", headers=auditor).json()["keys"]
    assert [k["kid"] for k in keys] == [head.kid] and keys[0]["status"] == "current"
    assert "d" not in keys[0]  # the public half only

    _check_position_range(client, auditor, last)

    intact = _wbl(settings, "verify")
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "audit trail intact" in intact.stdout and f"(last at position {last})" in intact.stdout

    _forge(settings, last, head.kid)
    refused = _wbl(settings, "verify")
    assert refused.returncode == 1
    assert "REFUSED checkpoint" in refused.stdout and "does not verify" in refused.stdout
    assert "TAMPERED" not in refused.stdout  # its (false) hash was not believed

    # Alter one HoursLogged entry in the middle and recompute every later hash.
    with runtime.engine.connect() as conn:
        logged = conn.execute(select(AUDIT.entry.c.position).where(
            AUDIT.entry.c.event_type == "HoursLogged").order_by(AUDIT.entry.c.position)
        ).scalars().all()
    victim = logged[len(logged) // 2]
    placement, event_type = _rewrite(runtime, victim)

    caught = _wbl(settings, "verify")
    assert caught.returncode == 1, caught.stdout
    tampered = next(line for line in caught.stdout.splitlines() if line.startswith("TAMPERED"))
    assert f"position {victim} was rewritten" in tampered
    assert f"placement {placement}, event {event_type}" in tampered

    verdict = client.get("/audit-trail/verify", headers=auditor).json()
    assert not verdict["ok"] and verdict["problem_kind"] == "rewritten"
    assert (verdict["problem_position"], verdict["problem_aggregate_id"],
            verdict["problem_event_type"]) == (victim, placement, "HoursLogged")
    assert len(verdict["refused_checkpoints"]) == 1


def test_checkpoints_signed_by_a_retired_key_verify_after_rotation(
    tmp_path: Path, kafka_bootstrap: str, topic_name: str,
) -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    settings = Settings(
        data_dir=tmp_path / "data", database_url=None, kafka_bootstrap_servers=kafka_bootstrap,
        topic=topic_name, audit_checkpoint_topic=f"{topic_name}.checkpoints",
        audit_signing_key=SecretStr(_key_text(old)), jwt_secret=SecretStr(SECRET))
    runtime = Runtime.build(settings)
    runtime.start()
    try:
        placement_story(runtime.ledger, learner="lrn-r", days=2)
        last = runtime.ledger.recorder.max_notification_id() or 0
        _wait_for(lambda: _chained(runtime) == last, "projected")
        _wait_for(lambda: read_checkpoints(kafka_bootstrap, settings.audit_checkpoint_topic),
                  "the projector published a checkpoint")
    finally:
        runtime.stop()
    old_checkpoints = read_checkpoints(kafka_bootstrap, settings.audit_checkpoint_topic)
    assert {parse(raw).kid for _, raw in old_checkpoints} == {kid_of(old.public_key())}

    rotated = {"WBL_AUDIT_SIGNING_KEY": _key_text(new),
               "WBL_AUDIT_RETIRED_PUBLIC_KEYS": b64url(raw_public(old.public_key()))}
    assert _wbl(settings, "checkpoint", **rotated).returncode == 0
    verified = _wbl(settings, "verify", **rotated)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    n = len(old_checkpoints) + 1
    assert f"{n} of {n} signed checkpoints agree" in verified.stdout
    keys = json.loads(_wbl(settings, "keys", **rotated).stdout)["keys"]
    assert {(k["kid"], k["status"]) for k in keys} == {
        (kid_of(old.public_key()), "retired"), (kid_of(new.public_key()), "current")}

    # Forgetting the retired key does not make its checkpoints trusted: they are ignored.
    forgot = _wbl(settings, "verify", WBL_AUDIT_SIGNING_KEY=_key_text(new))
    assert f"1 of {n} signed checkpoints agree" in forgot.stdout
    assert "ignored checkpoint" in forgot.stderr and "unknown key" in forgot.stderr
