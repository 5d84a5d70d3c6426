"""Every table of the service, created (or brought up to date) once, in one place, under a lock.

On a fresh PostgreSQL database `wbl run` failed one start in three: the API, the relay and the
projector each created the tables they use at the same moment, and PostgreSQL refuses
concurrent changes to one catalogue row (``tuple concurrently updated``; the `eventsourcing`
library runs ``CREATE OR REPLACE FUNCTION`` every time it creates its tables). So every role
calls ``ensure_schema`` before it serves, and the roles' event stores are opened with the
library's own table creation turned off (``store_env``). See docs/decisions/040.

``ensure_schema`` takes one lock (a PostgreSQL advisory lock, or a flock beside the SQLite
files), creates what is missing, and writes a fingerprint of the table definitions; a later
call that finds the same fingerprint returns after one query, without the lock. A build whose
tables differ (a new projection, a new column) has another fingerprint and creates what is new.

It imports each layer's table definitions when called: it is the one place that knows them all.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment
from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, insert, select
from sqlalchemy.exc import SQLAlchemyError

from infra.database import event_store_env, personal_data_engine, read_model_engine
from infra.leases import exclusive
from infra.settings import Settings

log = logging.getLogger(__name__)

SCHEMA_LOCK = "wbl:schema"
EVENT_STORE_REVISION = "eventsourcing-9.5:command-log-1"
"""Part of the fingerprint: change it when the event store's own tables change."""

schema_metadata = MetaData()

schema_setups = Table(
    "wbl_schema_setups",
    schema_metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("done_at", DateTime(timezone=True), nullable=False),
)


def _table_groups() -> list[tuple[str, MetaData]]:
    """(database, tables) for every table the service keeps outside the event store."""
    import services.workers.projector  # noqa: F401  (registers every projection's tables)
    from infra.api_tables import api_metadata
    from infra.personal_data import metadata as personal_data_metadata
    from projections.tables import metadata as projection_metadata
    from services.jobs.reporting import reporting_metadata
    from services.workers.heartbeats import heartbeat_metadata

    return [
        ("read_models", projection_metadata),
        ("read_models", heartbeat_metadata),
        ("read_models", reporting_metadata),
        ("api", api_metadata),
        ("personal_data", personal_data_metadata),
    ]


def _application_name() -> str:
    from services.ledger import Ledger

    return Ledger.name


def fingerprint(settings: Settings, groups: list[tuple[str, MetaData]]) -> str:
    """A digest of every table definition and of the event store's kind and revision."""
    digest = hashlib.sha256()
    store = event_store_env(settings)
    digest.update(f"{store['PERSISTENCE_MODULE']}|{store['APPLICATION_RECORDER_TOPIC']}|"
                  f"{_application_name()}|{EVENT_STORE_REVISION}".encode())
    for _, metadata in groups:
        for table in sorted(metadata.tables.values(), key=lambda t: t.name):
            digest.update(table.name.encode())
            for column in table.columns:
                digest.update(f"|{column.name}:{column.type!r}:{column.nullable}".encode())
            for index in sorted(table.indexes, key=lambda i: i.name or ""):
                digest.update(f"|ix {index.name}:{[c.name for c in index.columns]}".encode())
    return digest.hexdigest()


def _done(engine: Engine, expected: str) -> bool:
    try:
        with engine.connect() as conn:
            return conn.execute(select(schema_setups.c.fingerprint).where(
                schema_setups.c.fingerprint == expected)).first() is not None
    except SQLAlchemyError:  # no table yet: the first start
        return False


def _create_event_store(settings: Settings) -> None:
    """The event store's tables (events, command keys, tracking), made by the library's own
    recorders; the only place where the library is allowed to create them."""
    env = Environment(_application_name(), {**event_store_env(settings), "CREATE_TABLE": "y"})
    factory = InfrastructureFactory.construct(env)
    try:
        factory.application_recorder()
        factory.tracking_recorder()
    finally:
        factory.close()


def ensure_schema(settings: Settings) -> None:
    """Create every table that is missing, once, whichever process gets here first; the
    others wait for it and then find the work done."""
    groups = _table_groups()
    expected = fingerprint(settings, groups)
    read_models = read_model_engine(settings)
    try:
        if _done(read_models, expected):
            return
        with exclusive(SCHEMA_LOCK, database_url=settings.database_url,
                       data_dir=settings.data_dir):
            if _done(read_models, expected):
                return
            _create_event_store(settings)
            _create_tables(settings, read_models, groups)
            schema_metadata.create_all(read_models)
            with read_models.begin() as conn:
                conn.execute(insert(schema_setups).values(
                    fingerprint=expected, done_at=datetime.now(UTC)))
            log.info("schema set up", extra={"fingerprint": expected[:12]})
    finally:
        read_models.dispose()


def _create_tables(settings: Settings, read_models: Engine,
                   groups: list[tuple[str, MetaData]]) -> None:
    from infra.api_tables import api_engine

    engines = {"read_models": read_models, "api": api_engine(settings, read_models),
               "personal_data": personal_data_engine(settings)}
    try:
        for database, metadata in groups:
            metadata.create_all(engines[database])
    finally:
        for engine in engines.values():
            if engine is not read_models:
                engine.dispose()


def store_env(settings: Settings) -> dict[str, str]:
    """The event store's environment for a role, after ``ensure_schema``: the library then
    creates nothing itself, so processes starting together do not race on the catalogue."""
    ensure_schema(settings)
    return {**event_store_env(settings), "CREATE_TABLE": "n"}
