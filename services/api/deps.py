"""Dependencies shared by the routers: the runtime's parts, settings and the acting user."""

from __future__ import annotations

import threading
from typing import Annotated, Any, cast

from fastapi import Depends, Request
from sqlalchemy import Engine

from domain.actor import Actor
from infra.contacts import ContactAddresses, contact_addresses
from infra.settings import Settings
from services.api.auth import authenticate
from services.bootstrap import Runtime
from services.ledger import Ledger


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
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._ledger, name)
        if name in self.QUERIES or name.startswith("_") or not callable(attribute):
            return attribute

        def one_at_a_time(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return one_at_a_time


async def get_ledger(request: Request) -> Ledger:
    """The runtime's ledger; on SQLite, behind ``OneWriterAtATime`` (one per app)."""
    runtime: Runtime = request.app.state.runtime
    if runtime.settings.uses_postgres:
        return runtime.ledger
    wrapped = getattr(request.app.state, "serial_ledger", None)
    if wrapped is None or wrapped._ledger is not runtime.ledger:
        wrapped = request.app.state.serial_ledger = OneWriterAtATime(runtime.ledger)
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
