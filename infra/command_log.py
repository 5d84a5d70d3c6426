"""The command log: which keyed commands the event store has recorded, in the same
transaction as their events.

A client that retries a command with its ``Idempotency-Key`` must get the first answer and
record nothing new, even when the process that ran the first attempt died between storing
the events and storing the HTTP answer. So the proof that a command ran is written by the
event store itself: the `eventsourcing` recorders below insert one row per keyed command
(``wbl_command_keys``) inside the transaction that inserts its events. Either both are
stored or neither is, and the row's primary key refuses a second run of the same command
even from a concurrent process. See docs/decisions/036-command-keys-with-the-events.md.

The row holds what the command's answer is made of (aggregate, version, created id) and the
last event it stored, whose notification id is the answer's position.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

TABLE = "wbl_command_keys"
_CHUNK = 500
"""Ids per ``IN (...)`` on SQLite (well under its limit on bound parameters)."""


@dataclass(frozen=True)
class CommandKey:
    """One keyed command, as the recorder stores it beside the command's events."""

    key: str
    """A SHA-256 hex digest (actor, Idempotency-Key, request, ordinal): no id in clear."""
    aggregate_id: str
    version: int
    created_id: str | None
    last_originator_id: str
    last_version: int


@dataclass(frozen=True)
class RecordedCommand:
    aggregate_id: UUID
    version: int
    position: int
    created_id: str | None
    recorded_at: datetime


class StoreBusy(OperationalError):
    """Another connection held the SQLite store's write lock and this command was told not
    to wait for it (``never_wait_for_writers``). Nothing was stored: the transaction was
    rolled back before any row was written."""


_WAIT_FOR_WRITERS: ContextVar[bool] = ContextVar("wbl_wait_for_writers", default=True)


@contextmanager
def never_wait_for_writers() -> Iterator[None]:
    """Commands run inside do not wait for another writer: a save that finds the SQLite
    store's write lock taken raises ``StoreBusy`` at once instead of sleeping in SQLite's
    busy handler (up to ``SQLITE_LOCK_TIMEOUT``). The API runs a command on its event loop
    this way, where a wait would stop every other request (decision 080)."""
    token = _WAIT_FOR_WRITERS.set(False)
    try:
        yield
    finally:
        _WAIT_FOR_WRITERS.reset(token)


def waits_for_writers() -> bool:
    """False inside ``never_wait_for_writers``."""
    return _WAIT_FOR_WRITERS.get()


def _hex(originator_id: UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, UUID) else originator_id


class SQLiteCommandLogRecorder(SQLiteApplicationRecorder):
    """The library's SQLite recorder, plus the command log in the same transaction."""

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), (
            f"CREATE TABLE IF NOT EXISTS {TABLE} (key TEXT PRIMARY KEY, aggregate_id TEXT, "
            "version INTEGER, created_id TEXT, last_originator_id TEXT, last_version INTEGER, "
            "recorded_at TEXT)")]

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent],
                       **kwargs: Any) -> Sequence[int] | None:
        if waits_for_writers():
            return self._insert_keyed(c, stored_events, **kwargs)
        # The transaction's first write takes the write lock: with no busy handler it is
        # taken at once or refused at once. The connection's own timeout is put back after.
        c.execute("PRAGMA busy_timeout")
        kept = int(c.fetchone()[0])
        c.execute("PRAGMA busy_timeout = 0")
        try:
            return self._insert_keyed(c, stored_events, **kwargs)
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
                raise StoreBusy(error) from error
            raise
        finally:
            c.execute(f"PRAGMA busy_timeout = {kept}")

    def _insert_keyed(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent],
                      **kwargs: Any) -> Sequence[int] | None:
        command: CommandKey | None = kwargs.get("command")
        if command is not None:
            c.execute(f"INSERT INTO {TABLE} VALUES (?,?,?,?,?,?,?)", (
                command.key, command.aggregate_id, command.version, command.created_id,
                _hex(UUID(command.last_originator_id)), command.last_version,
                datetime.now(UTC).isoformat()))
        return super()._insert_events(c, stored_events, **kwargs)

    def insert_events_in_one_transaction(self, chunks: Iterable[Sequence[StoredEvent]]
                                         ) -> int:
        """Insert every chunk's events in one transaction; the last notification id (0 if
        none). An import's spilled unit of work is written this way (decision 067): all of
        it or, on any error, none."""
        with self.datastore.transaction(commit=True) as c:
            for chunk in chunks:
                c.executemany(self.insert_events_statement, [
                    (_hex(s.originator_id), s.originator_version, s.topic, s.state)
                    for s in chunk])
            c.execute(f"SELECT MAX(rowid) AS pos FROM {self.events_table_name}")
            row = c.fetchone()
        return 0 if row is None or row["pos"] is None else int(row["pos"])

    def select_command(self, key: str) -> RecordedCommand | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT k.aggregate_id, k.version, k.created_id, k.recorded_at, e.rowid AS pos "
                f"FROM {TABLE} k JOIN {self.events_table_name} e "
                "ON e.originator_id = k.last_originator_id "
                "AND e.originator_version = k.last_version WHERE k.key = ?", (key,))
            row = c.fetchone()
        if row is None:
            return None
        return RecordedCommand(UUID(row["aggregate_id"]), row["version"], row["pos"],
                               row["created_id"], datetime.fromisoformat(row["recorded_at"]))

    def last_position_of(self, originator_id: UUID, at_most: int) -> int | None:
        """The position of the aggregate's last event at or before ``at_most`` (None: it had
        none yet). Read-your-writes for a query about one aggregate uses it."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT MAX(rowid) AS pos FROM {self.events_table_name} "
                      "WHERE originator_id = ? AND rowid <= ?", (_hex(originator_id), at_most))
            row = c.fetchone()
        return None if row is None or row["pos"] is None else int(row["pos"])

    def stored_originators(self, originator_ids: Sequence[UUID]) -> set[UUID]:
        """Which of ``originator_ids`` have events: one query for many look-ups."""
        found: set[UUID] = set()
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(originator_ids), _CHUNK):
                chunk = [_hex(i) for i in originator_ids[start:start + _CHUNK]]
                c.execute(f"SELECT DISTINCT originator_id FROM {self.events_table_name} "
                          f"WHERE originator_id IN ({','.join('?' * len(chunk))})", chunk)
                found.update(UUID(row["originator_id"]) for row in c.fetchall())
        return found

    def forget_commands_before(self, moment: datetime) -> int:
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"DELETE FROM {TABLE} WHERE recorded_at < ?", (moment.isoformat(),))
            return int(c.sqlite_cursor.rowcount)


class PostgresCommandLogRecorder(PostgresApplicationRecorder):
    """The library's PostgreSQL recorder, plus the command log in the same transaction."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sql_create_statements.append(SQL(
            "CREATE TABLE IF NOT EXISTS {schema}.{table} (key text PRIMARY KEY, "
            "aggregate_id uuid NOT NULL, version bigint NOT NULL, created_id text, "
            "last_originator_id uuid NOT NULL, last_version bigint NOT NULL, "
            "recorded_at timestamptz NOT NULL DEFAULT now())"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(TABLE)))

    def _insert_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent],
                       **kwargs: Any) -> None:
        command: CommandKey | None = kwargs.get("command")
        if command is not None:
            curs.execute(SQL(
                "INSERT INTO {schema}.{table} (key, aggregate_id, version, created_id, "
                "last_originator_id, last_version) VALUES (%s, %s, %s, %s, %s, %s)"
            ).format(schema=Identifier(self.datastore.schema), table=Identifier(TABLE)), (
                command.key, command.aggregate_id, command.version, command.created_id,
                command.last_originator_id, command.last_version))
        super()._insert_events(curs, stored_events, **kwargs)

    def insert_events_in_one_transaction(self, chunks: Iterable[Sequence[StoredEvent]]
                                         ) -> int:
        """Insert every chunk's events in one transaction, the table locked as the library
        locks it for one insert (so that notification ids commit in order); the last
        notification id (0 if none). Not retried: the chunks are read once, and a failed
        transaction stored nothing (decision 067)."""
        last = 0
        with self.datastore.get_connection() as conn, conn.transaction(), \
                conn.cursor() as curs:
            self._lock_table(curs)
            self._notify_channel(curs)
            for chunk in chunks:
                curs.execute(self.insert_events_statement, ([
                    self.construct_pg_stored_event(s.originator_id, s.originator_version,
                                                   s.topic, s.state) for s in chunk],))
                ids = [row["notification_id"] for row in curs.fetchall()]
                last = max(last, *ids) if ids else last
        return last

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_command(self, key: str) -> RecordedCommand | None:
        statement = SQL(
            "SELECT k.aggregate_id, k.version, k.created_id, k.recorded_at, "
            "e.notification_id AS pos FROM {schema}.{table} k JOIN {schema}.{events} e "
            "ON e.originator_id = k.last_originator_id "
            "AND e.originator_version = k.last_version WHERE k.key = %s"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(TABLE),
                 events=Identifier(self.events_table_name))
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (key,))
            row = curs.fetchone()
        if row is None:
            return None
        return RecordedCommand(row["aggregate_id"], row["version"], row["pos"],
                               row["created_id"], row["recorded_at"])

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def last_position_of(self, originator_id: UUID, at_most: int) -> int | None:
        """The position of the aggregate's last event at or before ``at_most`` (None: it had
        none yet). Read-your-writes for a query about one aggregate uses it."""
        statement = SQL(
            "SELECT MAX(notification_id) AS pos FROM {schema}.{events} "
            "WHERE originator_id = %s AND notification_id <= %s"
        ).format(schema=Identifier(self.datastore.schema),
                 events=Identifier(self.events_table_name))
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (originator_id, at_most))
            row = curs.fetchone()
        return None if row is None or row["pos"] is None else int(row["pos"])

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def stored_originators(self, originator_ids: Sequence[UUID]) -> set[UUID]:
        """Which of ``originator_ids`` have events: one query for many look-ups."""
        statement = SQL(
            "SELECT DISTINCT originator_id FROM {schema}.{events} "
            "WHERE originator_id = ANY(%s)"
        ).format(schema=Identifier(self.datastore.schema),
                 events=Identifier(self.events_table_name))
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (list(originator_ids),))
            return {row["originator_id"] for row in curs.fetchall()}

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def forget_commands_before(self, moment: datetime) -> int:
        statement = SQL("DELETE FROM {schema}.{table} WHERE recorded_at < %s").format(
            schema=Identifier(self.datastore.schema), table=Identifier(TABLE))
        with self.datastore.get_connection() as conn, conn.transaction(), \
                conn.cursor() as curs:
            curs.execute(statement, (moment,))
            return int(curs.rowcount)


def recorded_command(recorder: object, key: str) -> RecordedCommand | None:
    """What the store recorded for ``key``; None when not recorded (or on a recorder without a
    command log, such as the in-memory one of unit tests)."""
    select = getattr(recorder, "select_command", None)
    return select(key) if select is not None else None


def stored_originators(recorder: Any, originator_ids: Sequence[UUID]) -> set[UUID]:
    """Which of ``originator_ids`` have events in the store (one query on our recorders; one
    look-up each on others, such as the in-memory recorder of unit tests)."""
    bulk = getattr(recorder, "stored_originators", None)
    if bulk is not None:
        return set(bulk(originator_ids))
    return {i for i in originator_ids if recorder.select_events(i, limit=1)}


def insert_in_one_transaction(recorder: Any, chunks: Iterable[Sequence[StoredEvent]]) -> int:
    """Insert the chunks' events in one transaction and return the last notification id: in
    chunks on our recorders, at once on others (the in-memory recorder of unit tests)."""
    chunked = getattr(recorder, "insert_events_in_one_transaction", None)
    if chunked is not None:
        return int(chunked(chunks))
    events = [e for chunk in chunks for e in chunk]
    if events:
        recorder.insert_events(events)
    return int(recorder.max_notification_id() or 0)


def forget_commands_before(recorder: object, moment: datetime) -> int:
    """Delete command keys recorded before ``moment`` (their Idempotency-Keys expired)."""
    forget = getattr(recorder, "forget_commands_before", None)
    return int(forget(moment)) if forget is not None else 0


RECORDER_TOPICS = {
    "eventsourcing.sqlite": "infra.command_log:SQLiteCommandLogRecorder",
    "eventsourcing.postgres": "infra.command_log:PostgresCommandLogRecorder",
}
