"""On SQLite a command runs on the API's event loop, and never waits there (decision 080).

Another process holding the event store's write lock (an import, the relay recording its
position) must not stop the API: a command that meets it waits in the thread pool while the
API answers everything else, then records once, with its Idempotency-Key kept. Driven over
real HTTP (uvicorn on loopback) with the lock held by an outside SQLite connection, as
another process holds it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from domain.actor import Actor, Role
from infra.command_log import StoreBusy, never_wait_for_writers
from infra.settings import Settings
from services.bootstrap import build_ledger
from services.ledger import BirthDatesInMemory
from tests.integration.test_api_concurrency import served
from tests.integration.test_api_world import World, api_settings, opportunity_body

pytestmark = pytest.mark.integration


@contextmanager
def write_lock_held(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """The event store's write lock, taken as another process takes it; released (nothing
    written) when the block ends."""
    outside = sqlite3.connect(data_dir / "events.sqlite3", isolation_level=None)
    try:
        outside.execute("BEGIN IMMEDIATE")
        yield outside
        outside.execute("ROLLBACK")
    finally:
        outside.close()


def post_in_background(world: World, key: str) -> Future[object]:
    done: Future[object] = Future()

    def post() -> None:
        try:
            done.set_result(world.call("coord_a", "POST", "/opportunities",
                                       opportunity_body(title="Waits its turn"),
                                       **{"Idempotency-Key": key}))
        except BaseException as error:  # handed to the test
            done.set_exception(error)

    threading.Thread(target=post, daemon=True).start()
    return done


def test_a_command_meeting_another_writer_waits_and_the_api_keeps_answering(
        tmp_path: Path) -> None:
    settings = api_settings(tmp_path)
    with served(settings) as world:
        before = world.position
        key = str(uuid.uuid4())
        with write_lock_held(settings.data_dir):
            answer = post_in_background(world, key)
            held_until = time.monotonic() + 1.0
            answered = 0
            while time.monotonic() < held_until:
                started = time.monotonic()
                health = world.call(None, "GET", "/health")
                assert health.status_code == 200, health.text
                listed = world.call("coord_a", "GET", "/opportunities")
                assert listed.status_code == 200, listed.text
                assert time.monotonic() - started < 0.5, "the API stopped while a command waited"
                answered += 1
                time.sleep(0.05)
            assert not answer.done(), "the command did not wait for the other writer"
            assert world.position == before
        response = answer.result(timeout=15)
        assert response.status_code == 201, response.text  # type: ignore[attr-defined]
        assert answered >= 5
        assert world.position == before + 1

        again = world.call("coord_a", "POST", "/opportunities",
                           opportunity_body(title="Waits its turn"), **{"Idempotency-Key": key})
        assert again.status_code == 201
        assert again.json() == response.json()  # type: ignore[attr-defined]
        assert world.position == before + 1


def test_a_short_write_by_another_process_is_waited_out_on_the_loop(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = api_settings(tmp_path)
    with served(settings) as world:
        before = world.position
        caplog.set_level("INFO", logger="services.api.deps")
        for _ in range(5):
            with write_lock_held(settings.data_dir):
                answer = post_in_background(world, str(uuid.uuid4()))
                time.sleep(0.01)
            response = answer.result(timeout=15)
            assert response.status_code == 201, response.text  # type: ignore[attr-defined]
        assert world.position == before + 5
        assert "waits in the thread pool" not in caplog.text


def test_a_save_told_not_to_wait_is_refused_at_once_and_stores_nothing(
        tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=None)
    ledger = build_ledger(settings, birth_dates=BirthDatesInMemory())
    actor = Actor("coord-1", Role.COORDINATOR, "district-a")
    details = opportunity_body()
    del details["organisation_id"]
    details.update(hourly_wage=Decimal("18.00"), starts_on=date.fromisoformat(
        details["starts_on"]), ends_on=date.fromisoformat(details["ends_on"]))
    try:
        ledger.post_opportunity(actor, organisation_id="district-a", **details)
        before = ledger.recorder.max_notification_id()
        with write_lock_held(settings.data_dir):
            started = time.monotonic()
            with never_wait_for_writers(), pytest.raises(StoreBusy):
                ledger.post_opportunity(actor, organisation_id="district-a", **details)
            assert time.monotonic() - started < 0.5  # not SQLite's 10 s busy wait
        assert ledger.recorder.max_notification_id() == before
        with ledger.recorder.datastore.transaction(commit=False) as c:
            c.execute("PRAGMA busy_timeout")
            assert c.fetchone()[0] == 10_000  # the connection's own timeout, put back
        ledger.post_opportunity(actor, organisation_id="district-a", **details)
        assert ledger.recorder.max_notification_id() == (before or 0) + 1
    finally:
        ledger.close()
