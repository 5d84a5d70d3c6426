"""Dependencies shared by the routers: the runtime's parts, settings and the acting user."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import random
import threading
import time
import weakref
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from domain.actor import Actor
from domain.errors import ConcurrentChange
from infra.command_log import StoreBusy, never_wait_for_writers, waits_for_writers
from infra.contacts import ContactAddresses, contact_addresses
from infra.settings import Settings
from services.api.auth import authenticate
from services.bootstrap import Runtime
from services.ledger import Ledger
from services.ledger.command_keys import CURRENT

log = logging.getLogger(__name__)
R = TypeVar("R")


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


class OneWriterAtATime:
    """The ledger, with its commands taken one at a time on SQLite.

    SQLite lets one writer commit at a time and makes the others sleep in its busy handler
    (1, 2, 5, 10 ... 100 ms between tries), so sixteen concurrent commands cost far more
    than sixteen queued ones; a Python lock queues them without the sleeps. Queries are not
    queued (WAL readers do not block). On PostgreSQL nothing is queued: its writers
    proceed concurrently and the store's version constraint refuses the losers.
    """

    QUERIES = frozenset({"get_opportunity", "get_program", "get_placement",
                         "child_labour_policy", "learner_minutes_on"})

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self.lock = threading.RLock()
        """Re-entrant: ``run_command`` takes it before the command, which takes it again."""
        self._turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary())

    def turn(self) -> asyncio.Lock:
        """The queue of ``run_command``'s commands on the running event loop, where they wait
        for their turn without taking a thread."""
        loop = asyncio.get_running_loop()
        turn = self._turns.get(loop)
        if turn is None:
            turn = self._turns[loop] = asyncio.Lock()
        return turn

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._ledger, name)
        if name in self.QUERIES or name.startswith("_") or not callable(attribute):
            return attribute

        def one_at_a_time(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                return attribute(*args, **kwargs)

        return one_at_a_time


@functools.cache
def _is_command(name: str) -> bool:
    """A ledger ``@command`` (``services/ledger/command_keys.py``) taking ``expected_version``."""
    method = getattr(Ledger, name, None)
    return (not name.startswith("_") and callable(method) and hasattr(method, "__wrapped__")
            and "expected_version" in inspect.signature(method).parameters)


class Overtaken(Exception):
    """A command run on the event loop lost a race to another writer: nothing was stored,
    and ``run_command`` runs it again in the thread pool, where pauses are allowed."""


class RerunWhenOvertaken:
    """The ledger, with a command that lost a race to another writer run again on the record
    as it now is, when the client did not name the version it expects (no ``If-Match``).

    Between loading a placement and saving its new events, another writer (another thread,
    another ``wbl api`` process, an import) may record an event on it; the store's unique
    (id, version) constraint then refuses ours (``ConcurrentChange``). The client asked for
    the command, not for the command on version 7: so the command is run again, from the
    load (which fast-forwards the cached aggregate to the store's events, decision 035)
    through every rule, as if it had arrived a moment later. Two writers that both remain
    valid both succeed; of two that exclude each other the second is refused by the rule
    itself (an entry approved while it was being rejected: 409 ``entry-not-pending``). A
    client that sent ``If-Match`` gets the refusal, as before. It is run again for up to
    ``patience_s`` seconds, with a short random pause between attempts so that writers in
    several processes stop meeting each other; after that the 409 ``concurrent-change``
    stands (the idempotency store does not keep it, so a retry with the key runs again).

    A run that was refused stored nothing, so running it again records the command at most
    once; inside a keyed request (``Idempotency-Key``) each run takes the same command key
    (the scope's counter is rewound), so a crash after the second run still answers a
    client's retry from the command log (decision 036). Only the ledger's ``@command``
    methods are run again; queries and units of work pass through. See decision 061.
    """

    def __init__(self, target: Any, ledger: Ledger, patience_s: float = 5.0) -> None:
        self._target = target
        self._ledger = ledger
        self._patience_s = patience_s
        self.writers = target if isinstance(target, OneWriterAtATime) else None
        """This process's queue of writers on SQLite (``run_command``); None on PostgreSQL."""

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not _is_command(name):
            return attribute

        def rerun(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("expected_version") is not None:
                return attribute(*args, **kwargs)
            if not waits_for_writers():  # on the event loop: no pauses there
                try:
                    return attribute(*args, **kwargs)
                except ConcurrentChange as overtaken:
                    raise Overtaken from overtaken
            scope = CURRENT.get()
            issued = scope.issued if scope is not None else 0
            deadline = time.monotonic() + self._patience_s
            attempt = 0
            while True:
                try:
                    return attribute(*args, **kwargs)
                except ConcurrentChange:
                    attempt += 1
                    if time.monotonic() >= deadline:
                        raise
                    if scope is not None:
                        scope.issued = issued  # the same command key again
                    log.debug("command overtaken by another writer: run again",
                              extra={"command": name, "attempt": attempt})
                    time.sleep(random.uniform(0, min(0.05, 0.001 * 2 ** attempt)))

        return rerun


BUSY_PAUSE_S = 0.001
BUSY_ON_LOOP_S = 0.05
"""How long a command on the event loop tries again, a pause at a time, when another
process (the relay recording its position, an import) holds the store's write lock."""


async def run_command(ledger: Ledger, command: Callable[[], R]) -> R:
    """Run a route's ledger command: on the event loop when nothing would make it wait,
    else in the thread pool.

    On SQLite this process's writes are taken one at a time anyway (``OneWriterAtATime``),
    and a command is a fraction of a millisecond of CPU; the hop to the thread pool and
    back, and the two threads' turns at the GIL, cost more than the command itself
    (decision 080: 585 -> 720-790 commands/s). So a command runs here when this process
    has no other writer and the store's write lock is free; it never waits on the loop:
    not for this process's lock (``acquire(blocking=False)``), not for another process's
    write (``never_wait_for_writers``: ``StoreBusy`` at once), not for a rerun after
    being overtaken (``RerunWhenOvertaken`` tries once). In each case nothing was stored.
    A busy store is tried again after a pause of ``BUSY_PAUSE_S``, the loop free meanwhile
    and the next commands waiting their turn (``turn``), for up to ``BUSY_ON_LOOP_S``;
    after that, or when overtaken or when this process has another writer, the command
    goes to the thread pool, where it waits as before. Each run takes the same command
    key (the scope's counter is rewound). On PostgreSQL a command is network
    round trips: always the thread pool."""
    writers: OneWriterAtATime | None = getattr(ledger, "writers", None)
    if writers is None:
        return await run_in_threadpool(command)
    scope = CURRENT.get()
    issued = scope.issued if scope is not None else 0
    async with writers.turn():
        deadline = time.monotonic() + BUSY_ON_LOOP_S
        while writers.lock.acquire(blocking=False):
            try:
                with never_wait_for_writers():
                    return command()
            except (StoreBusy, Overtaken) as refused:  # nothing stored: the same key again
                if scope is not None:
                    scope.issued = issued
                if isinstance(refused, Overtaken):
                    break
            finally:
                writers.lock.release()
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(BUSY_PAUSE_S)  # another process's write: usually sub-ms
        log.info("the event store is busy: the command waits in the thread pool")
        return await run_in_threadpool(command)


async def get_ledger(request: Request) -> Ledger:
    """The runtime's ledger, its commands run again when overtaken (``RerunWhenOvertaken``);
    on SQLite, taken one at a time in this process (``OneWriterAtATime``). One per app."""
    runtime: Runtime = request.app.state.runtime
    wrapped = getattr(request.app.state, "command_ledger", None)
    if wrapped is None or wrapped._ledger is not runtime.ledger:
        target: Any = runtime.ledger
        if not runtime.settings.uses_postgres:
            target = OneWriterAtATime(runtime.ledger)
        wrapped = request.app.state.command_ledger = RerunWhenOvertaken(target, runtime.ledger)
    return cast(Ledger, wrapped)


async def get_engine(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Engine:
    return runtime.engine


async def get_api_engine(request: Request) -> Engine:
    """The API's own tables (idempotency, organisations, people): ``services/api/store.py``."""
    engine: Engine = request.app.state.api_engine
    return engine


async def get_settings(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Settings:
    return runtime.settings


async def get_contacts(request: Request) -> ContactAddresses:
    """People's contact addresses (encrypted; ``infra/contacts.py``), made once per app."""
    contacts: ContactAddresses | None = getattr(request.app.state, "contacts", None)
    if contacts is None:
        contacts = request.app.state.contacts = contact_addresses(
            request.app.state.runtime.settings, request.app.state.api_engine)
    return contacts


async def current_actor(request: Request) -> Actor:
    """The acting user, from the bearer token only (``services/api/auth.py``).

    Dependencies here are ``async`` although they do no I/O: FastAPI runs a plain ``def``
    dependency in its thread pool, a hop that costs more than the work.

    Never taken from a request body: the actor recorded in each event is the
    authenticated one."""
    return authenticate(request)


LedgerDep = Annotated[Ledger, Depends(get_ledger)]
EngineDep = Annotated[Engine, Depends(get_engine)]
ApiEngineDep = Annotated[Engine, Depends(get_api_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ActorDep = Annotated[Actor, Depends(current_actor)]
ContactsDep = Annotated[ContactAddresses, Depends(get_contacts)]
