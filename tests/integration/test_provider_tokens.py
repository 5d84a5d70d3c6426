"""The API accepts a district identity provider's access tokens beside its own (issue 16):
a real OpenID provider (oidc-provider under node) signs people in over HTTP, and the tokens
it issues are sent to the ledger's API as a client would send them."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt

from domain.actor import Role
from infra.identity import ProviderClient, providers_from_settings
from infra.settings import OidcProviderSettings, Settings
from services.api.app import create_app
from services.api.auth import issue_token
from services.bootstrap import Runtime
from tests.fixtures.oidc import OidcProviderHandle, sign_in_over_http

pytestmark = pytest.mark.integration


@pytest.fixture
def api(oidc_provider: OidcProviderHandle, tmp_path: Path
        ) -> Iterator[tuple[TestClient, Settings, dict[str, str]]]:
    settings = Settings(
        data_dir=tmp_path / "data", database_url=None, jwt_secret="j" * 40,
        oidc_providers=[OidcProviderSettings(
            name="district-idp", issuer=oidc_provider.issuer,
            client_id=oidc_provider.client_id, client_secret=oidc_provider.client_secret,
            api_audience=oidc_provider.api_audience,
            scopes=["openid", "email", oidc_provider.api_scope],
            match_by=["subject", "email"], organisations=["school-a"])])
    runtime = Runtime.build(settings, relay=False, projector=False)
    app = create_app(runtime=runtime)
    try:
        with TestClient(app) as http:
            admin = {"Authorization": "Bearer " + issue_token(
                app.state.token_key, actor_id="adm-1", role=Role.ADMIN)}
            for org in ("school-a", "school-b"):
                assert http.post("/organisations", headers=admin, json={
                    "id": org, "name": org, "kind": "school"}).status_code == 201
            yield http, settings, admin
    finally:
        runtime.stop()


def _access_token(settings: Settings, handle: OidcProviderHandle, login: str) -> str:
    """Sign in at the provider as a person would (its own forms, PKCE) and keep the access
    token it issues for the ledger's API."""
    (provider,) = providers_from_settings(settings)
    client = ProviderClient.from_settings(provider, settings)
    try:
        pending = client.begin_sign_in(handle.redirect_uri)
        account = handle.accounts[login]
        callback = sign_in_over_http(pending.authorization_url, login=account.login,
                                     password=account.password,
                                     redirect_uri=handle.redirect_uri)
        signed_in = client.finish_sign_in(pending, callback)
        assert signed_in.access_token is not None
        return signed_in.access_token
    finally:
        client.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_registered_person_calls_the_api_with_the_providers_token(
        api: Any, oidc_provider: OidcProviderHandle) -> None:
    http, settings, admin = api
    lena = oidc_provider.accounts["lena"]
    registered = http.post("/organisations/school-a/people", headers=admin, json={
        "id": "lrn-lena", "role": "learner",
        "identities": [{"provider": "district-idp", "subject": lena.sub}]})
    assert registered.status_code == 201, registered.text
    assert "identities" not in registered.json()  # kept only as keyed hashes
    token = _access_token(settings, oidc_provider, "lena")
    me = http.get("/me", headers=_bearer(token))
    assert me.status_code == 200, me.text
    assert me.json()["actor_id"] == "lrn-lena" and me.json()["role"] == "learner"
    # the same person's own records, and nothing of another organisation's
    assert http.get("/learners/lrn-lena/transcript", headers=_bearer(token)).status_code == 200
    other = http.get("/learners/someone-else/transcript", headers=_bearer(token))
    assert other.status_code == 403


def test_a_person_found_by_verified_email(api: Any, oidc_provider: OidcProviderHandle) -> None:
    """Access tokens of this provider carry only the subject (as Google's and Entra's do), so
    a person registered by email is found when a token states a *verified* email: here one
    the provider's own key signs."""
    http, settings, admin = api
    sam = oidc_provider.accounts["sam"]
    assert http.post("/organisations/school-a/people", headers=admin, json={
        "id": "coord-sam", "role": "coordinator", "email": sam.email.upper()}).status_code == 201
    kid = oidc_provider.signing_key.kid
    plain = _access_token(settings, oidc_provider, "sam")
    assert "email" not in _claims(plain)
    assert http.get("/me", headers=_bearer(plain)).status_code == 403  # by subject: unknown
    verified = _forged(oidc_provider, {"alg": "RS256", "kid": kid}, sub="sam-at-idp",
                       email=sam.email, email_verified=True)
    me = http.get("/me", headers=_bearer(verified))
    assert me.status_code == 200, me.text
    assert me.json()["actor_id"] == "coord-sam" and me.json()["role"] == "coordinator"
    unverified = _forged(oidc_provider, {"alg": "RS256", "kid": kid}, sub="sam-at-idp",
                         email=sam.email, email_verified=False)
    assert http.get("/me", headers=_bearer(unverified)).status_code == 403


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    padded = payload + "=" * (-len(payload) % 4)
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return decoded


def test_unknown_unverified_and_other_organisations_people_are_refused(
        api: Any, oidc_provider: OidcProviderHandle) -> None:
    http, settings, admin = api
    # nobody registered for lena: signed in at the provider, unknown here -> 403, no account
    token = _access_token(settings, oidc_provider, "lena")
    refused = http.get("/me", headers=_bearer(token))
    assert refused.status_code == 403 and refused.json()["type"] == "/errors/unknown-person"
    people = http.get("/organisations/school-a/people", headers=admin).json()
    assert people == []
    # the provider is bound to school-a: school-b's people cannot sign in through it
    lena = oidc_provider.accounts["lena"]
    http.post("/organisations/school-b/people", headers=admin, json={
        "id": "lrn-lena-b", "role": "learner",
        "identities": [{"provider": "district-idp", "subject": lena.sub}]})
    assert http.get("/me", headers=_bearer(token)).status_code == 403


def _forged(handle: OidcProviderHandle, header: dict[str, Any], **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": handle.issuer, "aud": handle.api_audience, "sub": "learner-0001",
            "iat": now, "exp": now + 300, "client_id": handle.client_id, **claims}
    return jwt.encode(header, body, handle.signing_key)


def test_bad_provider_tokens_are_refused_with_401(api: Any,
                                                  oidc_provider: OidcProviderHandle) -> None:
    http, _, admin = api
    http.post("/organisations/school-a/people", headers=admin, json={
        "id": "lrn-lena", "role": "learner",
        "identities": [{"provider": "district-idp", "subject": "learner-0001"}]})
    kid = oidc_provider.signing_key.kid
    good = _forged(oidc_provider, {"alg": "RS256", "kid": kid})
    assert http.get("/me", headers=_bearer(good)).status_code == 200
    expired = _forged(oidc_provider, {"alg": "RS256", "kid": kid}, exp=int(time.time()) - 600)
    wrong_audience = _forged(oidc_provider, {"alg": "RS256", "kid": kid}, aud="another-api")
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none"}).encode()).rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps({
        "iss": oidc_provider.issuer, "aud": oidc_provider.api_audience,
        "sub": "learner-0001", "exp": int(time.time()) + 300}).encode()).rstrip(b"=")
    unsigned = f"{header.decode()}.{payload.decode()}."
    for token in (expired, wrong_audience, unsigned, good[:-4] + "AAAA"):
        answer = http.get("/me", headers=_bearer(token))
        assert answer.status_code == 401, answer.text
        assert answer.json()["type"] == "/errors/invalid-token"
