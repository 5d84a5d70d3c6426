"""CSRF protection on every form of the pages (issue 16): every POST route of the pages,
found from the app itself (a new form cannot be forgotten), is refused with 403 when the form
lacks the session's token (or, before sign-in, the pre-session token), and nothing is
recorded in the ledger."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from domain.actor import Actor, Role
from infra.settings import Settings
from services.api.auth import issue_token
from services.api.authz import PAGES_TAG
from services.bootstrap import Runtime
from services.web.site import create_site

pytestmark = pytest.mark.integration

PASSWORD = "a long enough test password"
ROLE_OF_PREFIX = {"/learner": "learner", "/supervisor": "supervisor",
                  "/coordinator": "coordinator", "/auditor": "state_auditor",
                  "/sponsor": "sponsor", "/sign-out": "learner"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Runtime]]:
    folder: Path = tmp_path_factory.mktemp("csrf")
    settings = Settings(data_dir=folder / "data", database_url=None, jwt_secret="j" * 40,
                        argon2_memory_kib=8192, argon2_time_cost=1, argon2_parallelism=1)
    runtime = Runtime.build(settings, relay=False, projector=False)
    app = create_site(runtime=runtime)
    with TestClient(app, base_url="https://testserver") as http:
        admin = {"Authorization": "Bearer " + issue_token(app.state.token_key,
                                                           actor_id="adm", role=Role.ADMIN)}
        for org, kind in (("school-a", "school"), ("sponsor-a", "sponsor")):
            assert http.post("/organisations", headers=admin,
                             json={"id": org, "name": org, "kind": kind}).status_code == 201
        http.get("/sign-in")  # makes the pages' parts
        for role in set(ROLE_OF_PREFIX.values()):
            org = "sponsor-a" if role == "sponsor" else "school-a"
            assert http.post(f"/organisations/{org}/people", headers=admin,
                             json={"id": f"p-{role}", "role": role}).status_code == 201
            app.state.web.accounts.create(person_id=f"p-{role}", login=role,
                                          password=PASSWORD)
    try:
        yield app, runtime
    finally:
        runtime.stop()


@pytest.fixture(scope="module")
def approval_token(site: tuple[Any, Runtime]) -> str:
    """A genuine approval link for a pending entry, so that only the missing token decides."""
    app, runtime = site
    ledger = runtime.ledger
    coordinator = Actor("coord-x", Role.COORDINATOR, "school-a")
    learner = Actor("lrn-x", Role.LEARNER, "school-a")
    supervisor = Actor("sup-x", Role.SUPERVISOR, "school-a")
    opportunity = ledger.post_opportunity(
        coordinator, organisation_id="school-a", title="Intern", employer_name="Acme",
        worksite="Main St", wbl_type="PaidInternship", paid=True,
        hourly_wage=Decimal("16.50"), starts_on=date(2026, 9, 1), ends_on=date(2027, 5, 1),
        posted_on=date(2026, 8, 1)).aggregate_id
    placement = ledger.match_learner(coordinator, opportunity, learner_id=learner.id,
                                     supervisor_id=supervisor.id,
                                     learner_born_on=date(2000, 1, 1),
                                     matched_on=date(2026, 8, 2)).aggregate_id
    for party, actor in (("learner", learner), ("employer", supervisor),
                         ("coordinator", coordinator)):
        ledger.sign_agreement(actor, placement, party=party, signed_on=date(2026, 8, 3))
    ledger.start_placement(coordinator, placement, started_on=date(2026, 9, 1))
    entry = ledger.log_hours(learner, placement, work_date=date(2026, 9, 2),
                             minutes=60).created_id
    token, _ = app.state.web.links.issue(
        "approval", {"p": str(placement), "e": str(entry), "s": supervisor.id}, 3600)
    return str(token)


def _form_routes(app: Any) -> list[str]:
    def walk(routes: list[Any]) -> Iterator[APIRoute]:
        for route in routes:
            if hasattr(route, "original_router"):  # FastAPI >= 0.16x includes lazily
                yield from walk(route.original_router.routes)
            elif isinstance(route, APIRoute):
                yield route
    return sorted({route.path for route in walk(app.routes)
                   if PAGES_TAG in route.tags and "POST" in route.methods})


def _filled(path: str, approval: str) -> str:
    if path == "/approvals/{token}":
        return f"/approvals/{approval}"
    return re.sub(r"\{[^}]+\}", lambda m: "not-a-token" if m.group(0) == "{token}"
                  else str(uuid.uuid4()), path)


def _signed_in(app: Any, role: str) -> TestClient:
    client = TestClient(app, base_url="https://testserver", follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/sign-in").text)
    assert token
    answer = client.post("/sign-in", data={"login": role, "password": PASSWORD,
                                           "csrf_token": token.group(1)})
    assert answer.status_code == 303, answer.text
    return client


def test_every_form_of_the_pages_is_listed_here(site: tuple[Any, Runtime]) -> None:
    app, _ = site
    routes = _form_routes(app)
    assert len(routes) >= 15, routes
    unknown = [r for r in routes if not any(r.startswith(p) for p in ROLE_OF_PREFIX)
               and not r.startswith(("/sign-in", "/password-reset", "/approvals"))]
    assert not unknown, f"forms whose role this test does not know: {unknown}"


@pytest.mark.parametrize("forged", [None, "forged-token"], ids=["missing", "forged"])
def test_a_form_without_its_token_is_refused_and_records_nothing(
        site: tuple[Any, Runtime], approval_token: str, forged: str | None) -> None:
    app, runtime = site
    before = runtime.ledger.recorder.max_notification_id() or 0
    clients: dict[str, TestClient] = {}
    for path in _form_routes(app):
        role = next((r for p, r in ROLE_OF_PREFIX.items() if path.startswith(p)), None)
        if role is None:
            client = TestClient(app, base_url="https://testserver", follow_redirects=False)
            client.get("/sign-in")  # a pre-session cookie, but not its token
        else:
            client = clients.get(role) or clients.setdefault(role, _signed_in(app, role))
        data = {"reason": "because", "password": "a brand new long password",
                "login": role or "learner", "minutes": "60", "title": "x"}
        if forged:
            data["csrf_token"] = forged
        data["action"] = "approve"
        answer = client.post(_filled(path, approval_token), data=data)
        assert answer.status_code == 403, (path, answer.status_code, answer.text[:300])
        assert "csrf-token-missing" in answer.text, (path, answer.text[:300])
    assert (runtime.ledger.recorder.max_notification_id() or 0) == before
