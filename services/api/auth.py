"""Authentication: a bearer token says who acts, in which role, for which organisation.

Tokens are JWTs signed with HS256 (PyJWT) under ``WBL_JWT_SECRET``. A token carries
``sub`` (the actor id: a pseudonymous id, never a name), ``role``, ``org`` (the
organisation it acts for, absent for admins and state-wide auditors), ``iss``/``aud``,
``iat`` and ``exp``. Nothing else is trusted: the actor recorded in every event is the
one built here, never one taken from a request body. See
docs/decisions/030-bearer-tokens-jwt-hs256.md.

With no ``WBL_JWT_SECRET`` (the embedded single-user default), the key is a random one
kept in ``WBL_DATA_DIR/jwt-secret`` with mode 0600, made on first use; ``wbl run`` and
``wbl tokens create`` both read it there, so a token made on the laptop works on it.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request

from domain.actor import Actor, Role
from infra.key_files import kept_key
from infra.settings import Settings
from services.api.errors import ProblemError
from services.api.identities import ProviderTokens
from services.api.roles import TOKEN_ROLES as TOKEN_ROLES  # re-exported: kept apart, decision 075

ORGANISATION_ROLES = frozenset({Role.COORDINATOR, Role.SPONSOR, Role.GUARDIAN})
"""Roles that only make sense within one organisation: their tokens must name it."""

ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class TokenKey:
    secret: bytes
    issuer: str


def _secret_file(settings: Settings) -> Path:
    return settings.data_dir / "jwt-secret"


def token_key(settings: Settings) -> TokenKey:
    """The signing key: ``WBL_JWT_SECRET`` or the local key file (made if missing)."""
    if settings.jwt_secret is not None:
        secret = settings.jwt_secret.get_secret_value().encode()
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"WBL_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long.")
        return TokenKey(secret, settings.jwt_issuer)
    secret = kept_key(_secret_file(settings), secrets.token_urlsafe(48).encode())
    return TokenKey(secret, settings.jwt_issuer)


def issue_token(key: TokenKey, *, actor_id: str, role: Role | str,
                organisation_id: str | None = None, ttl_seconds: int = 3600,
                now: float | None = None) -> str:
    """A signed token for one actor. Refuses combinations the API would refuse anyway."""
    parsed = Role(role)
    if parsed not in TOKEN_ROLES:
        raise ValueError(f"{role!r} is not a role a token can carry.")
    if not actor_id.strip():
        raise ValueError("A token names its actor.")
    if parsed in ORGANISATION_ROLES and not organisation_id:
        raise ValueError(f"A {parsed.value} token names its organisation.")
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "sub": actor_id, "role": parsed.value, "iss": key.issuer, "aud": key.issuer,
        "iat": issued, "exp": issued + ttl_seconds,
    }
    if organisation_id:
        claims["org"] = organisation_id
    return jwt.encode(claims, key.secret, algorithm=ALGORITHM)


def _unauthorised(detail: str, code: str = "unauthenticated") -> ProblemError:
    return ProblemError(401, code, "Authentication required", detail,
                        headers={"WWW-Authenticate": 'Bearer realm="wbl-ledger"'})


LEEWAY_S = 30
"""Clock skew allowed on ``exp`` and ``iat``."""

VERIFIED_TOKENS_KEPT = 4096
"""Tokens whose signature and claims this process has checked, kept until they expire."""
_verified: dict[tuple[TokenKey, str], tuple[Actor, float]] = {}


def actor_from_token(key: TokenKey, token: str) -> Actor:
    """Check signature, issuer, audience and expiry; map the claims to an ``Actor``.

    A token already checked with this key is not checked again until it expires: its
    bytes, signature included, are the ones verified, and expiry is compared on every use.
    Verifying an HS256 token costs about 0.4 ms of CPU per request with PyJWT, the largest
    single cost of authentication (decision 064). The memory is bounded
    (``VERIFIED_TOKENS_KEPT``) and per key, so a new ``WBL_JWT_SECRET`` starts afresh."""
    known = _verified.get((key, token))
    if known is not None and time.time() <= known[1] + LEEWAY_S:
        return known[0]
    actor, expires = _checked(key, token)
    if len(_verified) >= VERIFIED_TOKENS_KEPT:
        _verified.clear()
    _verified[(key, token)] = (actor, expires)
    return actor


def _checked(key: TokenKey, token: str) -> tuple[Actor, float]:
    try:
        claims = jwt.decode(token, key.secret, algorithms=[ALGORITHM], audience=key.issuer,
                            issuer=key.issuer, options={"require": ["sub", "exp", "iat"]},
                            leeway=LEEWAY_S)
    except jwt.ExpiredSignatureError:
        raise _unauthorised("The token has expired; ask for a new one.",
                            "token-expired") from None
    except jwt.PyJWTError:
        raise _unauthorised("The bearer token is not valid.", "invalid-token") from None
    try:
        role = Role(str(claims.get("role")))
    except ValueError:
        raise _unauthorised("The token's role is unknown.", "invalid-token") from None
    subject, organisation = claims.get("sub"), claims.get("org")
    if (role not in TOKEN_ROLES or not isinstance(subject, str) or not subject
            or (organisation is not None and not isinstance(organisation, str))
            or (role in ORGANISATION_ROLES and not organisation)):
        raise _unauthorised("The token's claims are not valid.", "invalid-token")
    return Actor(id=subject, role=role, organisation_id=organisation), float(claims["exp"])


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class FailedAuthentications:
    """Failed authentications per client in the last minute; past the limit, the client gets
    429 until the minute has passed. Tokens are issued offline, so there is no login to guess
    at; this stops a client hammering the API with made-up or stolen-and-expired tokens."""

    WINDOW_S = 60.0

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        while failures and now - failures[0] > self.WINDOW_S:
            failures.popleft()
        return failures

    def retry_after(self, client: str) -> int | None:
        now = time.monotonic()
        with self._lock:
            failures = self._recent(client, now)
            if len(failures) < self.limit:
                return None
            return max(int(self.WINDOW_S - (now - failures[0])) + 1, 1)

    def failed(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(client, now).append(now)
            if len(self._failures) > 10_000:  # bounded memory: forget the quietest clients
                for stale in [c for c, f in self._failures.items() if not f][:5_000]:
                    del self._failures[stale]


def authenticate(request: Request) -> Actor:
    """The dependency every protected route has: 401 problem+json without a valid token.

    The actor is cached on the request so the authorisation check, the idempotency store
    and the route all see the same one."""
    cached = getattr(request.state, "actor", None)
    if isinstance(cached, Actor):
        return cached
    throttle: FailedAuthentications = request.app.state.failed_authentications
    client = request.client.host if request.client else "-"
    wait = throttle.retry_after(client)
    if wait is not None:
        raise ProblemError(429, "too-many-failed-authentications",
                           "Too many failed authentications",
                           f"Too many requests without a valid token from this client; try "
                           f"again in {wait} s.", headers={"Retry-After": str(wait)})
    try:
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            raise _unauthorised("Send `Authorization: Bearer <token>` (`wbl tokens create` "
                                "makes one for local use).")
        providers: ProviderTokens | None = getattr(request.app.state, "provider_tokens", None)
        if providers is not None and providers.issued_by_a_provider(token):
            # a district's identity provider signed it (decision 051)
            actor = providers.actor(token)
        else:
            key: TokenKey = request.app.state.token_key
            actor = actor_from_token(key, token)
    except ProblemError:
        throttle.failed(client)
        raise
    request.state.actor = actor
    return actor


AuthenticatedActor = Annotated[Actor, Depends(authenticate)]
