"""A small world for HTTP API tests: organisations, a program, opportunities, one active
apprenticeship placement with logged hours, and a token for every actor.

The app runs in-process over a fresh store (no broker: these tests are about the HTTP
layer; `test_slice.py` covers the path to Kafka). Other `test_api_*` modules import the
fixtures from here. The tests in this module walk one placement through its lifecycle
over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from domain.actor import Role
from infra.settings import Settings
from services.api.app import create_app
from services.api.auth import issue_token
from services.bootstrap import Runtime

SECRET = "test-secret-for-the-api-tests-0123456789abcdef"
TODAY = date.today()
STARTS = TODAY - timedelta(days=60)
ENDS = TODAY + timedelta(days=300)

ACTORS: dict[str, tuple[str, Role, str | None]] = {
    "admin": ("adm-1", Role.ADMIN, None),
    "coord_a": ("coord-a", Role.COORDINATOR, "district-a"),
    "coord_b": ("coord-b", Role.COORDINATOR, "district-b"),
    "learner": ("lrn-1", Role.LEARNER, "district-a"),
    "learner_other": ("lrn-2", Role.LEARNER, "district-a"),
    "supervisor": ("sup-1", Role.SUPERVISOR, "acme"),
    "supervisor_other": ("sup-2", Role.SUPERVISOR, "acme"),
    "sponsor": ("spon-a", Role.SPONSOR, "sponsor-a"),
    "sponsor_other": ("spon-b", Role.SPONSOR, "sponsor-b"),
    "auditor": ("aud-1", Role.STATE_AUDITOR, None),
    "researcher": ("res-1", Role.RESEARCHER, None),
    "guardian": ("grd-a", Role.GUARDIAN, "district-a"),
    "guardian_other": ("grd-b", Role.GUARDIAN, "district-b"),
}


def opportunity_body(organisation_id: str = "district-a", **changes: Any) -> dict[str, Any]:
    return {
        "organisation_id": organisation_id, "title": "Electrical apprentice",
        "employer_name": "Acme Electric", "worksite": "1 Volt Way",
        "wbl_type": "Apprenticeship", "paid": True, "hourly_wage": "18.00",
        "capacity": 50, "starts_on": STARTS.isoformat(), "ends_on": ENDS.isoformat(),
        **changes,
    }


PROGRAM = {
    "sponsor_id": "sponsor-a", "sponsor_name": "Acme JATC", "title": "Electrician",
    "rapids_code": "0159", "onet_code": "47-2111.00", "approach": "hybrid",
    "ojl_hours": 2000, "work_processes": {"Wiring": 1500, "Safety": 500},
    "competencies": ["Wiring basics", "Site safety"],
    "wage_schedule": [{"after_hours": 0, "hourly_wage": "18.00"}],
}


@dataclass
class World:
    client: TestClient
    runtime: Runtime
    tokens: dict[str, str]
    program_id: str = ""
    opportunity_id: str = ""
    spare_opportunity_id: str = ""
    placement_id: str = ""
    spare_placement_id: str = ""
    entries: list[str] = field(default_factory=list)

    def auth(self, who: str, **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **headers}

    def call(self, who: str | None, method: str, path: str, body: Any = None,
             **headers: str) -> Any:
        all_headers = self.auth(who, **headers) if who else headers
        return self.client.request(method, path, json=body, headers=all_headers)

    def ok(self, who: str, method: str, path: str, body: Any = None, **headers: str) -> Any:
        response = self.call(who, method, path, body, **headers)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json()

    @property
    def position(self) -> int:
        return self.runtime.ledger.recorder.max_notification_id() or 0

    def log_entry(self, days_after_start: int, minutes: int = 60, who: str = "learner") -> str:
        work_date = (STARTS + timedelta(days=days_after_start)).isoformat()
        body = {"work_date": work_date, "minutes": minutes,
                "allocations": {"Wiring": minutes}}
        return str(self.ok(who, "POST", f"/placements/{self.placement_id}/hours",
                           body)["created_id"])


def api_settings(tmp_path: Path, **changes: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=None, jwt_secret=SECRET,
                    read_wait_timeout_s=0.2, **changes)


def tokens_for(runtime: Runtime, app: Any) -> dict[str, str]:
    key = app.state.token_key
    return {name: issue_token(key, actor_id=actor_id, role=role, organisation_id=org)
            for name, (actor_id, role, org) in ACTORS.items()}


def build_world(settings: Settings) -> Iterator[World]:
    runtime = Runtime.build(settings, relay=False, projector=False)
    app = create_app(runtime=runtime)
    try:
        with TestClient(app) as client:
            world = World(client, runtime, tokens_for(runtime, app))
            populate(world)
            yield world
    finally:
        runtime.stop()


def populate(w: World) -> None:
    for org, kind in (("district-a", "district"), ("district-b", "district"),
                      ("sponsor-a", "sponsor")):
        w.ok("admin", "POST", "/organisations", {"id": org, "name": org.title(), "kind": kind})
    w.ok("coord_a", "POST", "/organisations/district-a/people", {"id": "lrn-1",
                                                                 "role": "learner"})
    w.program_id = w.ok("sponsor", "POST", "/programs", PROGRAM)["id"]
    w.opportunity_id = w.ok("coord_a", "POST", "/opportunities", opportunity_body())["id"]
    w.spare_opportunity_id = w.ok("coord_a", "POST", "/opportunities",
                                  opportunity_body())["id"]
    w.placement_id = w.ok("coord_a", "POST", "/placements", {
        "opportunity_id": w.opportunity_id, "learner_id": "lrn-1", "supervisor_id": "sup-1",
        "learner_born_on": "2000-03-04", "program_id": w.program_id})["id"]
    w.spare_placement_id = w.ok("coord_a", "POST", "/placements", {
        "opportunity_id": w.opportunity_id, "learner_id": "lrn-1", "supervisor_id": "sup-1",
        "learner_born_on": "2000-03-04", "program_id": w.program_id})["id"]
    base = f"/placements/{w.placement_id}"
    for who, party in (("learner", "learner"), ("supervisor", "employer"),
                       ("coord_a", "coordinator")):
        w.ok(who, "POST", f"{base}/agreement-signatures", {"party": party})
    w.ok("supervisor", "POST", f"{base}/start", {"started_on": STARTS.isoformat()})
    w.entries = [w.log_entry(day) for day in range(1, 9)]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from build_world(api_settings(tmp_path))


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from build_world(api_settings(tmp_path_factory.mktemp("world")))


# -- the lifecycle over HTTP -------------------------------------------------------------

def test_a_placement_lifecycle_over_http(world: World) -> None:
    base = f"/placements/{world.placement_id}"
    got = world.client.get(base, headers=world.auth("learner"))
    assert got.status_code == 200
    assert got.json()["status"] == "active"
    version = int(got.headers["etag"].strip('"'))

    entry = world.entries[0]
    approved = world.call("supervisor", "POST", f"{base}/hours/{entry}/approve", {},
                          **{"If-Match": f'"{version}"'})
    assert approved.status_code == 200, approved.text
    assert approved.json()["version"] == version + 1
    assert approved.headers["etag"] == f'"{version + 1}"'

    rejected = world.ok("supervisor", "POST", f"{base}/hours/{world.entries[1]}/reject",
                        {"reason": "Not at the worksite"})
    corrected = world.call("learner", "POST", f"{base}/hours/{world.entries[2]}/correct",
                           {"reason": "Worked 30 min less", "minutes": 30,
                            "work_date": (STARTS + timedelta(days=3)).isoformat()})
    assert corrected.status_code == 201, corrected.text
    assert corrected.json()["created_id"]
    assert corrected.json()["version"] == rejected["version"] + 1

    evaluation = world.ok("supervisor", "POST", f"{base}/evaluations", {
        "scores": {"Wiring basics": 3, "Site safety": 4}, "evaluator_role": "supervisor"})
    assert evaluation["created_id"]
    credential = world.ok("coord_a", "POST", f"{base}/credentials",
                          {"kind": "Badge", "issuer": "District A"})
    assert credential["created_id"]
    world.ok("sponsor", "POST", f"{base}/competency-sign-offs", {"competency": "Site safety"})
    world.ok("sponsor", "POST", f"{base}/prior-learning-credits",
             {"minutes": 600, "basis": "prior_experience", "work_process": "Wiring"})
    world.ok("coord_a", "POST", f"{base}/suspend", {"reason": "Site closed"})
    world.ok("coord_a", "POST", f"{base}/reinstate", {"reason": "Site open"})

    hours = world.ok("learner", "GET", f"{base}/hours")
    statuses = {e["entry_id"]: e["status"] for e in hours["entries"]}
    assert statuses[entry] == "approved"
    assert statuses[world.entries[1]] == "rejected"
    assert statuses[world.entries[2]] == "superseded"
    page = world.ok("learner", "GET", f"{base}/hours?limit=2&offset=1")
    assert page["total"] == len(hours["entries"]) == hours["total"]
    assert page["entries"] == hours["entries"][1:3]
    assert world.call("learner", "GET", f"{base}/hours?limit=0").status_code == 422
    assert world.ok("learner", "GET", f"{base}/evaluations")["evaluation_completed"]
    assert len(world.ok("auditor", "GET", f"{base}/credentials")["credentials"]) == 1
    placement = world.ok("sponsor", "GET", base)
    assert placement["approved_minutes"] == 60
    assert placement["credited_minutes"] == 600
    assert placement["competencies_signed_off"] == {"Site safety": TODAY.isoformat()}
    program = world.ok("learner", "GET", f"/programs/{world.program_id}")
    assert program["wage_schedule"] == [{"after_hours": 0, "hourly_wage": "18.00"}]


def test_the_event_records_the_token_actor_not_the_body(world: World) -> None:
    base = f"/placements/{world.placement_id}"
    smuggled = world.call("learner", "POST", f"{base}/hours", {
        "work_date": (STARTS + timedelta(days=20)).isoformat(), "minutes": 30,
        "actor_id": "sup-1", "actor_role": "supervisor"})
    assert smuggled.status_code == 422
    assert smuggled.json()["field"] == "actor_id"
    entry = world.log_entry(21)
    placement = world.runtime.ledger.get_placement(UUID(world.placement_id))
    assert placement.entries[entry].logged_by == "lrn-1"
    events = list(world.runtime.ledger.recorder.select_notifications(start=1, limit=1000))
    last = events[-2]  # the Placement's event, saved before the LearnerDay's
    assert b'"actor_id":"lrn-1"' in last.state
    assert b'"actor_role":"learner"' in last.state


def test_me_and_organisations_and_people(world: World) -> None:
    assert world.ok("coord_a", "GET", "/me") == {
        "actor_id": "coord-a", "role": "coordinator", "organisation_id": "district-a"}
    person = world.call("coord_a", "POST", "/organisations/district-a/people",
                        {"id": "lrn-9", "role": "learner"})
    assert person.status_code == 201, person.text
    again = world.call("coord_a", "POST", "/organisations/district-a/people",
                       {"id": "lrn-9", "role": "learner"})
    assert again.status_code == 409
    assert again.json()["type"] == "/errors/person-exists"
    admin_escalation = world.call("coord_a", "POST", "/organisations/district-a/people",
                                  {"id": "x-1", "role": "admin"})
    assert admin_escalation.status_code == 403
    listed = world.ok("auditor", "GET", "/organisations/district-a/people")
    assert [p["id"] for p in listed] == ["lrn-1", "lrn-9"]
    child = world.call("admin", "POST", "/organisations",
                       {"id": "school-1", "name": "School 1", "kind": "school",
                        "parent_id": "district-a"})
    assert child.status_code == 201
    orphan = world.call("admin", "POST", "/organisations",
                        {"id": "school-2", "name": "S2", "kind": "school", "parent_id": "nope"})
    assert orphan.status_code == 422
    assert orphan.json()["type"] == "/errors/unknown-parent"
    children = world.ok("learner", "GET", "/organisations?parent_id=district-a")
    assert [o["id"] for o in children] == ["school-1"]
    policy = world.call("coord_a", "POST", "/organisations/district-a/child-labour-policy",
                        {"policy": "flag", "reason": "WECEP exemption"})
    assert policy.status_code == 200, policy.text
    assert policy.headers["etag"] == '"1"'


def test_bulk_approve_reports_each_item(world: World) -> None:
    items = [{"placement_id": world.placement_id, "entry_id": e} for e in world.entries[:3]]
    items.append({"placement_id": world.placement_id, "entry_id": "no-such-entry"})
    result = world.ok("supervisor", "POST", "/hours/bulk-approve", {"items": items})
    assert result["approved"] == 3
    assert result["refused"] == 1
    assert result["outcomes"][3]["problem_type"] == "/errors/unknown-entry"
    other = world.ok("supervisor_other", "POST", "/hours/bulk-approve",
                     {"items": [{"placement_id": world.placement_id,
                                 "entry_id": world.entries[4]}]})
    assert other["outcomes"][0]["status"] == 404
    assert other["outcomes"][0]["problem_type"] == "/errors/unknown-placement"


def test_request_ids_are_echoed_or_made(world: World) -> None:
    echoed = world.client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    made = world.client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces"
    assert len(made.headers["x-request-id"]) == 32


def test_logs_carry_no_learner_id_and_metrics_count_requests(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    import json
    import logging

    from infra.logs import JSONFormatter

    caplog.set_level(logging.INFO)
    base = f"/placements/{world.placement_id}"
    world.ok("learner", "GET", f"{base}/hours")
    world.log_entry(30)
    world.call("learner", "GET", "/learners/lrn-1/transcript")
    world.call("learner", "POST", f"{base}/hours", {"work_date": "1999-01-01", "minutes": 5})
    lines = [JSONFormatter().format(r) for r in caplog.records
             if not r.name.startswith("httpx")]  # the test client logs its own URLs
    access = [json.loads(line) for line in lines if '"request"' in line]
    assert access, lines
    assert all("lrn-1" not in line for line in lines)
    assert {a["route"] for a in access} >= {"/placements/{placement_id}/hours"}
    assert all(a["role"] == "learner" and len(a["actor"]) == 12 for a in access)
    assert all(a["request_id"] for a in access)
    metrics = world.client.get("/metrics", headers=world.auth("admin")).text
    assert 'wbl_http_requests_total{method="GET",route="/placements/{placement_id}/hours"' \
        ',status="200"}' in metrics
    assert "wbl_http_request_duration_seconds_bucket" in metrics
