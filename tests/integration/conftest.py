"""Fixtures the integration tests share beyond the root conftest's stores and broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from infra.database import read_model_engine
from infra.settings import Settings


@pytest.fixture
def engine(store_settings: Settings) -> Iterator[Engine]:
    """The read-model database of a fresh store (SQLite or PostgreSQL)."""
    engine = read_model_engine(store_settings)
    yield engine
    engine.dispose()
