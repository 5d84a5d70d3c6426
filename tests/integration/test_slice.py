"""The thin slice, end to end on a real broker and both stores:
POST an opportunity -> event store -> relay -> Kafka -> projector -> read model -> GET.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer

from infra.settings import Settings
from services.api.app import create_app
from services.api.auth import issue_token
from services.bootstrap import Runtime

pytestmark = pytest.mark.integration

VALID = {
    "organisation_id": "district-042",
    "title": "Robotics technician intern",
    "employer_name": "Acme Robotics",
    "worksite": "12 Foundry Rd",
    "wbl_type": "PaidInternship",
    "paid": True,
    "hourly_wage": "16.50",
    "capacity": 2,
    "starts_on": "2027-01-11",
    "ends_on": "2027-05-21",
    "minimum_age": 16,
}


@pytest.fixture
def service_settings(store_settings: Settings, kafka_bootstrap: str, topic_name: str) -> Settings:
    return store_settings.model_copy(
        update={"kafka_bootstrap_servers": kafka_bootstrap, "topic": topic_name}
    )


@pytest.fixture
def runtime(service_settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.build(service_settings)
    rt.start()
    try:
        yield rt
    finally:
        rt.stop()


def authed(runtime: Runtime) -> TestClient:
    """A client that sends an admin's bearer token (auth is required; see test_api_authz)."""
    app = create_app(runtime=runtime)
    token = issue_token(app.state.token_key, actor_id="admin-1", role="admin")
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with authed(runtime) as c:
        yield c


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 10.0) -> list:
    """Read the topic with a plain kafka-python consumer that is not the service's own."""
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None,
        enable_auto_commit=False, consumer_timeout_ms=1000,
    )
    records = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            records.extend(consumer)
    finally:
        consumer.close()
    return records


def test_posted_opportunity_is_readable_within_a_second(client: TestClient) -> None:
    started = time.monotonic()
    posted = client.post("/opportunities", json=VALID)
    assert posted.status_code == 201, posted.text
    accepted = posted.json()
    assert accepted["version"] == 1
    assert accepted["position"] >= 1
    assert posted.headers["etag"] == '"1"'

    got = client.get(f"/opportunities/{accepted['id']}",
                     params={"min_position": accepted["position"]})
    elapsed = time.monotonic() - started
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["title"] == VALID["title"]
    assert body["hourly_wage"] == "16.50"
    assert body["status"] == "open"
    assert body["position"] == accepted["position"]
    assert elapsed < 1.0, f"read model took {elapsed:.2f} s"


def test_event_on_topic_is_a_cloudevent_keyed_by_aggregate(
    client: TestClient, service_settings: Settings
) -> None:
    accepted = client.post("/opportunities", json=VALID).json()
    records = read_topic(service_settings.kafka_bootstrap_servers or "", service_settings.topic, 1)
    assert len(records) == 1
    record = records[0]
    headers = {k: v.decode() for k, v in record.headers}
    assert record.key == accepted["id"].encode()
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_type"] == "org.wbl-ledger.OpportunityPosted"
    assert headers["ce_id"] == f"{accepted['id']}/1"
    assert headers["ce_subject"] == accepted["id"]
    assert headers["ce_schemaversion"] == "1"
    assert headers["ce_aggregateversion"] == "1"
    assert headers["ce_position"] == str(accepted["position"])
    assert headers["content-type"] == "application/json"
    body = json.loads(record.value)
    assert body["title"] == VALID["title"]
    assert body["hourly_wage"] == "16.50"
    assert body["starts_on"] == "2027-01-11"


def test_close_then_read_shows_closed(client: TestClient) -> None:
    accepted = client.post("/opportunities", json=VALID).json()
    closed = client.post(f"/opportunities/{accepted['id']}/close", json={"reason": "Filled"})
    assert closed.status_code == 200, closed.text
    assert closed.json()["version"] == 2
    got = client.get(f"/opportunities/{accepted['id']}",
                     params={"min_position": closed.json()["position"]}).json()
    assert got["status"] == "closed"
    assert got["closed_reason"] == "Filled"
    again = client.post(f"/opportunities/{accepted['id']}/close", json={"reason": "Filled"})
    assert again.status_code == 409
    assert again.json()["type"] == "/errors/opportunity-closed"


BAD_INPUTS = [
    pytest.param({k: v for k, v in VALID.items() if k != "title"}, 422, "/errors/invalid-request",
                 "title", id="missing-field"),
    pytest.param({**VALID, "capacity": "many"}, 422, "/errors/invalid-request", "capacity",
                 id="wrong-type"),
    pytest.param({**VALID, "wbl_type": "Internship"}, 422, "/errors/invalid-request", "wbl_type",
                 id="not-a-ceds-type"),
    pytest.param({**VALID, "learner_name": "Jo"}, 422, "/errors/invalid-request", "learner_name",
                 id="unknown-field"),
    pytest.param({**VALID, "ends_on": "2026-12-01"}, 422, "/errors/dates-reversed", "ends_on",
                 id="dates-reversed"),
    pytest.param({**VALID, "hourly_wage": None}, 422, "/errors/wage-required", "hourly_wage",
                 id="paid-without-wage"),
    pytest.param({**VALID, "hourly_wage": 16.505}, 422, "/errors/invalid-request", "hourly_wage",
                 id="wage-not-whole-cents"),
]


@pytest.mark.parametrize(("body", "status", "type_", "field"), BAD_INPUTS)
def test_bad_input_is_refused_with_problem_json_and_stores_nothing(
    client: TestClient, runtime: Runtime, body: dict, status: int, type_: str, field: str
) -> None:
    before = runtime.ledger.recorder.max_notification_id() or 0
    response = client.post("/opportunities", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"] == type_
    assert problem["status"] == status
    assert problem["field"] == field
    assert problem["detail"]
    assert (runtime.ledger.recorder.max_notification_id() or 0) == before


def test_malformed_json_and_oversized_bodies_are_refused(client: TestClient,
                                                          runtime: Runtime) -> None:
    before = runtime.ledger.recorder.max_notification_id() or 0
    malformed = client.post("/opportunities", content=b"{not json",
                            headers={"content-type": "application/json"})
    assert malformed.status_code == 400
    assert malformed.json()["type"] == "/errors/malformed-json"
    huge = client.post("/opportunities", json={**VALID, "title": "x" * 100_000})
    assert huge.status_code == 413
    assert huge.json()["type"] == "/errors/body-too-large"
    assert (runtime.ledger.recorder.max_notification_id() or 0) == before


def test_unknown_ids_get_404_problems(client: TestClient) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    got = client.get(f"/opportunities/{missing}")
    assert got.status_code == 404
    assert got.json()["type"] == "/errors/unknown-opportunity"
    closed = client.post(f"/opportunities/{missing}/close", json={"reason": "x"})
    assert closed.status_code == 404
    assert closed.json()["type"] == "/errors/unknown-opportunity"
    not_uuid = client.get("/opportunities/not-a-uuid")
    assert not_uuid.status_code == 422
    assert not_uuid.json()["field"] == "opportunity_id"


def test_health_reports_relay_and_projector(client: TestClient) -> None:
    accepted = client.post("/opportunities", json=VALID).json()
    client.get(f"/opportunities/{accepted['id']}", params={"min_position": accepted["position"]})
    health = client.get("/health")
    assert health.status_code == 200, health.text
    body = health.json()
    assert body["status"] == "ok"
    assert body["relay"]["lag"] == 0
    assert body["relay"]["acknowledged_position"] >= accepted["position"]
    assert body["projector"]["applied_total"] >= 1


def test_restart_with_an_empty_broker_loses_nothing(
    store_settings: Settings, topic_name: str, tmp_path: Path
) -> None:
    """The embedded default: the service starts its own local broker, which forgets
    everything when it stops; on the next start the relay refills the topic."""
    settings = store_settings.model_copy(update={"kafka_bootstrap_servers": None,
                                                 "topic": topic_name})
    first = Runtime.build(settings)
    assert first.broker is not None
    first.start()
    try:
        with authed(first) as c:
            ids = [c.post("/opportunities", json={**VALID, "title": f"Intern {i}"}).json()
                   for i in range(5)]
            last = ids[-1]
            assert c.get(f"/opportunities/{last['id']}",
                         params={"min_position": last["position"]}).status_code == 200
    finally:
        first.stop()

    second = Runtime.build(settings)
    assert second.broker is not None
    second.start()
    try:
        with authed(second) as c:
            for accepted in ids:
                got = c.get(f"/opportunities/{accepted['id']}")
                assert got.status_code == 200
            records = read_topic(second.bootstrap or "", topic_name, len(ids))
            on_topic = {dict(r.headers)["ce_id"].decode() for r in records}
            assert on_topic == {f"{a['id']}/1" for a in ids}
            # and the service keeps working after the refill
            new = c.post("/opportunities", json=VALID).json()
            assert c.get(f"/opportunities/{new['id']}",
                         params={"min_position": new["position"]}).status_code == 200
    finally:
        second.stop()


def test_metrics_expose_relay_and_projection_lag(client: TestClient) -> None:
    accepted = client.post("/opportunities", json=VALID).json()
    client.get(f"/opportunities/{accepted['id']}", params={"min_position": accepted["position"]})
    text = client.get("/metrics").text
    assert "wbl_relay_lag_events 0.0" in text
    assert "wbl_relay_published_events_total" in text
    assert 'wbl_projection_lag_records{consumer="live"}' in text
    assert "wbl_relay_throughput_events_per_second" in text
