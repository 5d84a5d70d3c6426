"""No personal data in logs, metrics, error bodies or on the topic.

A workload carrying recognisable personal values (learner ids, a birth date, a name and a
student number sent where they do not belong) goes through the API with the relay and
projector running; then the captured JSON logs, the Prometheus output and every error body
are searched for those values.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from domain.actor import Role
from infra.logs import JSONFormatter
from infra.settings import Settings
from services.api.app import create_app
from services.api.auth import issue_token
from services.bootstrap import Runtime
from tests.support import read_topic

SECRET = "privacy-test-secret-0123456789abcdefghij"
LEARNER = "lrn-7f3a9c"              # a pseudonymous id, still kept out of logs in clear
BIRTH = "2008-02-29"
NAME = "Rosalind Quixote-Franklin"
STUDENT_NUMBER = "SSN-555-12-9876"
PERSONAL = (LEARNER, BIRTH, NAME, STUDENT_NUMBER)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in ("kafka", "httpx", "httpcore", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def test_personal_values_never_reach_logs_metrics_or_errors(
    store_settings: Settings, kafka_bootstrap: str, topic_name: str,
    captured: io.StringIO,
) -> None:
    settings = store_settings.model_copy(update={
        "kafka_bootstrap_servers": kafka_bootstrap, "topic": topic_name,
        "jwt_secret": SecretStr(SECRET)})
    runtime = Runtime.build(settings)
    runtime.start()
    bodies: list[str] = []
    try:
        with TestClient(create_app(runtime=runtime)) as client:
            key = client.app.state.token_key  # type: ignore[attr-defined]

            def auth(actor: str, role: Role, org: str | None = "district-p") -> dict[str, str]:
                return {"Authorization": "Bearer " + issue_token(
                    key, actor_id=actor, role=role, organisation_id=org)}

            coord = auth("coord-p", Role.COORDINATOR)
            learner = auth(LEARNER, Role.LEARNER)
            opportunity = client.post("/opportunities", headers=coord, json={
                "organisation_id": "district-p", "title": "Intern", "employer_name": "Acme",
                "worksite": "W", "wbl_type": "PaidInternship", "paid": True,
                "hourly_wage": "15.00", "starts_on": "2025-01-06",
                "ends_on": "2027-12-31"}).json()["id"]
            placement = client.post("/placements", headers=coord, json={
                "opportunity_id": opportunity, "learner_id": LEARNER,
                "supervisor_id": "sup-p", "learner_born_on": BIRTH}).json()
            assert "id" in placement, placement
            for who, party in ((learner, "learner"), (coord, "coordinator")):
                client.post(f"/placements/{placement['id']}/agreement-signatures", headers=who,
                            json={"party": party})
            refusals = [
                client.post("/placements", headers=coord, json={
                    "opportunity_id": opportunity, "learner_id": LEARNER,
                    "supervisor_id": "sup-p", "learner_born_on": BIRTH,
                    "learner_name": NAME}),                       # unknown field
                client.post("/placements", headers=coord, json={
                    "opportunity_id": opportunity, "learner_id": LEARNER,
                    "supervisor_id": "sup-p", "learner_born_on": NAME}),  # not a date
                client.post("/placements", headers=coord, json={
                    "opportunity_id": opportunity, "learner_id": STUDENT_NUMBER * 20,
                    "supervisor_id": "sup-p", "learner_born_on": BIRTH}),  # too long
                client.post(f"/placements/{placement['id']}/hours", headers=learner, json={
                    "work_date": BIRTH, "minutes": 60}),         # before the start: a rule
                client.get(f"/learners/{LEARNER}/transcript", headers=auth(
                    "other-learner", Role.LEARNER)),              # someone else's record
                client.get("/placements/not-a-uuid", headers=learner),
                client.post("/opportunities", json={"title": NAME}),  # no token
            ]
            for response in refusals:
                assert 400 <= response.status_code < 500, response.text
                bodies.append(response.text)
            metrics = client.get("/metrics").text
            health = client.get("/health").text
            assert runtime.relay is not None
            deadline = time.monotonic() + 30
            while runtime.relay.status.acknowledged_position < (
                    runtime.ledger.recorder.max_notification_id() or 0):
                assert time.monotonic() < deadline, "the relay did not publish in time"
                time.sleep(0.05)
            topic = [json.dumps(r.body) for r in read_topic(kafka_bootstrap, topic_name)]
    finally:
        runtime.stop()
    # The learner is 16 during the placement: the topic says "a minor", and holds neither
    # the birth date nor the birthdays that would give it away (decision 038).
    matched = [json.loads(t) for t in topic if '"minor_during_placement"' in t]
    assert matched and all(m["minor_during_placement"] for m in matched)
    for value in (BIRTH, "2024-03-01", "2026-03-01"):
        assert not [t for t in topic if value in t], f"{value!r} is on the topic"
    logs = captured.getvalue()
    assert '"logger": "wbl.api.access"' in logs, "the access log was not captured"
    for value in PERSONAL:
        assert value not in logs, f"{value!r} appears in the logs"
        assert value not in metrics, f"{value!r} appears in /metrics"
        assert value not in health, f"{value!r} appears in /health"
        for body in bodies:
            assert value not in body, f"{value!r} echoed in an error body: {body}"
