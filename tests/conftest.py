"""Shared fixtures: a fresh PostgreSQL database per test, a real Kafka-protocol broker
per session, and the ledger application on either store.

The broker fixture (`kafka_bootstrap`) lives in `tests/fixtures/broker.py`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from infra.database import event_store_env
from infra.settings import Settings
from services.ledger import Ledger

pytest_plugins = ["tests.fixtures.broker"]

PG_ADMIN_DSN = os.environ.get("WBL_TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_database_url() -> Iterator[str]:
    """Create a fresh database on the local PostgreSQL 15 and drop it afterwards."""
    name = f"wbl_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for a fresh store: an SQLite data directory, or a fresh PostgreSQL database."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_database_url")
        return Settings(data_dir=tmp_path / "data", database_url=url)
    return Settings(data_dir=tmp_path / "data", database_url=None)


@pytest.fixture
def ledger(store_settings: Settings) -> Iterator[Ledger]:
    """The ledger application on a fresh store (runs once per store kind)."""
    app = Ledger(env=event_store_env(store_settings))
    try:
        yield app
    finally:
        app.close()
