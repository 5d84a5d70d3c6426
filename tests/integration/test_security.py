"""Security points of the OWASP API review (docs/security.md) that no other test holds:
failed authentications are throttled per client, and the actor recorded in an event is the
token's whatever the body claims (no mass assignment)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from domain.actor import Role
from services.api.app import create_app
from services.api.auth import issue_token
from services.bootstrap import Runtime
from tests.integration.test_api_world import api_settings

BODY = {"organisation_id": "district-s", "title": "Intern", "employer_name": "Acme",
        "worksite": "W", "wbl_type": "JobShadowing", "starts_on": "2027-01-04",
        "ends_on": "2027-01-04"}


def test_failed_authentications_are_throttled_per_client(tmp_path: Path) -> None:
    runtime = Runtime.build(api_settings(tmp_path, failed_authentications_per_minute=5),
                            relay=False, projector=False)
    try:
        with TestClient(create_app(runtime=runtime)) as client:
            statuses = [client.get("/me", headers={"Authorization": f"Bearer forged-{n}"}
                                   ).status_code for n in range(5)]
            assert statuses == [401] * 5
            blocked = client.get("/me", headers={"Authorization": "Bearer forged-6"})
            assert blocked.status_code == 429
            assert blocked.json()["type"] == "/errors/too-many-failed-authentications"
            assert int(blocked.headers["retry-after"]) >= 1
            assert client.get("/health").status_code == 200  # public routes still answer
    finally:
        runtime.stop()


def test_the_recorded_actor_is_the_tokens_never_the_bodys(tmp_path: Path) -> None:
    runtime = Runtime.build(api_settings(tmp_path), relay=False, projector=False)
    try:
        with TestClient(create_app(runtime=runtime)) as client:
            token = issue_token(client.app.state.token_key,  # type: ignore[attr-defined]
                                actor_id="coord-s", role=Role.COORDINATOR,
                                organisation_id="district-s")
            auth = {"Authorization": f"Bearer {token}"}
            for smuggled in ({"actor_id": "admin-1"}, {"actor_role": "admin"},
                             {"version": 7}, {"status": "closed"}):
                refused = client.post("/opportunities", headers=auth,
                                      json={**BODY, **smuggled})
                assert refused.status_code == 422, refused.text
                assert refused.json()["field"] == next(iter(smuggled))
            accepted = client.post("/opportunities", headers=auth, json=BODY).json()
            (stored,) = runtime.ledger.recorder.select_notifications(start=0, limit=10)
            event = runtime.ledger.mapper.to_domain_event(stored)
            assert str(event.originator_id) == accepted["id"]
            assert (event.actor_id, event.actor_role) == ("coord-s", "coordinator")
    finally:
        runtime.stop()
