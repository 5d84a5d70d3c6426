"""OpenID Connect relying party: how people sign in through their district's provider, and
how the API accepts that provider's access tokens.

Schools already run an identity provider (Google Workspace, Entra ID, Clever, ClassLink);
learners, supervisors and coordinators sign in there, never with a password the ledger keeps.
This module holds the protocol pieces, with Authlib for the OAuth 2.0 client (authorization
URL, PKCE, code exchange, ID-token claim rules) and joserfc for signatures and keys:

- ``ProviderClient.begin_sign_in`` makes the authorization URL with ``state``, ``nonce`` and
  an S256 ``code_challenge``; the caller keeps the returned ``PendingSignIn`` (in the
  session) until the browser comes back.
- ``ProviderClient.finish_sign_in`` checks the callback (``state`` compared in constant time,
  the RFC 9207 ``iss`` parameter when present), exchanges the code with the verifier, and
  validates the ID token: signature against the provider's JWKS, ``iss``, ``aud``/``azp``,
  ``exp``, ``iat`` and ``nonce``.
- ``ProviderClient.verify_access_token`` verifies an access token presented to the API:
  algorithm on the provider's allow-list (asymmetric only, so ``alg: none`` and an HS256
  token "signed" with the provider's public key are refused before any key is touched),
  key from the JWKS by ``kid`` and of the algorithm's type, then ``iss``, ``aud``, ``exp``.
- ``JwksCache`` keeps the provider's keys for a TTL and fetches them again once when a token
  names an unknown ``kid`` (the provider rotated its keys), at most once per
  ``min_refetch_s`` so made-up key ids cannot make the ledger hammer the provider.
- ``decide_person`` maps verified claims to one of the ledger's registered people, by
  subject or by *verified* email only, checks the provider's organisations and role mapping,
  and refuses anyone unknown: a first sign-in never creates an account.

Nothing here logs a token, a code, a secret or a claim value: errors carry a short code
(``wrong-issuer``, ``token-expired`` ...) safe for logs and audit records.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
)
from joserfc.jwk import JWKRegistry, Key

from domain.actor import Actor, Role
from infra.settings import OidcProviderSettings, Settings

KEY_TYPES: dict[str, str] = {
    "RS256": "RSA", "RS384": "RSA", "RS512": "RSA",
    "PS256": "RSA", "PS384": "RSA", "PS512": "RSA",
    "ES256": "EC", "ES384": "EC", "ES512": "EC",
    "EdDSA": "OKP", "Ed25519": "OKP",
}
"""The key type each accepted algorithm must be verified with. Only asymmetric algorithms
appear: a provider signs with a private key the ledger never holds, so an ``HS*`` token
claiming to come from it is either misconfigured or an algorithm-confusion attack."""


class IdentityError(Exception):
    """A sign-in or token refused. ``code`` is short and safe to log; no token content."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class OidcProvider:
    """One configured provider (see ``OidcProviderSettings`` for each field's meaning)."""

    name: str
    issuer: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    api_audience: str | None = None
    scopes: tuple[str, ...] = ("openid", "email")
    algorithms: tuple[str, ...] = ("RS256", "PS256", "ES256", "EdDSA")
    match_by: tuple[Literal["subject", "email"], ...] = ("subject",)
    organisations: tuple[str, ...] = ()
    role_claim: str | None = None
    role_map: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [a for a in self.algorithms if a not in KEY_TYPES]
        if unknown:
            raise ValueError(f"algorithms not accepted from a provider: {unknown}")

    @classmethod
    def from_settings(cls, item: OidcProviderSettings) -> OidcProvider:
        secret = item.client_secret.get_secret_value() if item.client_secret else None
        return cls(name=item.name, issuer=item.issuer, client_id=item.client_id,
                   client_secret=secret, api_audience=item.api_audience,
                   scopes=tuple(item.scopes), algorithms=tuple(item.algorithms),
                   match_by=tuple(item.match_by), organisations=tuple(item.organisations),
                   role_claim=item.role_claim, role_map=dict(item.role_map))


def providers_from_settings(settings: Settings) -> list[OidcProvider]:
    """Every provider in ``WBL_OIDC_PROVIDERS``; names and issuers must be unique, since the
    issuer of an access token is how the API picks the provider that verifies it."""
    providers = [OidcProvider.from_settings(item) for item in settings.oidc_providers]
    for attribute in ("name", "issuer"):
        values = [getattr(p, attribute) for p in providers]
        if len(values) != len(set(values)):
            raise ValueError(f"two providers share a {attribute}")
    return providers


@dataclass(frozen=True)
class Discovery:
    """The parts of the provider's discovery document the ledger uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


def fetch_discovery(http: requests.Session, issuer: str, timeout_s: float = 5.0) -> Discovery:
    """``{issuer}/.well-known/openid-configuration``, whose ``issuer`` must be the configured
    one exactly (OpenID Connect Discovery 1.0, section 4.3): a document naming another
    issuer could point the ledger at someone else's keys."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = http.get(url, timeout=timeout_s, allow_redirects=False)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as error:
        raise IdentityError("discovery-failed",
                            f"no discovery document at {url} ({type(error).__name__})") from None
    if not isinstance(document, dict) or document.get("issuer") != issuer:
        raise IdentityError("wrong-issuer", "the discovery document names another issuer")
    try:
        return Discovery(issuer=issuer,
                         authorization_endpoint=str(document["authorization_endpoint"]),
                         token_endpoint=str(document["token_endpoint"]),
                         jwks_uri=str(document["jwks_uri"]))
    except KeyError as missing:
        raise IdentityError("discovery-failed",
                            f"the discovery document lacks {missing}") from None


class JwksCache:
    """A provider's signing keys by ``kid``, kept ``ttl_s`` seconds.

    A ``kid`` not in the cache triggers one fetch (the provider has rotated to a new key),
    but no more than one per ``min_refetch_s``: otherwise every made-up ``kid`` would cost
    a request to the provider. Keys marked ``use: enc`` are left out."""

    def __init__(self, fetch: Callable[[], Mapping[str, Any]], *, ttl_s: float,
                 min_refetch_s: float = 10.0, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self._fetch = fetch
        self.ttl_s = ttl_s
        self.min_refetch_s = min_refetch_s
        self._clock = clock
        self._keys: dict[str | None, Key] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0

    def _refresh(self) -> None:
        document = self._fetch()
        keys: dict[str | None, Key] = {}
        for data in document.get("keys", []):
            if not isinstance(data, dict) or data.get("use", "sig") != "sig":
                continue
            try:
                key = JWKRegistry.import_key(data)
            except (JoseError, ValueError, TypeError):
                continue  # RFC 7517 section 5: ignore a key that cannot be understood
            keys[data.get("kid")] = key
        self._keys = keys
        self._fetched_at = self._clock()
        self.fetches += 1

    def key(self, kid: str | None) -> Key:
        with self._lock:
            now = self._clock()
            age = None if self._fetched_at is None else now - self._fetched_at
            stale = age is None or age >= self.ttl_s
            rotated = age is not None and kid not in self._keys and age >= self.min_refetch_s
            if stale or rotated:
                self._refresh()
            if kid is None and len(self._keys) == 1:
                return next(iter(self._keys.values()))
            if kid not in self._keys:
                raise IdentityError("unknown-key", "the token names a key the provider does "
                                    "not publish")
            return self._keys[kid]


@dataclass(frozen=True)
class PendingSignIn:
    """What the caller keeps (server side, in the session) between redirect and callback.
    Never sent to the browser except ``state`` inside the authorization URL."""

    provider: str
    authorization_url: str
    state: str
    nonce: str
    code_verifier: str = field(repr=False)
    redirect_uri: str
    created_at: float


@dataclass(frozen=True)
class SignedIn:
    """A completed sign-in: the ID token's verified claims, and the tokens."""

    provider: str
    claims: Mapping[str, Any]
    id_token: str = field(repr=False)
    access_token: str | None = field(default=None, repr=False)


class ProviderClient:
    """Everything the ledger does with one provider, over one ``requests.Session``
    (Authlib's synchronous client is built on requests)."""

    def __init__(self, provider: OidcProvider, *, http: requests.Session | None = None,
                 cache_ttl_s: float = 600.0, leeway_s: int = 30, timeout_s: float = 5.0,
                 min_refetch_s: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self.provider = provider
        self.http = http or requests.Session()
        self.timeout_s = timeout_s
        self.cache_ttl_s = cache_ttl_s
        self.leeway_s = leeway_s
        self._clock = clock
        self._discovery: Discovery | None = None
        self._discovered_at = 0.0
        self.keys = JwksCache(self._fetch_jwks, ttl_s=cache_ttl_s, min_refetch_s=min_refetch_s)

    @classmethod
    def from_settings(cls, provider: OidcProvider, settings: Settings,
                      http: requests.Session | None = None) -> ProviderClient:
        return cls(provider, http=http, timeout_s=settings.oidc_http_timeout_s,
                   cache_ttl_s=settings.oidc_jwks_cache_seconds,
                   leeway_s=settings.oidc_clock_leeway_s)

    def discovery(self) -> Discovery:
        if self._discovery is None or time.monotonic() - self._discovered_at > self.cache_ttl_s:
            self._discovery = fetch_discovery(self.http, self.provider.issuer, self.timeout_s)
            self._discovered_at = time.monotonic()
        return self._discovery

    def _fetch_jwks(self) -> Mapping[str, Any]:
        try:
            response = self.http.get(self.discovery().jwks_uri, timeout=self.timeout_s,
                                     allow_redirects=False)
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as error:
            raise IdentityError("keys-unavailable", f"the provider's keys could not be "
                                f"fetched ({type(error).__name__})") from None
        if not isinstance(document, dict):
            raise IdentityError("keys-unavailable", "the provider's JWKS is not an object")
        return document

    def _oauth_client(self, redirect_uri: str) -> OAuth2Session:
        return OAuth2Session(client_id=self.provider.client_id,
                            client_secret=self.provider.client_secret,
                            scope=" ".join(self.provider.scopes), redirect_uri=redirect_uri,
                            code_challenge_method="S256",
                            token_endpoint_auth_method="client_secret_basic"
                            if self.provider.client_secret else "none")

    def begin_sign_in(self, redirect_uri: str, **extra: str) -> PendingSignIn:
        """The authorization URL (code flow, S256 PKCE, fresh state and nonce) and what to
        keep until the callback. ``extra`` adds parameters such as ``login_hint``."""
        verifier = secrets.token_urlsafe(64)
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._oauth_client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                self.discovery().authorization_endpoint, state=state, nonce=nonce,
                code_verifier=verifier, **extra)
        return PendingSignIn(provider=self.provider.name, authorization_url=url, state=state,
                             nonce=nonce, code_verifier=verifier, redirect_uri=redirect_uri,
                             created_at=self._clock())

    def finish_sign_in(self, pending: PendingSignIn, callback: Mapping[str, str],
                       *, max_age_s: float = 600.0) -> SignedIn:
        """Check the callback's parameters, exchange the code, validate the ID token.

        ``state`` must be the one sent (constant-time comparison): anything else is a forged
        or replayed callback (CSRF on the sign-in). A pending sign-in older than
        ``max_age_s`` is refused. The provider itself refuses a code used twice."""
        if callback.get("error"):
            raise IdentityError("provider-refused", "the provider refused the sign-in")
        state = callback.get("state") or ""
        if not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise IdentityError("state-mismatch", "the sign-in's state does not match")
        if self._clock() - pending.created_at > max_age_s:
            raise IdentityError("sign-in-expired", "the sign-in took too long; start again")
        issuer = callback.get("iss")
        if issuer is not None and issuer != self.provider.issuer:
            raise IdentityError("wrong-issuer", "the callback names another issuer (RFC 9207)")
        code = callback.get("code")
        if not code:
            raise IdentityError("no-code", "the callback carries no authorization code")
        token = self.exchange_code(pending, code)
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise IdentityError("no-id-token", "the provider returned no ID token")
        claims = self.validate_id_token(id_token, nonce=pending.nonce)
        access = token.get("access_token")
        return SignedIn(provider=self.provider.name, claims=claims, id_token=id_token,
                        access_token=access if isinstance(access, str) else None)

    def exchange_code(self, pending: PendingSignIn, code: str) -> Mapping[str, Any]:
        """The token endpoint's answer for ``code`` and the PKCE verifier."""
        with self._oauth_client(pending.redirect_uri) as client:
            try:
                token = client.fetch_token(self.discovery().token_endpoint, code=code,
                                           code_verifier=pending.code_verifier,
                                           grant_type="authorization_code",
                                           timeout=self.timeout_s)
            except Exception as error:  # authlib OAuthError, requests errors
                code_name = getattr(error, "error", None) or type(error).__name__
                raise IdentityError("code-exchange-failed",
                                    f"the provider refused the code ({code_name})") from None
        return dict(token)

    def _verified(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Signature checks shared by ID and access tokens; returns (header, claims)."""
        try:
            header = dict(jws.extract_compact(token.encode()).headers())
        except (JoseError, ValueError, TypeError):
            raise IdentityError("invalid-token", "not a signed JWT") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self.provider.algorithms:
            raise IdentityError("algorithm-not-allowed",
                                f"algorithm {str(algorithm)[:20]!r} is not accepted")
        kid = header.get("kid")
        key = self.keys.key(kid if isinstance(kid, str) else None)
        if key.key_type != KEY_TYPES[algorithm]:
            raise IdentityError("algorithm-not-allowed",
                                "the algorithm does not fit the provider's key")
        try:
            decoded = jwt.decode(token, key, algorithms=[algorithm])
        except BadSignatureError:
            raise IdentityError("bad-signature", "the signature does not verify") from None
        except (JoseError, ValueError, TypeError):
            raise IdentityError("invalid-token", "the token cannot be decoded") from None
        return dict(decoded.header), dict(decoded.claims)

    @staticmethod
    def _claim_error(error: ClaimError) -> IdentityError:
        if isinstance(error, ExpiredTokenError):
            return IdentityError("token-expired", "the token has expired")
        if isinstance(error, InvalidClaimError) and error.claim == "iss":
            return IdentityError("wrong-issuer", "the token comes from another issuer")
        if isinstance(error, InvalidClaimError) and error.claim in ("aud", "azp"):
            return IdentityError("wrong-audience", "the token is meant for someone else")
        if isinstance(error, InvalidClaimError) and error.claim == "nonce":
            return IdentityError("nonce-mismatch", "the ID token answers another sign-in")
        return IdentityError("invalid-claims", f"claim {error.claim!r} is missing or invalid")

    def validate_id_token(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        """The ID token's claims once signature, ``iss``, ``aud``, ``azp``, ``exp``, ``iat``
        and ``nonce`` hold (OpenID Connect Core 3.1.3.7, through Authlib's CodeIDToken)."""
        if not nonce:
            raise IdentityError("nonce-mismatch", "a sign-in always sends a nonce")
        header, claims = self._verified(id_token)
        checked = CodeIDToken(
            claims, header,
            options={"iss": {"essential": True, "value": self.provider.issuer},
                     "aud": {"essential": True, "value": self.provider.client_id},
                     "nonce": {"essential": True}},
            params={"nonce": nonce, "client_id": self.provider.client_id})
        try:
            checked.validate(now=int(self._clock()), leeway=self.leeway_s)
        except ClaimError as error:
            raise self._claim_error(error) from None
        return dict(checked)

    def verify_access_token(self, token: str) -> dict[str, Any]:
        """The claims of an access token meant for the ledger's API (RFC 9068 JWT profile):
        signature, ``iss``, ``aud`` = the provider's ``api_audience``, ``exp`` and ``sub``."""
        audience = self.provider.api_audience
        if not audience:
            raise IdentityError("wrong-audience",
                                "the API accepts no access token from this provider")
        _, claims = self._verified(token)
        registry = jwt.JWTClaimsRegistry(
            now=int(self._clock()), leeway=self.leeway_s,
            iss={"essential": True, "value": self.provider.issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True}, sub={"essential": True})
        try:
            registry.validate(claims)
        except ClaimError as error:
            raise self._claim_error(error) from None
        return claims

    def close(self) -> None:
        self.http.close()


def token_issuer(token: str) -> str | None:
    """The unverified ``iss`` of a JWT, only to choose which provider verifies it."""
    try:
        claims = json.loads(jws.extract_compact(token.encode()).payload)
    except (JoseError, ValueError, TypeError):
        return None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return issuer if isinstance(issuer, str) else None


# Mapping verified claims to the ledger's people ------------------------------------------


@dataclass(frozen=True)
class Person:
    """A person registered in the ledger (``POST /organisations/{org}/people``)."""

    id: str
    role: str
    organisation_id: str
    active: bool = True
    """False once deactivated (``POST /organisations/{org}/people/{id}/deactivate``)."""


class PeopleDirectory(Protocol):
    """How the caller finds registered people; the ledger's people table behind it."""

    def by_subject(self, provider: str, subject: str) -> Person | None: ...

    def by_email(self, email: str) -> Person | None: ...


@dataclass(frozen=True)
class SignInDecision:
    """Whether these claims may act in the ledger, as whom, and why not otherwise.
    ``reason`` is a short code safe for audit records (no personal data)."""

    allowed: bool
    reason: str
    person: Person | None = None
    matched_by: Literal["subject", "email"] | None = None

    def actor(self) -> Actor:
        if not self.allowed or self.person is None:
            raise IdentityError(self.reason, "this sign-in was refused")
        role = Role(self.person.role)
        organisation = None if role in (Role.ADMIN, Role.STATE_AUDITOR) else (
            self.person.organisation_id)
        return Actor(id=self.person.id, role=role, organisation_id=organisation)


def _refused(reason: str) -> SignInDecision:
    return SignInDecision(allowed=False, reason=reason)


def decide_person(provider: OidcProvider, claims: Mapping[str, Any],
                  people: PeopleDirectory) -> SignInDecision:
    """Find the registered person these *verified* claims belong to, or refuse.

    Matching follows ``provider.match_by`` in order: by the provider's ``sub`` (stable, never
    reassigned), then by email only when ``email_verified`` is exactly ``true``: an
    unverified address at a provider anyone can register with would let a stranger claim a
    learner's record. No match is a refusal: the ledger never creates an account on a first
    sign-in. A provider bound to organisations admits only their people, so a district's
    provider cannot sign in another district's staff; with a role mapping, the role the
    provider states must be the one the person is registered with."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        return _refused("no-subject")
    person: Person | None = None
    matched: Literal["subject", "email"] | None = None
    email_unverified = False
    for way in provider.match_by:
        if way == "subject":
            person = people.by_subject(provider.name, subject)
        else:
            email = claims.get("email")
            if not isinstance(email, str) or not email:
                continue
            if claims.get("email_verified") is not True:
                email_unverified = True
                continue
            person = people.by_email(email.strip().lower())
        if person is not None:
            matched = way
            break
    if person is None:
        return _refused("email-not-verified" if email_unverified else "unknown-person")
    if not person.active:
        return _refused("person-deactivated")
    if provider.organisations and person.organisation_id not in provider.organisations:
        return _refused("organisation-not-allowed")
    if provider.role_claim:
        stated = claims.get(provider.role_claim)
        values = stated if isinstance(stated, list) else [stated]
        mapped = {provider.role_map[v] for v in values
                  if isinstance(v, str) and v in provider.role_map}
        if person.role not in mapped:
            return _refused("role-mismatch")
    return SignInDecision(allowed=True, reason="signed-in", person=person, matched_by=matched)
