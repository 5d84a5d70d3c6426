"""Dependencies shared by the routers: the runtime's parts, settings and the acting user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from domain.actor import Actor
from infra.settings import Settings
from services.api.auth import authenticate
from services.ledger import Ledger
from services.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_ledger(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Ledger:
    return runtime.ledger


def get_engine(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Engine:
    return runtime.engine


def get_settings(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Settings:
    return runtime.settings


def current_actor(request: Request) -> Actor:
    """The acting user, from the bearer token only (``services/api/auth.py``).

    Never taken from a request body: the actor recorded in each event is the
    authenticated one."""
    return authenticate(request)


LedgerDep = Annotated[Ledger, Depends(get_ledger)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ActorDep = Annotated[Actor, Depends(current_actor)]
