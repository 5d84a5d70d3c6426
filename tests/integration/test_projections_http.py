"""The read models over HTTP on both stores, fed by real commands through the ledger, the
relay, the broker and the projector: a learner's transcript (JSON, CSV, Open Badges, CLR),
hours, the audit trail and its verification, read-your-writes with ``min_position``."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from domain.actor import Actor, Role
from infra.settings import Settings
from services.api.app import create_app
from services.api.auth import issue_token
from services.bootstrap import Runtime
from tests.support import WORKLOAD_ORG, placement_story

pytestmark = pytest.mark.integration
SECRET = "projection-tests-secret-0123456789abcdef"


@pytest.fixture
def world(store_settings: Settings, kafka_bootstrap: str, topic_name: str
          ) -> Iterator[tuple[TestClient, Runtime, dict[str, dict[str, str]]]]:
    settings = store_settings.model_copy(update={
        "kafka_bootstrap_servers": kafka_bootstrap, "topic": topic_name,
        "jwt_secret": SecretStr(SECRET), "read_wait_timeout_s": 10.0})
    runtime = Runtime.build(settings)
    runtime.start()
    app = create_app(runtime=runtime)
    try:
        with TestClient(app) as client:
            key = app.state.token_key
            auth = {
                who: {"Authorization": "Bearer " + issue_token(
                    key, actor_id=actor_id, role=role, organisation_id=org)}
                for who, (actor_id, role, org) in {
                    "admin": ("admin-1", "admin", None),
                    "ana": ("ana", "learner", WORKLOAD_ORG),
                    "auditor": ("aud-1", "state_auditor", None),
                }.items()}
            yield client, runtime, auth
    finally:
        runtime.stop()


def _history(runtime: Runtime) -> tuple[str, int]:
    """Ana's placement: 5 approved days, one rejected and corrected, evaluated, credentialed,
    completed. Returns the placement id and the last position."""
    ledger = runtime.ledger
    placement_story(ledger, learner="ana", days=5)
    found = ledger.recorder.select_notifications(start=1, limit=10_000)
    placement = next(str(n.originator_id) for n in found if n.topic.endswith("LearnerMatched"))
    pid = UUID(placement)
    supervisor = Actor("super-1", Role.SUPERVISOR, WORKLOAD_ORG)
    coordinator = Actor("coord-1", Role.COORDINATOR, WORKLOAD_ORG)
    ana = Actor("ana", Role.LEARNER, WORKLOAD_ORG)
    day = date(2026, 1, 12)
    bad = ledger.log_hours(ana, pid, work_date=day, minutes=600)
    ledger.reject_hours(supervisor, pid, entry_id=str(bad.created_id), reason="Not scheduled",
                        rejected_on=day + timedelta(1))
    fixed = ledger.correct_hours(ana, pid, entry_id=str(bad.created_id), reason="Typo",
                                 work_date=day, minutes=120)
    ledger.approve_hours(supervisor, pid, entry_id=str(fixed.created_id),
                         approved_on=day + timedelta(1))
    ledger.evaluate_placement(supervisor, pid, scores={"safety": 4, "teamwork": 3},
                              evaluator_role="supervisor", evaluated_on=day + timedelta(2))
    ledger.issue_credential(coordinator, pid, kind="Fieldwork", issuer="OSHA-10",
                            issued_on=day + timedelta(3))
    last = ledger.complete_placement(coordinator, pid, completed_on=day + timedelta(3))
    return placement, last.position


def get(client: TestClient, auth: dict[str, str], path: str, **params: Any) -> Any:
    response = client.get(path, params=params, headers=auth)
    assert response.status_code == 200, response.text
    return response


def test_transcript_hours_and_audit_trail_over_http(world: Any) -> None:
    client, runtime, auth = world
    placement, position = _history(runtime)

    body = get(client, auth["ana"], "/learners/ana/transcript", min_position=position,
               course_code="22151", credits="1.0").json()
    (experience,) = body["experiences"]
    assert experience["notation"] == (
        "WBL-INTERN | Acme | 2026-01-05..2026-01-15 | 22.0 h | Completed | "
        "Credential: Fieldwork (OSHA-10)")
    assert experience["approved_minutes"] == 5 * 240 + 120
    assert experience["rejected_minutes"] == 600  # still shown after its correction
    assert experience["credits"] == "1.0" and experience["course_code"] == "22151"
    assert "3.50/4" in experience["evaluation_summary"]

    exported = get(client, auth["admin"], "/learners/ana/transcript/export", format="csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert rows[0]["notation"] == experience["notation"]
    as_json = get(client, auth["admin"], "/learners/ana/transcript/export", format="json")
    assert as_json.json()[0]["approved_hours"] == "22.00"

    credential_id = experience["credentials"][0]["credential_id"]
    badge = get(client, auth["admin"],
                f"/learners/ana/credentials/{credential_id}/open-badge").json()
    assert badge["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    clr = get(client, auth["admin"], "/learners/ana/clr").json()
    assert clr["credentialSubject"]["verifiableCredential"][0]["id"] == badge["id"]

    hours = get(client, auth["admin"], "/learners/ana/apprenticeship-hours",
                include_non_apprenticeships=True, min_position=position).json()
    assert hours[0]["approved_ojl_minutes"] == 1320
    assert hours[0]["rejected_ojl_minutes"] == 600

    trail = get(client, auth["auditor"], "/audit-trail", placement_id=placement,
                min_position=position, limit=500).json()
    kinds = [e["event_type"] for e in trail]
    assert kinds[0] == "LearnerMatched" and kinds[-1] == "PlacementCompleted"
    rejected = next(e for e in trail if e["event_type"] == "HoursRejected")
    assert rejected["reason"] == "Not scheduled" and rejected["actor_id"] == "super-1"
    assert rejected["learner_id"] == "ana"
    by_actor = get(client, auth["auditor"], "/audit-trail", actor_id="super-1",
                   business_from="2026-01-13", business_to="2026-01-13").json()
    assert {e["event_type"] for e in by_actor} == {"HoursRejected", "HoursApproved"}
    page = get(client, auth["auditor"], "/audit-trail", limit=2, offset=1).json()
    assert [e["position"] for e in page] == [2, 3]
    verified = get(client, auth["auditor"], "/audit-trail/verify").json()
    assert verified["ok"] and verified["entries"] == position

    health = client.get("/health").json()
    assert set(health["projector"]["projections"]) == {
        "opportunities", "transcripts", "apprenticeship_hours", "audit_trail"}
