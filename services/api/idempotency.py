"""Safe retries: the first answer to an (actor, Idempotency-Key) is the only answer.

An ASGI middleware around every POST that carries ``Idempotency-Key``:

1. it hashes the request (method, path, query, body bytes) and *inserts a pending row*
   for (actor id, key) under a unique constraint, before the command runs. Of two
   concurrent requests with the same key exactly one inserts; the other finds the row;
2. the winner runs the command and stores the response (status, headers, body) in the
   same row; the losers wait for it (polling, up to ``WAIT_S``) and answer it as it was,
   with ``Idempotent-Replayed: true``; nothing new is recorded;
3. the same key with another request is refused (422 ``idempotency-key-reused``); a
   request still running when the wait ends is answered 409
   ``idempotency-request-in-progress`` (retry later, with the same key);
4. a 5xx or a 409 ``concurrent-change`` is not kept: the row is marked ``retry`` and the
   next request with the key runs the route again. A pending row older than
   ``WBL_IDEMPOTENCY_ABANDONED_S`` belongs to a process that died: the next request takes
   it over the same way.

Running the route again never records a command twice: every ledger command the request
runs takes a key derived from (actor, key, request, row id) and the event store records
that key in the same transaction as the command's events (``services/command_keys.py``,
``infra/command_log.py``). A command whose key is already stored answers what was stored.

The rows live in the API's database (``services/api/store.py``); a kept answer older than
``WBL_IDEMPOTENCY_TTL_HOURS`` is forgotten when its key comes back. The actor comes from
the bearer token (checked here with the same key as the routes); without a valid token
the request goes through untouched and the route answers 401.
See docs/decisions/032-idempotency-store.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.api_tables import idempotency
from infra.command_log import forget_commands_before
from services.api.auth import actor_from_token, bearer_token
from services.api.errors import PROBLEM_JSON, ProblemError
from services.ledger.command_keys import keyed_commands

P = ParamSpec("P")
R = TypeVar("R")

HEADER = "Idempotency-Key"
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
WAIT_S = 15.0
POLL_S = 0.02


@dataclass(frozen=True)
class Stored:
    status: int
    headers: list[list[str]]
    body: bytes


@dataclass(frozen=True)
class Claim:
    outcome: str  # "run" | "replay" | "mismatch" | "pending"
    row_id: int | None = None
    stored: Stored | None = None
    taken_over: bool = False
    """The row existed (a retry after a 5xx, or a dead process's key): its commands may
    already be recorded. A fresh row's command keys are new and need no look-up."""


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


_SQLITE_WRITES = threading.Lock()
"""On SQLite, this process's writes to the idempotency table queue here rather than in
SQLite's sleeping busy handler (see ``services/api/deps.py``, ``OneWriterAtATime``)."""


def _serialised(engine: Engine) -> contextlib.AbstractContextManager[object]:
    return _SQLITE_WRITES if engine.dialect.name == "sqlite" else contextlib.nullcontext()


class _FastStatements:
    """The two statements every keyed command runs (the pending row's insert, the answer's
    update), as the driver's own SQL, sent with ``exec_driver_sql``.

    Built with SQLAlchemy Core, each statement was made, cache-keyed and compiled again per
    command: about 1.5 ms of CPU per statement on this machine, against 0.1 ms for the
    database's own work (decision 064). The rare paths (a key seen before, a take-over,
    the purge) keep SQLAlchemy Core. Values go through the column types' own bind
    processors, so what is stored is byte for byte what Core stored.

    On SQLite they run on one connection kept for them (``transaction``): this process's
    writes to the table are taken one at a time anyway (``_SQLITE_WRITES``), and checking a
    connection out of the pool and back cost more than the statement. On PostgreSQL each
    transaction takes a pooled connection, as before."""

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        self.returning = dialect.name == "postgresql"
        self._engine = engine
        self._kept: Connection | None = None

        def processor(column: Any) -> Any:
            bind = column.type.dialect_impl(dialect).bind_processor(dialect)
            return bind if bind is not None else (lambda value: value)

        self._created_at = processor(idempotency.c.created_at)
        self._body = processor(idempotency.c.body)
        names = {"qmark": lambda _: "?", "format": lambda _: "%s",
                 "pyformat": lambda n: f"%({n})s", "named": lambda n: f":{n}",
                 "numeric": None}
        mark = names.get(dialect.paramstyle)
        if mark is None:  # no driver this project uses: Core's path stays correct
            raise NotImplementedError(dialect.paramstyle)
        self._named = dialect.paramstyle in ("pyformat", "named")
        table = idempotency.name
        insert_columns = ("actor_id", "idempotency_key", "request_hash", "state", "created_at")
        self.insert_sql = (
            f"INSERT INTO {table} ({', '.join(insert_columns)}) VALUES "
            f"({', '.join(mark(c) for c in insert_columns)})"
            + (" RETURNING id" if self.returning else ""))
        self.insert_columns = insert_columns
        update_columns = ("status", "headers", "body")
        self.done_sql = (
            f"UPDATE {table} SET state = 'done', "
            + ", ".join(f"{c} = {mark(c)}" for c in update_columns)
            + f" WHERE id = {mark('id')}")
        self.done_columns = (*update_columns, "id")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A transaction for the fast statements: committed when the block ends, rolled
        back when it raises. On SQLite, only under ``_SQLITE_WRITES``."""
        if self._engine.dialect.name != "sqlite":
            with self._engine.begin() as conn:
                yield conn
            return
        if self._kept is None or self._kept.closed or self._kept.invalidated:
            self._kept = self._engine.connect()
        conn = self._kept
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    def _params(self, columns: tuple[str, ...], values: dict[str, Any]) -> Any:
        return values if self._named else tuple(values[c] for c in columns)

    def insert_pending(self, conn: Connection, actor_id: str, key: str, request_hash: str,
                       now: datetime) -> int:
        result = conn.exec_driver_sql(self.insert_sql, self._params(self.insert_columns, {
            "actor_id": actor_id, "idempotency_key": key, "request_hash": request_hash,
            "state": "pending", "created_at": self._created_at(now)}))
        row_id = result.scalar_one() if self.returning else result.lastrowid
        return int(row_id)

    def done(self, conn: Connection, row_id: int, stored: Stored) -> None:
        conn.exec_driver_sql(self.done_sql, self._params(self.done_columns, {
            "status": stored.status, "headers": json.dumps(stored.headers),
            "body": self._body(stored.body), "id": row_id}))


_FAST: dict[Engine, _FastStatements] = {}


def _fast(engine: Engine) -> _FastStatements:
    fast = _FAST.get(engine)
    if fast is None:
        if len(_FAST) > 64:  # engines of tests come and go
            _FAST.clear()
        fast = _FAST[engine] = _FastStatements(engine)
    return fast


def claim(engine: Engine, actor_id: str, key: str, request_hash: str, ttl: timedelta,
          abandoned_after: timedelta) -> Claim:
    """Insert the pending row, or report what the existing row says."""
    with _serialised(engine):
        return _claim(engine, actor_id, key, request_hash, ttl, abandoned_after)


def _claim(engine: Engine, actor_id: str, key: str, request_hash: str, ttl: timedelta,
           abandoned_after: timedelta) -> Claim:
    now = _now()
    try:
        fast = _fast(engine)
        with fast.transaction() as conn:
            return Claim("run", row_id=fast.insert_pending(
                conn, actor_id, key, request_hash, now))
    except IntegrityError:
        pass
    with engine.begin() as conn:
        row = conn.execute(select(idempotency).where(and_(
            idempotency.c.actor_id == actor_id, idempotency.c.idempotency_key == key,
        ))).first()
        if row is None:  # deleted between our insert and select: try once more
            return Claim("pending")
        created = _aware(row.created_at)
        if row.state == "done" and now - created > ttl:
            # Expired: the key is new again, under a new row id, so the ledger's command
            # keys (derived from the row id) are new too and the command runs again.
            conn.execute(delete(idempotency).where(idempotency.c.id == row.id))
            return Claim("run", row_id=_insert_pending(conn, actor_id, key, request_hash, now))
        if row.request_hash != request_hash:
            return Claim("mismatch")
        if row.state == "retry" or (row.state == "pending" and now - created > abandoned_after):
            # The first attempt failed (5xx) or its process died. Take the row over with its
            # id: if the first attempt's command was stored after all, the ledger finds its
            # command key and answers it instead of running the command again.
            taken = conn.execute(update(idempotency).where(and_(
                idempotency.c.id == row.id, idempotency.c.created_at == row.created_at,
            )).values(state="pending", created_at=now)).rowcount
            return (Claim("run", row_id=row.id, taken_over=True) if taken == 1
                    else Claim("pending"))
    if row.state != "done":
        return Claim("pending")
    return Claim("replay", stored=Stored(row.status, json.loads(row.headers), row.body))


PURGE_EVERY = 1000
"""Claims between two purges of expired keys, in each API process."""
_claims = itertools.count(1)


def purge_expired(engine: Engine, recorder: object, ttl: timedelta,
                  abandoned_after: timedelta) -> tuple[int, int]:
    """Forget answers and command keys older than the TTL (their keys may be reused as new
    ones), and pending rows no process will finish; returns (rows, command keys) removed."""
    now = _now()
    with _serialised(engine), engine.begin() as conn:
        rows = conn.execute(delete(idempotency).where(
            (idempotency.c.created_at < now - ttl)
            & ((idempotency.c.state == "done") | (idempotency.c.created_at < now - ttl
                                                  - abandoned_after)))).rowcount
    keys = forget_commands_before(recorder, now - ttl - abandoned_after)
    return int(rows or 0), keys


def _insert_pending(conn: Connection, actor_id: str, key: str, request_hash: str,
                    now: datetime) -> int:
    row_id = conn.execute(insert(idempotency).values(
        actor_id=actor_id, idempotency_key=key, request_hash=request_hash, state="pending",
        created_at=now,
    )).inserted_primary_key[0]  # type: ignore[index]
    return int(row_id)


def finish(engine: Engine, row_id: int, stored: Stored | None) -> None:
    """Keep the answer, or (``stored`` None) leave the row for a retry to take over."""
    with _serialised(engine):
        if stored is None:
            with engine.begin() as conn:
                conn.execute(update(idempotency).where(idempotency.c.id == row_id).values(
                    state="retry"))
            return
        fast = _fast(engine)
        with fast.transaction() as conn:
            fast.done(conn, row_id, stored)


def _keep(status: int, body: bytes) -> bool:
    if status >= 500:
        return False
    if status == 409:
        try:
            return bool(json.loads(body).get("type") != "/errors/concurrent-change")
        except (ValueError, AttributeError):
            return True
    return True


class Idempotency:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        key = headers.get(HEADER.lower())
        if key is None:
            await self.app(scope, receive, send)
            return
        if not KEY_PATTERN.match(key):
            await _problem(send, scope, ProblemError(
                400, "bad-idempotency-key", "Bad Idempotency-Key",
                "An Idempotency-Key is 1 to 255 visible ASCII characters (a UUID is best).",
                field=HEADER))
            return
        app_state = scope["app"].state
        token = bearer_token(headers.get("authorization"))
        try:
            actor = actor_from_token(app_state.token_key, token) if token else None
        except ProblemError:
            actor = None
        if actor is None:  # the route answers 401
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        if app_state.failed_authentications.retry_after(client[0] if client else "-") is None:
            # The token is checked once per request: ``authenticate`` takes the actor from
            # the request's state (a throttled client is left to it, to answer 429).
            scope.setdefault("state", {}).setdefault("actor", actor)

        body = await _read_body(receive)
        digest = hashlib.sha256()
        for part in (scope["method"], scope["path"], scope.get("query_string", b"").decode(),
                     ""):
            digest.update(part.encode() + b"\0")
        digest.update(body)
        engine: Engine = app_state.api_engine
        settings = app_state.runtime.settings
        ttl = timedelta(hours=settings.idempotency_ttl_hours)
        abandoned_after = timedelta(seconds=settings.idempotency_abandoned_s)
        request_hash = digest.hexdigest()

        if next(_claims) % PURGE_EVERY == 0:
            await run_in_threadpool(purge_expired, engine, app_state.runtime.ledger.recorder,
                                    ttl, abandoned_after)
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while True:
            outcome = await _on_sqlite_inline(
                engine, claim, engine, actor.id, key, request_hash, ttl, abandoned_after)
            if outcome.outcome != "pending":
                break
            if asyncio.get_running_loop().time() > deadline:
                await _problem(send, scope, ProblemError(
                    409, "idempotency-request-in-progress", "The first request is still running",
                    "A request with this Idempotency-Key is still being handled; retry with the "
                    "same key shortly.", field=HEADER, headers={"Retry-After": "1"}))
                return
            await asyncio.sleep(POLL_S)

        if outcome.outcome == "mismatch":
            await _problem(send, scope, ProblemError(
                422, "idempotency-key-reused", "Idempotency-Key used for another request",
                "This Idempotency-Key was first sent with another request (method, path or "
                "body); use a new key for a new request.", field=HEADER))
            return
        if outcome.outcome == "replay":
            assert outcome.stored is not None
            await _replay(send, outcome.stored)
            return

        assert outcome.row_id is not None
        # The ledger commands the request runs take keys derived from these (command_keys).
        with keyed_commands(actor.id, key, request_hash, str(outcome.row_id),
                            may_be_recorded=outcome.taken_over):
            await self._run_and_store(scope, body, send, engine, outcome.row_id)

    async def _run_and_store(self, scope: Scope, body: bytes, send: Send, engine: Engine,
                             row_id: int) -> None:
        sent_body = False

        async def replay_receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        status = 500
        response_headers: list[list[str]] = []
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, response_headers
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = [[k.decode("latin-1"), v.decode("latin-1")]
                                    for k, v in message.get("headers", [])]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_receive, capture)
        except BaseException:
            await run_in_threadpool(finish, engine, row_id, None)
            raise
        response_body = b"".join(chunks)
        kept = Stored(status, response_headers, response_body) if _keep(
            status, response_body) else None
        await _on_sqlite_inline(engine, finish, engine, row_id, kept)


async def _on_sqlite_inline(engine: Engine, function: Callable[P, R], *args: P.args,
                            **kwargs: P.kwargs) -> R:
    """Run a claim or a finish: inline on SQLite, in the thread pool on PostgreSQL.

    On SQLite each is one small statement and a commit without fsync (WAL, ``synchronous
    NORMAL``) on a kept connection, about 0.1 ms; a hop to the thread pool and back cost
    more CPU than that, twice per keyed command, and in a busy process each hop waits for
    the GIL. Run on the event loop they took ``POST /opportunities`` with keys from 253 to
    408-480 commands/s on ``wbl api`` (decision 077). On PostgreSQL a statement is a network
    round trip, which must not stop the loop."""
    if engine.dialect.name == "sqlite":
        return function(*args, **kwargs)
    return await run_in_threadpool(function, *args, **kwargs)


async def _read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


async def _replay(send: Send, stored: Stored) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored.headers]
    headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body})


async def _problem(send: Send, scope: Scope, error: ProblemError) -> None:
    payload: dict[str, Any] = {
        "type": f"/errors/{error.code}", "title": error.title, "status": error.status,
        "detail": error.detail, "instance": scope.get("path"),
    }
    if error.field:
        payload["field"] = error.field
    body = json.dumps(payload).encode()
    headers = [(b"content-type", PROBLEM_JSON.encode()),
               (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
