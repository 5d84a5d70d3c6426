"""Shared fixtures: a fresh PostgreSQL database per test, a real Kafka-protocol broker
per session, and the ledger application on either store.

The broker fixture (`kafka_bootstrap`) lives in `tests/fixtures/broker.py`, the PostgreSQL
one (`pg_database_url`, found as the broker is) in `tests/fixtures/postgres.py`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.settings import Settings
from services.bootstrap import build_ledger
from services.ledger import BirthDatesInMemory, Ledger

pytest_plugins = ["tests.fixtures.broker", "tests.fixtures.postgres", "tests.fixtures.oidc",
                  "tests.fixtures.smtp", "tests.fixtures.browser", "tests.fixtures.site"]

PG_ADMIN_DSN = os.environ.get("WBL_TEST_PG_ADMIN_DSN",
                              "postgresql://postgres@127.0.0.1:5432/test")
"""For tests that manage databases themselves; prefer the ``postgres_server`` fixture."""


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
    app = build_ledger(store_settings, birth_dates=BirthDatesInMemory())
    try:
        yield app
    finally:
        app.close()
