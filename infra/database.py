"""Where events and read models are kept: SQLite files by default, PostgreSQL when configured.

The event store is the `eventsourcing` library's own recorder (configured through
its environment keys); read models use SQLAlchemy Core so one table definition
serves both databases.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from infra.command_log import RECORDER_TOPICS
from infra.personal_data import PersonalDataVault, load_or_create_master_key
from infra.settings import Settings


def event_store_env(settings: Settings) -> dict[str, str]:
    """The `eventsourcing` environment for the configured store."""
    store = _store_env(settings)
    # Our subclasses of the library's recorders also record keyed commands (command_log).
    store["APPLICATION_RECORDER_TOPIC"] = RECORDER_TOPICS[store["PERSISTENCE_MODULE"]]
    return {**store, **_cache_env(settings)}


def _cache_env(settings: Settings) -> dict[str, str]:
    """The library's aggregate cache: a command loads its placement from memory, reads only
    the events stored since (by any process: fast-forward) and gets a deep copy, so a refused
    command never leaves a half-changed aggregate behind (docs/decisions/035)."""
    if settings.aggregate_cache_size <= 0:
        return {}
    return {
        "AGGREGATE_CACHE_MAXSIZE": str(settings.aggregate_cache_size),
        "AGGREGATE_CACHE_FASTFORWARD": "y",
    }


def _store_env(settings: Settings) -> dict[str, str]:
    if settings.database_url:
        url = make_url(settings.database_url)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": url.database or "postgres",
            "POSTGRES_HOST": url.host or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": url.username or "postgres",
            "POSTGRES_PASSWORD": url.password or "",
            # No pre-ping: psycopg_pool backs off exponentially per dead connection it finds,
            # so after a cut a request could wait tens of seconds. Instead the library
            # retries a failed statement (10 attempts, 0.2 s apart) and a small pool means
            # those attempts get past every dead connection (docs/decisions/007).
            "POSTGRES_POOL_SIZE": str(settings.database_pool_size),
            "POSTGRES_MAX_OVERFLOW": str(settings.database_max_overflow),
            "POSTGRES_CONN_MAX_AGE": "300",
            "POSTGRES_PRE_PING": "n",
        }
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(settings.data_dir / "events.sqlite3"),
        "SQLITE_LOCK_TIMEOUT": "10",
    }


def read_model_engine(settings: Settings) -> Engine:
    """A SQLAlchemy engine for the read models (same database as the events on PostgreSQL)."""
    return _engine(settings.database_url, settings, "read_models.sqlite3")


def personal_data_engine(settings: Settings) -> Engine:
    """The personal-data vault's database: its own SQLite file by default."""
    return _engine(settings.personal_data_url or settings.database_url, settings,
                   "personal_data.sqlite3")


def _engine(database_url: str | None, settings: Settings, sqlite_file: str) -> Engine:
    if database_url:
        return engine_for_url(make_url(database_url).set(
            drivername="postgresql+psycopg").render_as_string(hide_password=False))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return engine_for_url(f"sqlite:///{settings.data_dir / sqlite_file}")


def engine_for_url(url: str) -> Engine:
    """An engine on a URL one of ``_engine``'s made (``engine.url``, password included):
    the same options and SQLite pragmas, for a process that is handed only the URL (the
    set-based rebuild's placement pass, decision 076)."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    engine = create_engine(url, connect_args={"timeout": 10, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets the API read while the projector writes.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def personal_data_vault(settings: Settings) -> PersonalDataVault:
    key = load_or_create_master_key(settings.personal_data_key,
                                    settings.data_dir / "personal-data.key")
    return PersonalDataVault(personal_data_engine(settings), key)
