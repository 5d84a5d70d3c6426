"""infra/identity.py against a real OpenID provider (oidc-provider under node, over HTTP).

Tokens with bad claims are signed with the provider's own key (the fixture made it), so each
test isolates one check: the signature is good and only the named claim is wrong.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from joserfc import jwt
from joserfc.jwk import RSAKey

from domain.actor import Role
from infra.identity import (
    IdentityError,
    OidcProvider,
    Person,
    ProviderClient,
    decide_person,
    providers_from_settings,
    token_issuer,
)
from infra.settings import Settings
from tests.fixtures.oidc import (
    OidcProviderHandle,
    free_port,
    new_signing_key,
    running_provider,
    sign_in_over_http,
)


def _provider(handle: OidcProviderHandle, **changes: Any) -> OidcProvider:
    fields: dict[str, Any] = {
        "name": "test-provider", "issuer": handle.issuer, "client_id": handle.client_id,
        "client_secret": handle.client_secret, "api_audience": handle.api_audience,
        "scopes": ("openid", "email", handle.api_scope)}
    fields.update(changes)
    return OidcProvider(**fields)


@pytest.fixture
def client(oidc_provider: OidcProviderHandle) -> Iterator[ProviderClient]:
    made = ProviderClient(_provider(oidc_provider))
    try:
        yield made
    finally:
        made.close()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _as_provider(handle: OidcProviderHandle, key: RSAKey | None = None,
                 **claims: Any) -> str:
    """An access token signed with the provider's key, with these claims over good ones."""
    now = int(time.time())
    body: dict[str, Any] = {"iss": handle.issuer, "aud": handle.api_audience,
                            "sub": "learner-0001", "iat": now, "exp": now + 300,
                            "client_id": handle.client_id, "scope": handle.api_scope}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    signer = key or handle.signing_key
    return jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": signer.kid}, body, signer)


def _sign_in(client: ProviderClient, handle: OidcProviderHandle, login: str = "lena"
             ) -> tuple[Any, dict[str, str]]:
    pending = client.begin_sign_in(handle.redirect_uri)
    account = handle.accounts[login]
    callback = sign_in_over_http(pending.authorization_url, login=account.login,
                                 password=account.password, redirect_uri=handle.redirect_uri)
    return pending, callback


def test_code_flow_with_pkce_signs_in_and_the_access_token_verifies(
        client: ProviderClient, oidc_provider: OidcProviderHandle) -> None:
    pending = client.begin_sign_in(oidc_provider.redirect_uri)
    query = parse_qs(urlsplit(pending.authorization_url).query)
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["code_challenge"] == [_b64(hashlib.sha256(
        pending.code_verifier.encode()).digest())]
    assert query["state"] == [pending.state] and query["nonce"] == [pending.nonce]
    assert "code_verifier" not in query
    account = oidc_provider.accounts["lena"]
    callback = sign_in_over_http(pending.authorization_url, login="lena",
                                 password=account.password,
                                 redirect_uri=oidc_provider.redirect_uri)
    assert callback["iss"] == oidc_provider.issuer
    signed_in = client.finish_sign_in(pending, callback)
    assert signed_in.claims["sub"] == account.sub
    assert signed_in.claims["email"] == account.email
    assert signed_in.claims["email_verified"] is True
    assert signed_in.claims["nonce"] == pending.nonce
    assert signed_in.access_token is not None
    assert token_issuer(signed_in.access_token) == oidc_provider.issuer
    claims = client.verify_access_token(signed_in.access_token)
    assert claims["sub"] == account.sub and claims["aud"] == oidc_provider.api_audience
    # The ID token is not an access token for the API: its audience is the client.
    with pytest.raises(IdentityError) as refused:
        client.verify_access_token(signed_in.id_token)
    assert refused.value.code == "wrong-audience"


def test_wrong_password_is_refused_by_the_providers_form(
        client: ProviderClient, oidc_provider: OidcProviderHandle) -> None:
    pending = client.begin_sign_in(oidc_provider.redirect_uri)
    with pytest.raises(PermissionError):
        sign_in_over_http(pending.authorization_url, login="lena", password="not-it",
                          redirect_uri=oidc_provider.redirect_uri)


def test_a_replayed_code_is_refused_by_the_provider(
        client: ProviderClient, oidc_provider: OidcProviderHandle) -> None:
    pending, callback = _sign_in(client, oidc_provider)
    client.finish_sign_in(pending, callback)
    with pytest.raises(IdentityError) as refused:
        client.finish_sign_in(pending, callback)
    assert refused.value.code == "code-exchange-failed"


def test_a_wrong_code_verifier_is_refused_by_the_provider(
        client: ProviderClient, oidc_provider: OidcProviderHandle) -> None:
    pending, callback = _sign_in(client, oidc_provider)
    forged = type(pending)(**{**pending.__dict__, "code_verifier": secrets.token_urlsafe(64)})
    with pytest.raises(IdentityError) as refused:
        client.finish_sign_in(forged, callback)
    assert refused.value.code == "code-exchange-failed"


def test_tampered_state_is_refused_before_the_code_is_spent(
        client: ProviderClient, oidc_provider: OidcProviderHandle) -> None:
    pending, callback = _sign_in(client, oidc_provider)
    for state in (callback["state"][:-1] + "x", "", None):
        tampered = {**callback, "state": state} if state is not None else {
            k: v for k, v in callback.items() if k != "state"}
        with pytest.raises(IdentityError) as refused:
            client.finish_sign_in(pending, tampered)
        assert refused.value.code == "state-mismatch"
    # Refused before any exchange: the genuine callback still completes.
    assert client.finish_sign_in(pending, callback).claims["sub"] == "learner-0001"


def test_a_callback_naming_another_issuer_is_refused(
        client: ProviderClient, oidc_provider: OidcProviderHandle) -> None:
    pending, callback = _sign_in(client, oidc_provider)
    with pytest.raises(IdentityError) as refused:
        client.finish_sign_in(pending, {**callback, "iss": "https://evil.example"})
    assert refused.value.code == "wrong-issuer"


def test_an_id_token_for_another_client_or_sign_in_is_refused(
        client: ProviderClient, oidc_provider: OidcProviderHandle) -> None:
    other = ProviderClient(_provider(oidc_provider, client_id=oidc_provider.other_client_id,
                                     client_secret=oidc_provider.other_client_secret))
    try:
        pending, callback = _sign_in(other, oidc_provider, "sam")
        theirs = other.finish_sign_in(pending, callback)
    finally:
        other.close()
    with pytest.raises(IdentityError) as refused:
        client.validate_id_token(theirs.id_token, nonce=pending.nonce)
    assert refused.value.code == "wrong-audience"
    mine_pending, mine_callback = _sign_in(client, oidc_provider)
    mine = client.finish_sign_in(mine_pending, mine_callback)
    with pytest.raises(IdentityError) as refused:
        client.validate_id_token(mine.id_token, nonce="another-sign-in")
    assert refused.value.code == "nonce-mismatch"


@pytest.mark.parametrize(("claims", "code"), [
    ({"iss": "https://evil.example"}, "wrong-issuer"),
    ({"aud": "https://another-api.example"}, "wrong-audience"),
    ({"iat": int(time.time()) - 3600, "exp": int(time.time()) - 600}, "token-expired"),
    ({"exp": None}, "invalid-claims"),
    ({"sub": None}, "invalid-claims"),
])
def test_access_tokens_with_a_bad_claim_are_refused(
        client: ProviderClient, oidc_provider: OidcProviderHandle,
        claims: dict[str, Any], code: str) -> None:
    assert client.verify_access_token(_as_provider(oidc_provider))["sub"] == "learner-0001"
    with pytest.raises(IdentityError) as refused:
        client.verify_access_token(_as_provider(oidc_provider, **claims))
    assert refused.value.code == code


def test_alg_none_and_hs256_signed_with_the_public_key_are_refused(
        client: ProviderClient, oidc_provider: OidcProviderHandle) -> None:
    now = int(time.time())
    body = _b64(json.dumps({"iss": oidc_provider.issuer, "aud": oidc_provider.api_audience,
                            "sub": "coord-0002", "iat": now, "exp": now + 300}).encode())
    kid = oidc_provider.signing_key.kid
    for alg in ("none", "None", "NONE"):
        header = _b64(json.dumps({"alg": alg, "kid": kid}).encode())
        with pytest.raises(IdentityError) as refused:
            client.verify_access_token(f"{header}.{body}.")
        assert refused.value.code == "algorithm-not-allowed"
    # Algorithm confusion: the provider's published public key, used as an HMAC secret.
    jwks = httpx.get(client.discovery().jwks_uri).json()
    public = RSAKey.import_key(jwks["keys"][0]).get_op_key("verify")
    for encoding in (serialization.Encoding.PEM, serialization.Encoding.DER):
        secret = public.public_bytes(encoding, serialization.PublicFormat.SubjectPublicKeyInfo)
        header = _b64(json.dumps({"alg": "HS256", "kid": kid, "typ": "JWT"}).encode())
        signature = _b64(hmac.new(secret, f"{header}.{body}".encode(), "sha256").digest())
        with pytest.raises(IdentityError) as refused:
            client.verify_access_token(f"{header}.{body}.{signature}")
        assert refused.value.code == "algorithm-not-allowed"
    # Even a provider wrongly configured to list HS256 is refused at configuration.
    with pytest.raises(ValueError, match="not accepted"):
        _provider(oidc_provider, algorithms=("RS256", "HS256"))


def test_a_token_signed_by_another_key_is_refused(
        client: ProviderClient, oidc_provider: OidcProviderHandle) -> None:
    stranger = new_signing_key()
    with pytest.raises(IdentityError) as refused:
        client.verify_access_token(_as_provider(oidc_provider, key=stranger))
    assert refused.value.code == "unknown-key"
    same_kid = RSAKey.generate_key(2048, parameters={"kid": oidc_provider.signing_key.kid})
    with pytest.raises(IdentityError) as refused:
        client.verify_access_token(_as_provider(oidc_provider, key=same_kid))
    assert refused.value.code == "bad-signature"


def test_keys_are_cached_and_fetched_again_once_when_the_provider_rotates() -> None:
    """A provider of its own, restarted on the same port with a new signing key."""
    from tests.fixtures.oidc import require_node

    require_node()
    old, new = new_signing_key(), new_signing_key()
    port, redirect = free_port(), f"http://127.0.0.1:{free_port()}/callback"
    options = {"port": port, "redirect_uri": redirect, "client_secret": "s" * 32,
               "other_client_secret": "o" * 32}
    with running_provider(keys=[old], **options) as issuer:
        handle = OidcProviderHandle(issuer=issuer, client_id="wbl-ledger-test",
                                    client_secret="s" * 32, redirect_uri=redirect,
                                    other_client_id="someone-else",
                                    other_client_secret="o" * 32,
                                    api_audience="https://wbl-ledger.test/api",
                                    api_scope="wbl:api", signing_key=old)
        client = ProviderClient(_provider(handle), min_refetch_s=0.0)
        for _ in range(3):
            client.verify_access_token(_as_provider(handle, key=old))
        assert client.keys.fetches == 1
    with running_provider(keys=[new, old], **options):
        client.verify_access_token(_as_provider(handle, key=old))
        assert client.keys.fetches == 1  # known kid: no fetch
        client.verify_access_token(_as_provider(handle, key=new))
        assert client.keys.fetches == 2  # unknown kid: fetched once, then verified
        client.verify_access_token(_as_provider(handle, key=new))
        assert client.keys.fetches == 2
    client.close()


def test_made_up_key_ids_do_not_hammer_the_provider(
        oidc_provider: OidcProviderHandle) -> None:
    client = ProviderClient(_provider(oidc_provider), min_refetch_s=60.0)
    try:
        client.verify_access_token(_as_provider(oidc_provider))
        for _ in range(5):
            with pytest.raises(IdentityError):
                client.verify_access_token(_as_provider(oidc_provider, key=new_signing_key()))
        assert client.keys.fetches == 1
    finally:
        client.close()


def test_discovery_naming_another_issuer_is_refused(oidc_provider: OidcProviderHandle) -> None:
    lookalike = oidc_provider.issuer.replace("127.0.0.1", "localhost")
    client = ProviderClient(_provider(oidc_provider, issuer=lookalike))
    try:
        with pytest.raises(IdentityError) as refused:
            client.discovery()
        assert refused.value.code == "wrong-issuer"
    finally:
        client.close()


def test_providers_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WBL_OIDC_PROVIDERS", json.dumps([
        {"name": "district-google", "issuer": "https://accounts.google.com",
         "client_id": "abc", "client_secret": "shh", "match_by": ["subject", "email"],
         "organisations": ["district-12"]},
        {"name": "clever", "issuer": "https://clever.com", "client_id": "x"}]))
    providers = providers_from_settings(Settings())
    assert [p.name for p in providers] == ["district-google", "clever"]
    assert providers[0].client_secret == "shh" and "shh" not in repr(providers[0])
    assert providers[0].match_by == ("subject", "email")
    monkeypatch.setenv("WBL_OIDC_PROVIDERS", json.dumps([
        {"name": "x", "issuer": "http://evil.example", "client_id": "x"}]))
    with pytest.raises(ValueError, match="https"):
        Settings()
    monkeypatch.setenv("WBL_OIDC_PROVIDERS", json.dumps([
        {"name": "x", "issuer": "https://a.example", "client_id": "x",
         "algorithms": ["HS256"]}]))
    with pytest.raises(ValueError, match="asymmetric"):
        Settings()


class _People:
    """The ledger's people, as the caller's directory would find them."""

    def __init__(self, *people: tuple[Person, str, str]) -> None:
        self.subjects = {(provider, sub): p for p, provider, sub in people if sub}
        self.emails = {email: p for p, _, email in people if "@" in email}

    def by_subject(self, provider: str, subject: str) -> Person | None:
        return self.subjects.get((provider, subject))

    def by_email(self, email: str) -> Person | None:
        return self.emails.get(email)


def test_claims_map_to_a_registered_person_or_are_refused(
        client: ProviderClient, oidc_provider: OidcProviderHandle) -> None:
    lena = Person("lena-1", "learner", "school-a")
    people = _People((lena, "test-provider", "learner-0001"))
    pending, callback = _sign_in(client, oidc_provider, "lena")
    claims = client.finish_sign_in(pending, callback).claims
    decision = decide_person(client.provider, claims, people)
    assert decision.allowed and decision.matched_by == "subject"
    assert decision.actor().role is Role.LEARNER
    assert decision.actor().organisation_id == "school-a"
    # The same claims from another provider name nobody: subjects are per provider.
    other = _provider(oidc_provider, name="another-provider")
    assert decide_person(other, claims, people).reason == "unknown-person"
    # Unknown person: refused, never an account.
    unknown = decide_person(client.provider, claims, _People())
    assert not unknown.allowed and unknown.reason == "unknown-person"
    with pytest.raises(IdentityError):
        unknown.actor()
    # A provider bound to other organisations does not admit her.
    bound = _provider(oidc_provider, organisations=("school-b",))
    assert decide_person(bound, claims, people).reason == "organisation-not-allowed"
    # Role mapping: the provider's stated role must be the registered one.
    mapped = _provider(oidc_provider, role_claim="groups",
                       role_map={"students": "learner", "staff": "coordinator"})
    assert decide_person(mapped, {**claims, "groups": ["students"]}, people).allowed
    assert decide_person(mapped, {**claims, "groups": ["staff"]}, people).reason == (
        "role-mismatch")
    assert decide_person(mapped, claims, people).reason == "role-mismatch"


def test_email_matches_only_when_verified(
        client: ProviderClient, oidc_provider: OidcProviderHandle) -> None:
    by_email = _provider(oidc_provider, match_by=("email",))
    una = Person("una-1", "supervisor", "employer-1")
    sam = Person("sam-1", "coordinator", "school-a")
    people = _People((una, "", "una@school.test"), (sam, "", "sam@school.test"))
    pending, callback = _sign_in(client, oidc_provider, "una")
    unverified = client.finish_sign_in(pending, callback).claims
    assert unverified["email_verified"] is False
    assert decide_person(by_email, unverified, people).reason == "email-not-verified"
    pending, callback = _sign_in(client, oidc_provider, "sam")
    verified = client.finish_sign_in(pending, callback).claims
    decision = decide_person(by_email, verified, people)
    assert decision.allowed and decision.person == sam and decision.matched_by == "email"
    assert decide_person(by_email, {**verified, "email_verified": "true"}, people).reason == (
        "email-not-verified")
