"""Local accounts and emailed links: password hashes, a sign-in throttle, signed links.

A district without an identity provider signs its people in with local accounts on the
embedded default; employers' supervisors approve hours from a link in an email. Three pieces:

- ``Passwords``: Argon2id (argon2-cffi), the winner of the Password Hashing Competition and
  the first choice of RFC 9106 and OWASP. Defaults are RFC 9106's second recommended option
  (t=3 passes, m=64 MiB, p=4 lanes, 16-byte salt, 32-byte hash), set by
  ``WBL_ARGON2_TIME_COST``/``_MEMORY_KIB``/``_PARALLELISM``. The parameters live in each hash,
  so raising them later upgrades each account at its next successful sign-in
  (``check_needs_rehash``). An unknown account costs the same hash as a known one, so timing
  does not tell which login names exist.
- ``SignInThrottle``: per account, the first ``WBL_SIGN_IN_FREE_FAILURES`` failures are free,
  then each further failure makes the account wait 1 s, 2 s, 4 s ... up to
  ``WBL_SIGN_IN_MAX_DELAY_S`` (exponential back-off, not a lock-out, so an attacker cannot lock
  a learner out for good); per client address, a fixed one-hour window of
  ``WBL_SIGN_IN_FAILURES_PER_CLIENT_PER_HOUR`` failures across all accounts (stops one client
  spraying one password over many accounts). A success clears the account's count.
- ``LinkSigner``: links for password resets and supervisors' approvals, signed with
  itsdangerous (HMAC-SHA512 by default here) under ``WBL_LINK_SIGNING_KEY``, salted by purpose
  so a reset link never opens an approval and the other way round, carrying an expiry and a
  random link id. Single use is the caller's part: it records the link id with the action
  (the approval event carries it; a unique constraint refuses a second use).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, URLSafeSerializer

from infra.key_files import kept_key
from infra.settings import Settings

MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 256
"""NIST SP 800-63B: a length floor and no composition rules; the ceiling only stops a
megabyte "password" from being hashed. 12, not 8: these accounts guard minors' records."""


@dataclass(frozen=True)
class PasswordCheck:
    ok: bool
    new_hash: str | None = None
    """Set when the stored hash used older parameters: store this one instead."""


class Passwords:
    """Argon2id hashing with the configured parameters."""

    def __init__(self, *, time_cost: int = 3, memory_kib: int = 65536,
                 parallelism: int = 4) -> None:
        self.hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib,
                                     parallelism=parallelism, hash_len=32, salt_len=16,
                                     type=Type.ID)
        self._dummy = self.hasher.hash(secrets.token_urlsafe(16))

    @classmethod
    def from_settings(cls, settings: Settings) -> Passwords:
        return cls(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib,
                   parallelism=settings.argon2_parallelism)

    @staticmethod
    def acceptable(password: str) -> str | None:
        """Why a new password is refused, or None. Length only (NIST SP 800-63B)."""
        if len(password) < MIN_PASSWORD_CHARS:
            return f"at least {MIN_PASSWORD_CHARS} characters"
        if len(password) > MAX_PASSWORD_CHARS:
            return f"at most {MAX_PASSWORD_CHARS} characters"
        return None

    def hash(self, password: str) -> str:
        reason = self.acceptable(password)
        if reason is not None:
            raise ValueError(f"a password needs {reason}")
        return self.hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> PasswordCheck:
        """Check ``password`` against ``stored`` (None: no such account, checked against a
        dummy hash so the answer takes as long). A match with outdated parameters returns
        the new hash to store."""
        if len(password) > MAX_PASSWORD_CHARS:
            return PasswordCheck(False)
        try:
            self.hasher.verify(stored or self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return PasswordCheck(False)
        if stored is None:
            return PasswordCheck(False)
        if self.hasher.check_needs_rehash(stored):
            return PasswordCheck(True, self.hasher.hash(password))
        return PasswordCheck(True)


class SignInThrottle:
    """Failed sign-ins per account (exponential back-off) and per client (fixed window).

    Kept in the process's memory: one ``wbl run`` serves the embedded default; several API
    processes would each keep their own count (documented in decision 049)."""

    CLIENT_WINDOW_S = 3600.0

    def __init__(self, *, free_failures: int = 5, max_delay_s: float = 900.0,
                 client_failures_per_hour: int = 100,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.free_failures = free_failures
        self.max_delay_s = max_delay_s
        self.client_limit = client_failures_per_hour
        self._clock = clock
        self._accounts: dict[str, tuple[int, float]] = {}
        self._clients: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> SignInThrottle:
        return cls(free_failures=settings.sign_in_free_failures,
                   max_delay_s=settings.sign_in_max_delay_s,
                   client_failures_per_hour=settings.sign_in_failures_per_client_per_hour)

    @staticmethod
    def _account_key(account: str) -> str:
        # Hashed so the table holds no login names; case-folded so "Lena" is "lena".
        return hashlib.sha256(account.strip().casefold().encode()).hexdigest()

    def _delay(self, failures: int) -> float:
        over = failures - self.free_failures
        return 0.0 if over < 0 else min(float(2 ** min(over, 30)), self.max_delay_s)

    def _client_failures(self, client: str, now: float) -> deque[float]:
        failures = self._clients.setdefault(client, deque())
        while failures and now - failures[0] >= self.CLIENT_WINDOW_S:
            failures.popleft()
        return failures

    def retry_after(self, account: str, client: str) -> float | None:
        """Seconds before this account may try again from this client; None: go ahead."""
        with self._lock:
            now = self._clock()
            waits: list[float] = []
            failures, last = self._accounts.get(self._account_key(account), (0, now))
            wait = last + self._delay(failures) - now
            if wait > 0:
                waits.append(wait)
            recent = self._client_failures(client, now)
            if len(recent) >= self.client_limit:
                waits.append(recent[0] + self.CLIENT_WINDOW_S - now)
            return max(waits) if waits else None

    def failed(self, account: str, client: str) -> None:
        with self._lock:
            now = self._clock()
            key = self._account_key(account)
            failures, _ = self._accounts.get(key, (0, now))
            self._accounts[key] = (failures + 1, now)
            self._client_failures(client, now).append(now)

    def succeeded(self, account: str) -> None:
        with self._lock:
            self._accounts.pop(self._account_key(account), None)


# Signed links ---------------------------------------------------------------------------

PURPOSES = frozenset({"password-reset", "approval"})
MIN_LINK_KEY_BYTES = 32


class LinkError(Exception):
    """A link refused; ``code`` is ``link-invalid`` or ``link-expired`` (safe to show)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class OpenedLink:
    link_id: str
    purpose: str
    data: Mapping[str, Any]
    expires_at: int


def link_signing_key(settings: Settings) -> bytes:
    """``WBL_LINK_SIGNING_KEY``, or a random key kept in the data folder (embedded only)."""
    if settings.link_signing_key is not None:
        key = settings.link_signing_key.get_secret_value().encode()
        if len(key) < MIN_LINK_KEY_BYTES:
            raise ValueError(f"WBL_LINK_SIGNING_KEY needs {MIN_LINK_KEY_BYTES}+ bytes")
        return key
    return kept_key(settings.data_dir / "link-signing.key", secrets.token_urlsafe(48).encode())


class LinkSigner:
    """Signs and opens links' tokens. ``retired_keys`` still open links signed before a key
    rotation (itsdangerous tries the newest key first)."""

    def __init__(self, key: bytes, *, retired_keys: tuple[bytes, ...] = (),
                 clock: Callable[[], float] = time.time) -> None:
        if len(key) < MIN_LINK_KEY_BYTES:
            raise ValueError(f"a link key needs {MIN_LINK_KEY_BYTES}+ bytes")
        self._keys = [*retired_keys, key]
        self._clock = clock

    def _serializer(self, purpose: str) -> URLSafeSerializer:
        if purpose not in PURPOSES:
            raise ValueError(f"unknown link purpose {purpose!r}")
        return URLSafeSerializer(self._keys, salt=f"wbl-ledger/{purpose}",
                                 signer_kwargs={"digest_method": hashlib.sha512})

    def issue(self, purpose: str, data: Mapping[str, Any], ttl_s: float) -> tuple[str, str]:
        """A token for a link, and its link id (to record when the link is used)."""
        link_id = secrets.token_urlsafe(16)
        expires = int(self._clock() + ttl_s)
        token = self._serializer(purpose).dumps({"lid": link_id, "exp": expires,
                                                 "d": dict(data)})
        return str(token), link_id

    def open(self, purpose: str, token: str) -> OpenedLink:
        """The link's content when the signature holds (for this purpose) and it has not
        expired. Whether it was used already is the caller's check, by ``link_id``."""
        try:
            payload = self._serializer(purpose).loads(token)
        except BadSignature:
            raise LinkError("link-invalid") from None
        if (not isinstance(payload, dict) or not isinstance(payload.get("lid"), str)
                or not isinstance(payload.get("exp"), int)):
            raise LinkError("link-invalid")
        if self._clock() >= payload["exp"]:
            raise LinkError("link-expired")
        return OpenedLink(link_id=payload["lid"], purpose=purpose,
                          data=payload.get("d") or {}, expires_at=payload["exp"])
