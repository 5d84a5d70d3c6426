"""Single sign-on through the ledger's own pages (issue 16), in Chromium against the real
oidc-provider: a registered learner signs in with the district's provider and lands signed
in; a person the ledger does not know is refused with a clear page and no account or
session; a tampered state and a replayed callback are refused; every outcome is in the
sign-in records."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlalchemy import select

from domain.actor import Role
from infra.api_tables import sign_in_records, web_sessions
from infra.settings import OidcProviderSettings, Settings
from services.api.auth import issue_token
from services.bootstrap import Runtime
from services.web.site import create_site
from tests.e2e.pages.support import audit_page
from tests.fixtures.oidc import OidcProviderHandle

pytestmark = pytest.mark.integration


@pytest.fixture
def ledger_site(oidc_provider: OidcProviderHandle, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    port = oidc_provider.relying_party_port
    base = f"http://127.0.0.1:{port}"
    settings = Settings(
        data_dir=tmp_path / "data", database_url=None, jwt_secret="j" * 40, site_url=base,
        oidc_providers=[OidcProviderSettings(
            name="district-idp", issuer=oidc_provider.issuer,
            client_id=oidc_provider.client_id, client_secret=oidc_provider.client_secret,
            scopes=["openid", "email"], match_by=["subject", "email"],
            organisations=["school-a"])])
    runtime = Runtime.build(settings, relay=False, projector=False)
    app = create_site(runtime=runtime)
    with TestClient(app) as http:
        admin = {"Authorization": "Bearer " + issue_token(
            app.state.token_key, actor_id="adm-1", role=Role.ADMIN)}
        assert http.post("/organisations", headers=admin, json={
            "id": "school-a", "name": "A", "kind": "school"}).status_code == 201
        lena = oidc_provider.accounts["lena"]
        assert http.post("/organisations/school-a/people", headers=admin, json={
            "id": "lrn-lena", "role": "learner",
            "identities": [{"provider": "district-idp", "subject": lena.sub}]}
        ).status_code == 201
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the site did not start"
        time.sleep(0.05)
    try:
        yield base, app
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.stop()


def _at_provider(page: Page, handle: OidcProviderHandle, login: str) -> None:
    account = handle.accounts[login]
    page.wait_for_url(f"{handle.issuer}/interaction/**")
    page.get_by_label("Login").fill(account.login)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Continue").click()  # consent


def _records(app: Any) -> list[tuple[str, str | None, str | None]]:
    with app.state.api_engine.connect() as conn:
        return [(r.kind, r.person_id, r.reason) for r in conn.execute(
            select(sign_in_records).order_by(sign_in_records.c.id))]


def test_single_sign_on_through_the_ledgers_pages(
        page: Page, ledger_site: tuple[str, Any], oidc_provider: OidcProviderHandle) -> None:
    base, app = ledger_site
    page.goto(base + "/")
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
    audit_page(page, "sign-in-with-provider")
    page.get_by_role("link", name="Sign in with district-idp").click()
    _at_provider(page, oidc_provider, "lena")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    assert "lrn-lena" in page.inner_text("header")
    session = next(c for c in page.context.cookies() if c["name"] == "wbl_session")
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Lax"
    assert not any(c["name"] == "wbl_oidc" for c in page.context.cookies())
    assert ("sign-in", "lrn-lena", None) in _records(app)

    # Replayed callback: the pending sign-in was used up; nothing changes.
    callbacks = _records(app)
    page.goto(base + "/sign-in/callback?code=replayed&state=whatever")
    expect(page.get_by_role("alert")).to_contain_text("no-pending-sign-in")
    assert len(_records(app)) == len(callbacks) + 1


def test_an_unknown_person_is_refused_with_a_clear_page_and_nothing_made(
        page: Page, ledger_site: tuple[str, Any], oidc_provider: OidcProviderHandle) -> None:
    base, app = ledger_site
    page.goto(base + "/sign-in")
    page.get_by_role("link", name="Sign in with district-idp").click()
    _at_provider(page, oidc_provider, "sam")  # signs in at the provider, unknown here
    expect(page.get_by_role("heading", level=1)).to_contain_text("does not know you")
    expect(page.get_by_role("alert")).to_contain_text("unknown-person")
    audit_page(page, "sign-in-unknown-person")
    assert not any(c["name"] == "wbl_session" for c in page.context.cookies())
    with app.state.api_engine.connect() as conn:
        assert conn.execute(select(web_sessions)).first() is None
    assert ("sign-in-refused", None, "unknown-person") in _records(app)


def test_a_tampered_state_is_refused(page: Page, ledger_site: tuple[str, Any],
                                     oidc_provider: OidcProviderHandle) -> None:
    base, app = ledger_site
    page.goto(base + "/sign-in")
    with page.expect_request(lambda r: r.url.startswith(oidc_provider.issuer)) as went:
        page.get_by_role("link", name="Sign in with district-idp").click()
    state = dict(p.split("=", 1) for p in went.value.url.split("?", 1)[1].split("&"))["state"]
    page.goto(f"{base}/sign-in/callback?code=anything&state={state[:-2]}xx"
              f"&iss={oidc_provider.issuer}")
    expect(page.get_by_role("alert")).to_contain_text("state-mismatch")
    assert not any(c["name"] == "wbl_session" for c in page.context.cookies())
    assert ("sign-in-refused", None, "state-mismatch") in _records(app)
