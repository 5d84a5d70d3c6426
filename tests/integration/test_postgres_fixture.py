"""The PostgreSQL fixture's last resort really makes a server: a contributor with the
PostgreSQL binaries installed but no server running still runs the PostgreSQL half."""

from __future__ import annotations

import psycopg
import pytest

from tests.fixtures.postgres import _binaries, throwaway_cluster

pytestmark = pytest.mark.integration


def test_a_throwaway_cluster_from_the_installed_binaries_answers_and_is_removed() -> None:
    if _binaries() is None:
        pytest.skip("no initdb installed")
    started = throwaway_cluster()
    if started is None:
        pytest.skip("running as root without a postgres user")
    dsn = next(started)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE DATABASE wbl_probe")
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = 'wbl_probe'"
                            ).fetchone() == (1,)
    next(started, None)  # stops the server and removes its folder
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=2)
