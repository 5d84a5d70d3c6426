"""Local accounts (a district without an identity provider) and the audit record of
sign-ins.

An account links a login name to a registered person (``POST /organisations/{org}/people``)
and keeps an Argon2id hash of the password (``infra/passwords.py``). The login is kept only
as a keyed hash (HMAC under the identity key, like provider subjects and emails), so the
table lists no one's login. ``wbl users create`` makes one; a forgotten password is reset by
a signed single-use link (``wbl users reset-link`` prints one; the sign-in page mails one to
the address registered for the person, when the address given matches it).

``SignInRecords`` writes one row per sign-in, refusal, sign-out, ended session and link
use: pseudonymous person ids and short reason codes only, and the client address as a keyed
hash prefix, never a login, a claim, an address or a token.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from infra.api_tables import local_accounts, people, sign_in_records, used_links
from infra.passwords import Passwords


class AccountError(ValueError):
    """An account refused; ``code`` names the rule."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def login_hash(key: bytes, login: str) -> str:
    return hmac.new(key, f"login\x00{login.strip().casefold()}".encode(),
                    hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Account:
    person_id: str
    role: str
    organisation_id: str


class LocalAccounts:
    def __init__(self, engine: Engine, key: bytes, passwords: Passwords) -> None:
        self.engine = engine
        self.key = key
        self.passwords = passwords

    def create(self, *, person_id: str, login: str, password: str) -> None:
        """One account per person and per login; the person must be registered."""
        if not login.strip():
            raise AccountError("login-required", "A local account needs a login name.")
        reason = self.passwords.acceptable(password)
        if reason is not None:
            raise AccountError("password-too-weak", f"A password needs {reason}.")
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            if conn.execute(select(people.c.id).where(people.c.id == person_id)).first() is None:
                raise AccountError("unknown-person", f"No person {person_id} is registered; "
                                   "register them first (POST /organisations/{org}/people).")
            try:
                conn.execute(insert(local_accounts).values(
                    login_hash=login_hash(self.key, login), person_id=person_id,
                    password_hash=self.passwords.hash(password), created_at=now,
                    password_changed_at=now))
            except IntegrityError:
                raise AccountError("account-exists", "That login, or an account for that "
                                   "person, exists already.") from None

    def check(self, login: str, password: str) -> Account | None:
        """The account's person when the password is right (None otherwise, after the same
        Argon2 work for an unknown login); an outdated hash is upgraded here."""
        digest = login_hash(self.key, login)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(local_accounts.c.password_hash, people.c.id, people.c.role,
                       people.c.organisation_id)
                .join(people, people.c.id == local_accounts.c.person_id)
                .where(local_accounts.c.login_hash == digest)).first()
        result = self.passwords.verify(row[0] if row else None, password)
        if not result.ok or row is None:
            return None
        if result.new_hash is not None:
            with self.engine.begin() as conn:
                conn.execute(update(local_accounts)
                             .where(local_accounts.c.login_hash == digest)
                             .values(password_hash=result.new_hash))
        return Account(person_id=row[1], role=row[2], organisation_id=row[3])

    def person_of(self, login: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(local_accounts.c.person_id).where(
                local_accounts.c.login_hash == login_hash(self.key, login))).first()
        return None if row is None else str(row[0])

    def set_password(self, person_id: str, password: str, *, link_id: str) -> None:
        """Set a new password through a reset link, used once (the link id is recorded in
        the same transaction; a second use fails on its primary key)."""
        reason = self.passwords.acceptable(password)
        if reason is not None:
            raise AccountError("password-too-weak", f"A password needs {reason}.")
        new_hash = self.passwords.hash(password)
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            try:
                conn.execute(insert(used_links).values(link_id=link_id,
                                                       purpose="password-reset", used_at=now))
            except IntegrityError:
                raise AccountError("link-used", "This link was used already; ask for a new "
                                   "one.") from None
            changed = conn.execute(update(local_accounts)
                                   .where(local_accounts.c.person_id == person_id)
                                   .values(password_hash=new_hash,
                                           password_changed_at=now)).rowcount
            if not changed:
                raise AccountError("unknown-account", "No local account for this link.")


def link_used(engine: Engine, link_id: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(used_links.c.link_id)
                            .where(used_links.c.link_id == link_id)).first() is not None


class SignInRecords:
    def __init__(self, engine: Engine, key: bytes) -> None:
        self.engine = engine
        self.key = key

    def client(self, address: str | None) -> str | None:
        if not address:
            return None
        return hmac.new(self.key, f"client\x00{address}".encode(),
                        hashlib.sha256).hexdigest()[:16]

    def record(self, kind: str, *, method: str, person_id: str | None = None,
               reason: str | None = None, client: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(sign_in_records).values(
                at=datetime.now(UTC), kind=kind, method=method, person_id=person_id,
                reason=reason, client=self.client(client)))

    def recent(self, limit: int = 100, offset: int = 0,
               person_id: str | None = None) -> list[dict[str, object]]:
        query = select(sign_in_records).order_by(sign_in_records.c.id.desc())
        if person_id is not None:
            query = query.where(sign_in_records.c.person_id == person_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query.limit(limit).offset(offset)).mappings()]
