"""Sessions for the web pages: a random cookie, a server-side row, CSRF tokens.

The cookie holds 32 random bytes and nothing else; the table keeps their SHA-256, so a copy
of the table opens no session. The cookie is ``HttpOnly`` (no script reads it), ``SameSite=
Lax`` (not sent on another site's form posts) and ``Secure`` (``WBL_COOKIE_SECURE``; browsers
keep Secure cookies for http://127.0.0.1 and localhost too). Each session has its own CSRF
token, put in every form and checked on every POST (the synchroniser-token pattern; OWASP's
first choice). Forms shown before sign-in use a signed double-submit token instead, tied to
a pre-session cookie, so nobody can sign a victim in to the attacker's account either.

A session ends on sign-out, after ``WBL_SESSION_IDLE_MINUTES`` without a request, after
``WBL_SESSION_ABSOLUTE_HOURS`` however busy, and at the next request after its person was
deactivated or given another role (the row remembers the role signed in with; the registry
is read on each request). Ended rows stay, with the reason, for the audit record.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, select, update

from domain.actor import Actor, Role
from infra.api_tables import deactivated_people, people, web_sessions

SESSION_COOKIE = "wbl_session"
PRE_SESSION_COOKIE = "wbl_pre"
TOUCH_EVERY = timedelta(seconds=60)
"""``last_seen_at`` is written at most this often, not on every request."""


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    id_hash: str
    person_id: str
    role: Role
    organisation_id: str
    method: str
    csrf_token: str
    created_at: datetime

    @property
    def actor(self) -> Actor:
        organisation = None if self.role in (Role.ADMIN, Role.STATE_AUDITOR) else (
            self.organisation_id)
        return Actor(id=self.person_id, role=self.role, organisation_id=organisation)


@dataclass(frozen=True)
class Ended:
    """Why a cookie no longer opens a session (``idle``, ``expired``, ``deactivated``,
    ``role-changed``, ``signed-out``, ``unknown``)."""

    reason: str
    person_id: str | None = None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Sessions:
    def __init__(self, engine: Engine, *, idle: timedelta, absolute: timedelta) -> None:
        self.engine = engine
        self.idle = idle
        self.absolute = absolute

    def begin(self, *, person_id: str, role: str, organisation_id: str, method: str,
              now: datetime | None = None) -> tuple[str, Session]:
        """A new session; returns the cookie value (shown once) and the session."""
        now = now or datetime.now(UTC)
        cookie = secrets.token_urlsafe(32)
        row = {"id_hash": _digest(cookie), "person_id": person_id, "role": role,
               "organisation_id": organisation_id, "method": method,
               "csrf_token": secrets.token_urlsafe(32), "created_at": now,
               "last_seen_at": now}
        with self.engine.begin() as conn:
            conn.execute(insert(web_sessions).values(**row))
        return cookie, Session(str(row["id_hash"]), person_id, Role(role), organisation_id,
                               method, str(row["csrf_token"]), now)

    def open(self, cookie: str | None, now: datetime | None = None) -> Session | Ended:
        """The live session this cookie opens, or why it opens none (ending it if it just
        ran out, so the audit record says when and why)."""
        if not cookie:
            return Ended("unknown")
        now = now or datetime.now(UTC)
        id_hash = _digest(cookie)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(web_sessions, people.c.role.label("registered_role"),
                       deactivated_people.c.person_id.label("deactivated"))
                .outerjoin(people, people.c.id == web_sessions.c.person_id)
                .outerjoin(deactivated_people,
                           deactivated_people.c.person_id == web_sessions.c.person_id)
                .where(web_sessions.c.id_hash == id_hash)).mappings().first()
        if row is None:
            return Ended("unknown")
        if row["ended_at"] is not None:
            return Ended(row["end_reason"] or "ended", row["person_id"])
        reason = None
        if row["deactivated"] is not None or row["registered_role"] is None:
            reason = "deactivated"
        elif row["registered_role"] != row["role"]:
            reason = "role-changed"
        elif now - _aware(row["created_at"]) >= self.absolute:
            reason = "expired"
        elif now - _aware(row["last_seen_at"]) >= self.idle:
            reason = "idle"
        if reason is not None:
            self.end(id_hash, reason, now)
            return Ended(reason, row["person_id"])
        if now - _aware(row["last_seen_at"]) >= TOUCH_EVERY:
            with self.engine.begin() as conn:
                conn.execute(update(web_sessions).where(web_sessions.c.id_hash == id_hash)
                             .values(last_seen_at=now))
        return Session(id_hash, row["person_id"], Role(row["role"]), row["organisation_id"],
                       row["method"], row["csrf_token"], _aware(row["created_at"]))

    def end(self, id_hash: str, reason: str, now: datetime | None = None) -> bool:
        """End one session; False when it had ended already."""
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(web_sessions).where(web_sessions.c.id_hash == id_hash,
                                           web_sessions.c.ended_at.is_(None))
                .values(ended_at=now or datetime.now(UTC), end_reason=reason)).rowcount
        return bool(changed)

    def end_all_of(self, person_id: str, reason: str) -> int:
        """End every live session of a person (deactivated, role changed, password reset)."""
        with self.engine.begin() as conn:
            return int(conn.execute(
                update(web_sessions).where(web_sessions.c.person_id == person_id,
                                           web_sessions.c.ended_at.is_(None))
                .values(ended_at=datetime.now(UTC), end_reason=reason)).rowcount)


def csrf_matches(expected: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(expected, presented or "")


class PreSessionTokens:
    """CSRF for forms shown before sign-in (the sign-in and password-reset forms): the
    token is an HMAC of the pre-session cookie under the deployment's link key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def token(self, pre_session: str) -> str:
        return hmac.new(self._key, f"pre-session\x00{pre_session}".encode(),
                        hashlib.sha256).hexdigest()

    def matches(self, pre_session: str | None, presented: str | None) -> bool:
        if not pre_session or not presented:
            return False
        return hmac.compare_digest(self.token(pre_session), presented)
