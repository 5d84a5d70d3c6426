"""A full OpenID Connect sign-in in a real browser: Chromium (Debian's, through Playwright)
against the real oidc-provider, with a throwaway relying party built on infra/identity.py.

The relying party below is a test aid, not the product's sign-in route (that comes with the
web pages): it keeps each pending sign-in server side under a random cookie, sends the
browser to the provider, and on the way back checks state, exchanges the code with the PKCE
verifier and validates the ID token. The test then takes the real tokens and callback of
that browser sign-in and shows infra/identity.py refusing each variation an attacker would
try: wrong issuer, wrong audience, expired, replayed code, tampered state, ``alg: none`` and
HS256 signed with the provider's public key.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import escape
from typing import Any

import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from joserfc import jwt

from infra.identity import IdentityError, OidcProvider, PendingSignIn, ProviderClient
from tests.fixtures.oidc import OidcProviderHandle

pytestmark = pytest.mark.integration


@dataclass
class RelyingParty:
    """The throwaway app's state, inspected by the test after the browser is done."""

    client: ProviderClient
    redirect_uri: str
    pending: dict[str, PendingSignIn] = field(default_factory=dict)
    completed: list[tuple[PendingSignIn, dict[str, str], Any]] = field(default_factory=list)


def relying_party_app(rp: RelyingParty) -> FastAPI:
    app = FastAPI()

    @app.get("/", response_class=HTMLResponse)
    def home() -> str:
        return '<!doctype html><title>RP</title><a href="/login">Sign in</a>'

    @app.get("/login")
    def login() -> RedirectResponse:
        pending = rp.client.begin_sign_in(rp.redirect_uri)
        session = secrets.token_urlsafe(24)
        rp.pending[session] = pending
        response = RedirectResponse(pending.authorization_url, status_code=303)
        response.set_cookie("rp_session", session, httponly=True, samesite="lax")
        return response

    @app.get("/callback", response_class=HTMLResponse)
    def callback(request: Request) -> HTMLResponse:
        pending = rp.pending.get(request.cookies.get("rp_session", ""))
        if pending is None:
            return HTMLResponse("<p id=refused>Refused: no-sign-in</p>", status_code=400)
        params = dict(request.query_params)
        try:
            signed_in = rp.client.finish_sign_in(pending, params)
        except IdentityError as error:
            return HTMLResponse(f"<p id=refused>Refused: {escape(error.code)}</p>",
                                status_code=400)
        rp.completed.append((pending, params, signed_in))
        return HTMLResponse(f"<p id=who>Signed in as {escape(signed_in.claims['sub'])} "
                            f"({escape(signed_in.claims['email'])})</p>")

    return app


@pytest.fixture
def relying_party(oidc_provider: OidcProviderHandle) -> Iterator[tuple[RelyingParty, str]]:
    provider = OidcProvider(name="browser-test", issuer=oidc_provider.issuer,
                            client_id=oidc_provider.client_id,
                            client_secret=oidc_provider.client_secret,
                            api_audience=oidc_provider.api_audience,
                            scopes=("openid", "email", oidc_provider.api_scope))
    rp = RelyingParty(ProviderClient(provider), oidc_provider.redirect_uri)
    port = oidc_provider.relying_party_port
    server = uvicorn.Server(uvicorn.Config(relying_party_app(rp), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the RP did not start"
        time.sleep(0.05)
    try:
        yield rp, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        rp.client.close()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


def test_sign_in_in_chromium_then_every_variation_is_refused(
        page: Any, relying_party: tuple[RelyingParty, str],
        oidc_provider: OidcProviderHandle) -> None:
    rp, base = relying_party
    lena = oidc_provider.accounts["lena"]

    page.goto(base + "/")
    page.get_by_role("link", name="Sign in").click()
    page.wait_for_url(f"{oidc_provider.issuer}/interaction/**")
    page.get_by_label("Login").fill(lena.login)
    page.get_by_label("Password").fill("not her password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Wrong login or password."
    page.get_by_label("Login").fill(lena.login)
    page.get_by_label("Password").fill(lena.password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Continue").click()  # consent
    page.wait_for_url(f"{base}/callback?**")
    assert page.locator("#who").inner_text() == f"Signed in as {lena.sub} ({lena.email})"

    assert len(rp.completed) == 1
    pending, callback, signed_in = rp.completed[0]
    assert signed_in.claims["email_verified"] is True
    assert rp.client.verify_access_token(signed_in.access_token)["sub"] == lena.sub

    # Tampered state, in the browser: the RP refuses before spending the code.
    page.goto(f"{base}/callback?code=whatever&state={pending.state[:-1]}x"
              f"&iss={oidc_provider.issuer}")
    assert page.locator("#refused").inner_text() == "Refused: state-mismatch"

    # Replayed code: the provider refuses the second exchange.
    with pytest.raises(IdentityError) as refused:
        rp.client.finish_sign_in(pending, callback)
    assert refused.value.code == "code-exchange-failed"

    id_token = signed_in.id_token
    # Wrong audience: the same ID token presented to another client.
    other = ProviderClient(OidcProvider(name="other", issuer=oidc_provider.issuer,
                                        client_id=oidc_provider.other_client_id))
    with pytest.raises(IdentityError) as refused:
        other.validate_id_token(id_token, nonce=pending.nonce)
    assert refused.value.code == "wrong-audience"
    other.close()

    # Expired: the same ID token, checked after its lifetime (and the clock leeway).
    later = ProviderClient(rp.client.provider, clock=lambda: time.time() + 3600)
    with pytest.raises(IdentityError) as refused:
        later.validate_id_token(id_token, nonce=pending.nonce)
    assert refused.value.code == "token-expired"
    later.close()

    # Wrong issuer: its claims re-signed with the provider's own key, naming another issuer.
    key = oidc_provider.signing_key
    forged = jwt.encode({"alg": "RS256", "kid": key.kid},
                        {**_claims(id_token), "iss": "https://evil.example"}, key)
    with pytest.raises(IdentityError) as refused:
        rp.client.validate_id_token(forged, nonce=pending.nonce)
    assert refused.value.code == "wrong-issuer"

    # alg none: the same claims with the signature dropped.
    body = id_token.split(".")[1]
    unsigned = _b64(json.dumps({"alg": "none", "kid": key.kid}).encode())
    with pytest.raises(IdentityError) as refused:
        rp.client.validate_id_token(f"{unsigned}.{body}.", nonce=pending.nonce)
    assert refused.value.code == "algorithm-not-allowed"

    # Algorithm confusion: HS256 keyed with the provider's public key (PEM, as published).
    public_pem = key.get_op_key("verify").public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    hs_header = _b64(json.dumps({"alg": "HS256", "kid": key.kid}).encode())
    signature = _b64(hmac.new(public_pem, f"{hs_header}.{body}".encode(), "sha256").digest())
    confused = f"{hs_header}.{body}.{signature}"
    with pytest.raises(IdentityError) as refused:
        rp.client.validate_id_token(confused, nonce=pending.nonce)
    assert refused.value.code == "algorithm-not-allowed"
    with pytest.raises(IdentityError) as refused:
        rp.client.verify_access_token(confused)
    assert refused.value.code == "algorithm-not-allowed"

    # And the genuine token still validates: each refusal was for its one change.
    assert rp.client.validate_id_token(id_token, nonce=pending.nonce)["sub"] == lena.sub
