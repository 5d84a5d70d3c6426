"""Dependencies shared by the routers: the runtime's parts, settings and the acting user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from domain.actor import Actor, Role
from infra.settings import Settings
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


def current_actor() -> Actor:
    """The acting user.

    Authentication arrives with the HTTP API issue (bearer tokens mapped to actor, role
    and organisation); until then every command is recorded as the local coordinator,
    which is what the embedded single-user default is for.
    """
    return Actor(id="local-coordinator", role=Role.COORDINATOR)


LedgerDep = Annotated[Ledger, Depends(get_ledger)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ActorDep = Annotated[Actor, Depends(current_actor)]
