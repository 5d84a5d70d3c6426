"""PostgreSQL connections cut (pg_terminate_backend) again and again while commands are
recorded and the relay publishes: commands either succeed or fail cleanly (the client
retries), the relay keeps going, and the topic ends exactly equal to the store."""

from __future__ import annotations

import random
import threading
import time

import psycopg
import pytest
from sqlalchemy.engine import make_url

from infra.settings import Settings
from services.bootstrap import Runtime
from tests.support import placement_story, read_topic, reconcile

pytestmark = pytest.mark.integration


def terminate_backends(database_url: str) -> int:
    """Cut every connection to the test database except this one."""
    dbname = make_url(database_url).database
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,)).fetchall()
    return len(rows)


def test_connections_cut_during_commands_and_relay(
    pg_database_url: str, kafka_bootstrap: str, topic_name: str, iterations: int, tmp_path
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=pg_database_url,
                        kafka_bootstrap_servers=kafka_bootstrap, topic=topic_name)
    runtime = Runtime.build(settings, projector=False)
    runtime.start()
    assert runtime.relay is not None
    stop = threading.Event()
    cut = [0]
    failed_commands = [0]

    def cutter() -> None:
        rng = random.Random(7)
        while not stop.is_set():
            time.sleep(rng.uniform(0.5, 1.0))
            cut[0] += terminate_backends(pg_database_url)

    thread = threading.Thread(target=cutter)
    thread.start()
    try:
        deadline = time.monotonic() + max(iterations, 4) * 0.75
        n = 0
        slowest = 0.0
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                placement_story(runtime.ledger, learner=f"learner-{n}", days=2)
            except Exception:  # a cut connection fails the command: nothing half-written
                failed_commands[0] += 1
            slowest = max(slowest, time.monotonic() - started)
            n += 1
    finally:
        stop.set()
        thread.join()
    try:
        stored = runtime.ledger.recorder.max_notification_id() or 0
        deadline = time.monotonic() + 60
        while runtime.relay.status.acknowledged_position < stored:
            assert runtime.relay.status.running, runtime.relay.status
            assert time.monotonic() < deadline, runtime.relay.status
            time.sleep(0.1)
        result = reconcile(runtime.ledger, read_topic(kafka_bootstrap, topic_name))
    finally:
        runtime.stop()
    assert cut[0] > 0
    assert result.distinct == result.stored
    assert n - failed_commands[0] > 0
    assert slowest < 10, f"a story took {slowest:.1f} s: commands must not hang on dead connections"
    print(f"\npg_terminate_backend: {cut[0]} connections cut, {failed_commands[0]} stories "
          f"interrupted of {n}, slowest {slowest:.2f} s, {stored} events stored and "
          f"published, 0 lost")
