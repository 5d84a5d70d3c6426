"""Sign-in, sessions and password reset over HTTP, as a browser sends them (issue 16), on
both stores: local accounts with Argon2id and the throttle, CSRF on every form, idle and
absolute timeouts, sessions ended by deactivation and by a change of role, sign-out, a reset
link mailed through a real SMTP server (aiosmtpd in this process) and usable once, and the
audit record of it all without a login, an address or a token in it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from domain.actor import Role
from infra.api_tables import sign_in_records, web_sessions
from infra.settings import Settings
from services.api.auth import issue_token
from services.bootstrap import Runtime
from services.web.site import create_site
from tests.fixtures.smtp import SmtpHandle

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"
LOGIN = "Lena.Ortiz"
EMAIL = "lena.ortiz@school.test"


class Browser:
    """A TestClient that keeps cookies like a browser (https, so Secure cookies are sent)."""

    def __init__(self, app: Any) -> None:
        self.http = TestClient(app, base_url="https://testserver", follow_redirects=False)

    def csrf(self, path: str) -> str:
        page = self.http.get(path)
        assert page.status_code == 200, page.text
        found = re.search(r'name="csrf_token" value="([^"]*)"', page.text)
        assert found, page.text
        return found.group(1)

    def sign_in(self, login: str = LOGIN, password: str = PASSWORD, *,
                next_path: str = "/") -> Any:
        token = self.csrf("/sign-in")
        return self.http.post("/sign-in", data={"login": login, "password": password,
                                                "csrf_token": token, "next": next_path})


@pytest.fixture
def site(store_settings: Settings, smtp_server: SmtpHandle) -> Iterator[Any]:
    settings = Settings(**store_settings.model_dump(exclude_unset=True) | {
        "jwt_secret": "j" * 40, "argon2_memory_kib": 8192, "argon2_time_cost": 1,
        "argon2_parallelism": 1, "smtp_host": smtp_server.host, "smtp_port": smtp_server.port,
        "smtp_starttls": False, "site_url": "https://ledger.school.test"})
    runtime = Runtime.build(settings, relay=False, projector=False)
    app = create_site(runtime=runtime)
    try:
        with TestClient(app, base_url="https://testserver") as http:
            admin = {"Authorization": "Bearer " + issue_token(
                app.state.token_key, actor_id="adm-1", role=Role.ADMIN)}
            assert http.post("/organisations", headers=admin, json={
                "id": "school-a", "name": "A", "kind": "school"}).status_code == 201
            for person, role in (("lrn-1", "learner"), ("coord-1", "coordinator")):
                body: dict[str, Any] = {"id": person, "role": role}
                if person == "lrn-1":
                    body["email"] = EMAIL
                assert http.post("/organisations/school-a/people", headers=admin,
                                 json=body).status_code == 201
            parts = web_parts_of(app, http)
            parts.accounts.create(person_id="lrn-1", login=LOGIN, password=PASSWORD)
            yield app, http, admin, parts
    finally:
        runtime.stop()


def web_parts_of(app: Any, http: TestClient) -> Any:
    http.get("/sign-in")  # made on first use
    return app.state.web


def _records(parts: Any) -> list[dict[str, Any]]:
    with parts.api_engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(sign_in_records)).mappings()]


def test_a_local_account_signs_in_and_out(site: Any) -> None:
    app, _, _, parts = site
    browser = Browser(app)
    signed = browser.sign_in(next_path="/learner/anything")
    assert signed.status_code == 303 and signed.headers["location"] == "/learner/anything"
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie
    home = browser.http.get("/")
    assert home.status_code in (200, 303)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"',
                     browser.http.get("/", follow_redirects=True).text)
    assert csrf
    out = browser.http.post("/sign-out", data={"csrf_token": csrf.group(1)})
    assert out.status_code == 303 and out.headers["location"].startswith("/sign-in")
    assert browser.http.get("/").status_code == 303  # to the sign-in page again
    kinds = [r["kind"] for r in _records(parts)]
    assert kinds == ["sign-in", "sign-out"]


def test_an_open_redirect_through_next_is_refused(site: Any) -> None:
    app, *_ = site
    signed = Browser(app).sign_in(next_path="//evil.test/steal")
    assert signed.headers["location"] == "/"


def test_wrong_password_then_throttled(site: Any) -> None:
    app, _, _, parts = site
    browser = Browser(app)
    for _ in range(parts.settings.sign_in_free_failures):
        wrong = browser.sign_in(password="not the password at all")
        assert wrong.status_code == 401
        assert "wrong-login-or-password" in wrong.text
    # past the free failures the account waits, even with the right password
    throttled = browser.sign_in()
    assert throttled.status_code in (401, 429)
    throttled = browser.sign_in()
    assert throttled.status_code == 429 and "too-many-failed-sign-ins" in throttled.text
    assert int(throttled.headers["Retry-After"]) >= 1
    records = _records(parts)
    assert {r["reason"] for r in records} >= {"wrong-password", "throttled"}
    assert not any(r["kind"] == "sign-in" for r in records)


def test_a_form_without_the_sessions_token_changes_nothing(site: Any) -> None:
    app, _, _, parts = site
    browser = Browser(app)
    # sign-in form: no pre-session token, no session
    refused = browser.http.post("/sign-in", data={"login": LOGIN, "password": PASSWORD})
    assert refused.status_code == 403 and "csrf-token-missing" in refused.text
    assert "wbl_session" not in refused.headers.get("set-cookie", "")
    assert browser.sign_in().status_code == 303
    # sign-out with a made-up token: still signed in
    forged = browser.http.post("/sign-out", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    with parts.api_engine.connect() as conn:
        assert conn.execute(select(web_sessions.c.ended_at)).scalar_one() is None


def _age_sessions(parts: Any, *, created: timedelta, seen: timedelta) -> None:
    now = datetime.now(UTC)
    with parts.api_engine.begin() as conn:
        conn.execute(update(web_sessions).values(created_at=now - created,
                                                 last_seen_at=now - seen))


@pytest.mark.parametrize(("created", "seen", "reason"), [
    (timedelta(minutes=31), timedelta(minutes=31), "idle"),
    (timedelta(hours=12, minutes=1), timedelta(minutes=1), "expired"),
])
def test_sessions_end_after_idle_and_absolute_timeouts(site: Any, created: timedelta,
                                                       seen: timedelta, reason: str) -> None:
    app, _, _, parts = site
    browser = Browser(app)
    assert browser.sign_in().status_code == 303
    assert browser.http.get("/", follow_redirects=True).url.path != "/sign-in"
    _age_sessions(parts, created=created, seen=seen)  # the clock moves on
    again = browser.http.get("/")
    assert again.status_code == 303 and f"ended={reason}" in again.headers["location"]
    with parts.api_engine.connect() as conn:
        assert conn.execute(select(web_sessions.c.end_reason)).scalar_one() == reason
    assert any(r["kind"] == "session-ended" and r["reason"] == reason for r in _records(parts))


def test_a_busy_session_stays_within_the_idle_timeout(site: Any) -> None:
    app, _, _, parts = site
    browser = Browser(app)
    assert browser.sign_in().status_code == 303
    _age_sessions(parts, created=timedelta(minutes=29), seen=timedelta(minutes=29))
    assert browser.http.get("/").status_code != 303 or "ended" not in browser.http.get(
        "/").headers.get("location", "")
    with parts.api_engine.connect() as conn:  # the request moved last_seen_at on
        seen = conn.execute(select(web_sessions.c.last_seen_at)).scalar_one()
    seen = seen if seen.tzinfo else seen.replace(tzinfo=UTC)
    assert datetime.now(UTC) - seen < timedelta(minutes=1)


@pytest.mark.parametrize(("path", "body", "reason"), [
    ("/organisations/school-a/people/lrn-1/deactivate", {"reason": "Left the school"},
     "deactivated"),
    ("/organisations/school-a/people/lrn-1/role", {"role": "supervisor"}, "role-changed"),
])
def test_deactivation_and_a_new_role_end_the_persons_sessions(
        site: Any, path: str, body: dict[str, str], reason: str) -> None:
    app, http, _, parts = site
    browser = Browser(app)
    assert browser.sign_in().status_code == 303
    coordinator = {"Authorization": "Bearer " + issue_token(
        app.state.token_key, actor_id="coord-1", role=Role.COORDINATOR,
        organisation_id="school-a")}
    changed = http.post(path, headers=coordinator, json=body)
    assert changed.status_code == 200, changed.text
    assert changed.json()["sessions_ended"] == 1
    again = browser.http.get("/")
    assert again.status_code == 303 and again.headers["location"].startswith("/sign-in")
    with parts.api_engine.connect() as conn:
        assert conn.execute(select(web_sessions.c.end_reason)).scalar_one() == reason
    if reason == "deactivated":  # and the person cannot sign in again
        refused = Browser(app).sign_in()
        assert refused.status_code == 403 and "person-deactivated" in refused.text
    else:  # signs in again, now in the new role
        assert Browser(app).sign_in().status_code == 303


def test_a_coordinator_cannot_deactivate_themself_or_promote_to_admin(site: Any) -> None:
    app, http, _, _ = site
    coordinator = {"Authorization": "Bearer " + issue_token(
        app.state.token_key, actor_id="coord-1", role=Role.COORDINATOR,
        organisation_id="school-a")}
    own = http.post("/organisations/school-a/people/coord-1/deactivate", headers=coordinator,
                    json={"reason": "test"})
    assert own.status_code == 422 and own.json()["type"] == "/errors/own-account"
    promote = http.post("/organisations/school-a/people/lrn-1/role", headers=coordinator,
                        json={"role": "admin"})
    assert promote.status_code in (403, 422)


def _reset_link(smtp: SmtpHandle) -> str:
    (received,) = smtp.messages
    assert [r.lower() for r in received.rcpt_tos] == [EMAIL]
    body = received.message.get_body(preferencelist=("plain",))
    assert body is not None
    found = re.search(r"https://ledger\.school\.test(/password-reset/\S+)", body.get_content())
    assert found, body.get_content()
    return found.group(1)


def test_password_reset_by_a_mailed_single_use_link(site: Any, smtp_server: SmtpHandle
                                                    ) -> None:
    app, _, _, _parts = site
    browser = Browser(app)
    assert browser.sign_in().status_code == 303  # a session with the old password
    asker = Browser(app)
    token = asker.csrf("/password-reset")
    # a wrong address: the same answer, and no mail
    same = asker.http.post("/password-reset", data={"login": LOGIN, "email": "x@evil.test",
                                                    "csrf_token": token})
    assert same.status_code == 200 and not smtp_server.messages
    sent = asker.http.post("/password-reset", data={"login": LOGIN, "email": EMAIL.upper(),
                                                    "csrf_token": token})
    assert sent.status_code == 200
    link = _reset_link(smtp_server)
    form_token = asker.csrf(link)
    short = asker.http.post(link, data={"password": "short", "csrf_token": form_token})
    assert short.status_code == 422 and "password-too-weak" in short.text
    new_password = "a brand new long passphrase"
    done = asker.http.post(link, data={"password": new_password, "csrf_token": form_token})
    assert done.status_code == 200, done.text
    again = asker.http.post(link, data={"password": "yet another passphrase!",
                                        "csrf_token": form_token})
    assert again.status_code == 410 and "link-used" in again.text
    assert asker.http.get(link).status_code == 410
    # the old session ended with the old password; the new password signs in
    assert browser.http.get("/").status_code == 303
    assert Browser(app).sign_in(password=PASSWORD).status_code == 401
    assert Browser(app).sign_in(password=new_password).status_code == 303
    tampered = asker.http.get(link[:-3] + "abc")
    assert tampered.status_code == 400 and "link-invalid" in tampered.text


def test_the_sign_in_records_hold_no_login_address_or_secret(site: Any,
                                                             smtp_server: SmtpHandle) -> None:
    app, _, _, parts = site
    Browser(app).sign_in(password="wrong wrong wrong")
    Browser(app).sign_in()
    asker = Browser(app)
    asker.http.post("/password-reset", data={"login": LOGIN, "email": EMAIL,
                                             "csrf_token": asker.csrf("/password-reset")})
    text = repr(_records(parts)).lower()
    for secret in (LOGIN.lower(), EMAIL, PASSWORD, "testclient", "127.0.0.1"):
        assert secret not in text
    assert "lrn-1" in text  # the pseudonymous person id is what an auditor follows


def test_unknown_pages_and_the_api_are_unchanged(site: Any, tmp_path: Path) -> None:
    _app, http, admin, _ = site
    assert http.get("/organisations", headers=admin).status_code == 200
    assert http.get("/organisations").status_code == 401  # the API still wants a token
    assert http.get("/no-such-page").headers["content-type"].startswith(
        "application/problem+json")
