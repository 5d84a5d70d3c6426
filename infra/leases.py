"""Leases and locks held by one process at a time, in the store's own database.

Invariant 11: one relay per store and one projector per consumer run at a time. A second
relay (an orphan of a killed `wbl run`, a second deployment by mistake) would publish the
same events beside the first; a second projector would apply the same batches into the same
read models. Both are harmless for correctness (readers deduplicate) but they double the work,
hide which process is in charge, and make `/health` report whichever beat last. So each worker
holds a *lease* and a second one waits until the first is gone.

The lease is the database's own lock, so it is freed by the operating system or the database
server the moment its holder dies, however it dies (SIGKILL included); nothing has to expire:

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a connection kept
  for the lease alone. Advisory locks are per database, so the key needs only the lease name.
- SQLite: an exclusive ``fcntl.flock`` on ``<data dir>/<name>.lock``. The lock belongs to the
  open file, which the kernel closes when the process dies.

``exclusive`` is the blocking form of the same locks, for short critical sections such as the
schema set-up (docs/decisions/040).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

import psycopg
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from infra.settings import Settings

CHECK_EVERY_S = 1.0
"""How often a holder on PostgreSQL checks that its lease connection still lives."""


class LeaseLost(RuntimeError):
    """The lease connection died (the database restarted or cut it): another process may hold
    the lease now, so the holder must stop working and wait for it again."""


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock``, derived from the lease name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _libpq_url(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(
        hide_password=False)


def _lock_file(data_dir: Path, name: str) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir / (re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".lock")


class Lease:
    """A named lease: ``try_acquire`` takes it if free, ``check`` says it is still held,
    ``release`` (or the holder's death) frees it."""

    def __init__(self, name: str, *, database_url: str | None, data_dir: Path) -> None:
        self.name = name
        self.database_url = database_url
        self.data_dir = data_dir
        self.held = False
        self.acquired_at: float | None = None
        self._conn: psycopg.Connection[Any] | None = None
        self._file: IO[bytes] | None = None
        self._checked = 0.0

    @classmethod
    def for_settings(cls, settings: Settings, name: str) -> Lease:
        return cls(name, database_url=settings.database_url, data_dir=settings.data_dir)

    @classmethod
    def for_engine(cls, engine: Engine, name: str) -> Lease:
        """The lease in the database of ``engine`` (the read models'): beside the SQLite file
        it opens, or in the PostgreSQL database it connects to."""
        url = engine.url
        if url.get_backend_name() == "postgresql":
            return cls(name, database_url=url.render_as_string(hide_password=False),
                       data_dir=Path("."))
        database = url.database or "wbl.sqlite3"
        return cls(name, database_url=None, data_dir=Path(database).resolve().parent)

    @property
    def holder(self) -> dict[str, Any]:
        """Who holds this lease, as the heartbeat and /health show it."""
        return {"name": self.name, "held": self.held, "pid": os.getpid(),
                "host": socket.gethostname(), "acquired_at": self.acquired_at}

    def try_acquire(self) -> bool:
        if self.held:
            return True
        got = self._try_advisory() if self.database_url else self._try_flock()
        if got:
            self.held = True
            self.acquired_at = time.time()
            self._checked = time.monotonic()
        return got

    def acquire(self, stop: threading.Event, *, poll_s: float = 0.5) -> bool:
        """Wait for the lease until ``stop``; True once held. A database that is away is
        waited for like a lease held by another process."""
        while not stop.is_set():
            try:
                if self.try_acquire():
                    return True
            except (psycopg.Error, OSError):
                self._drop()
            stop.wait(poll_s)
        return False

    def check(self) -> None:
        """Raise ``LeaseLost`` if the lease is no longer held. On PostgreSQL the lock lives
        as long as its connection: a round trip at most every ``CHECK_EVERY_S`` proves it."""
        if not self.held:
            raise LeaseLost(f"lease {self.name} is not held")
        if self._conn is None or time.monotonic() - self._checked < CHECK_EVERY_S:
            return
        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error as error:
            self._drop()
            raise LeaseLost(f"lease {self.name} lost with its connection: {error}") from error
        self._checked = time.monotonic()

    def release(self) -> None:
        self._drop()

    def _try_advisory(self) -> bool:
        assert self.database_url is not None
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                _libpq_url(self.database_url), autocommit=True, connect_timeout=5,
                application_name=f"wbl lease {self.name} pid={os.getpid()}"[:63])
        row = self._conn.execute("SELECT pg_try_advisory_lock(%s)",
                                 (advisory_key(self.name),)).fetchone()
        return bool(row and row[0])

    def _try_flock(self) -> bool:
        if self._file is None:
            self._file = _lock_file(self.data_dir, self.name).open("ab")
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _drop(self) -> None:
        """Free the lease: closing the connection or the file releases the lock."""
        self.held = False
        self.acquired_at = None
        if self._conn is not None:
            with suppress(psycopg.Error):
                self._conn.close()
            self._conn = None
        if self._file is not None:
            self._file.close()
            self._file = None


@contextmanager
def exclusive(name: str, *, database_url: str | None, data_dir: Path,
              timeout_s: float = 120.0) -> Iterator[None]:
    """Hold the named lock for the block, waiting for another process that holds it (at most
    ``timeout_s``; ``lock_timeout`` on PostgreSQL, a polled flock on SQLite)."""
    if database_url:
        with psycopg.connect(_libpq_url(database_url), autocommit=True,
                             connect_timeout=10) as conn:
            conn.execute(f"SET lock_timeout = '{int(timeout_s * 1000)}ms'")
            conn.execute("SELECT pg_advisory_lock(%s)", (advisory_key(name),))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (advisory_key(name),))
        return
    with _lock_file(data_dir, name).open("ab") as file:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} is held by another process") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(file.fileno(), fcntl.LOCK_UN)
