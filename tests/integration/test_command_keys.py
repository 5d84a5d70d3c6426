"""Keyed commands run at most once (docs/decisions/036): the event store records a command's
key in the transaction of its events, so a retry of a request whose first attempt committed
(and then lost its answer) gets the first result and records nothing, on SQLite and
PostgreSQL, sequentially and concurrently."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import create_engine, func, insert, select

from domain.actor import Actor, Role
from domain.errors import RuleViolated, StaleVersion
from infra.api_tables import api_metadata, idempotency
from services.api.idempotency import purge_expired
from services.ledger import CommandResult, Ledger
from services.ledger.command_keys import keyed_commands
from tests.support import WORKLOAD_ORG, placement_story

LEARNER = Actor("learner-k", Role.LEARNER, WORKLOAD_ORG)
SUPERVISOR = Actor("super-1", Role.SUPERVISOR, WORKLOAD_ORG)


def _placement(ledger: Ledger) -> UUID:
    ledger.today = lambda: date(2026, 3, 2)  # type: ignore[method-assign]
    placement_story(ledger, learner=LEARNER.id, days=1)
    notifications = ledger.recorder.select_notifications(start=1, limit=50)
    found: UUID = next(n.originator_id for n in notifications if "Placement" in n.topic)
    return found


def _events(ledger: Ledger) -> int:
    return ledger.recorder.max_notification_id() or 0


def _log(ledger: Ledger, placement: UUID, day: int = 2, **extra: Any) -> CommandResult:
    return ledger.log_hours(LEARNER, placement, work_date=date(2026, 2, day), minutes=60,
                            **extra)


def test_a_retried_request_gets_the_first_result_and_records_nothing(ledger: Ledger) -> None:
    placement = _placement(ledger)
    with keyed_commands("learner-k", "key-1", "request-hash", "1"):
        first = _log(ledger, placement)
    stored = _events(ledger)

    with keyed_commands("learner-k", "key-1", "request-hash", "1"):  # the retry
        again = _log(ledger, placement)
    assert again == first
    assert _events(ledger) == stored

    with keyed_commands("learner-k", "key-2", "request-hash", "1"):  # another request
        other = _log(ledger, placement, day=3)
    assert other.created_id != first.created_id
    assert _events(ledger) > stored


def test_each_command_of_a_request_has_its_own_key(ledger: Ledger) -> None:
    placement = _placement(ledger)
    with keyed_commands("learner-k", "bulk", "h", "7"):
        entries = [_log(ledger, placement, day=d) for d in (4, 5, 6)]
    stored = _events(ledger)
    with keyed_commands("learner-k", "bulk", "h", "7"):
        again = [_log(ledger, placement, day=d) for d in (4, 5, 6)]
    assert again == entries
    assert len({e.created_id for e in entries}) == 3
    assert _events(ledger) == stored


def test_a_refused_command_stores_no_key_and_runs_again_on_retry(ledger: Ledger) -> None:
    placement = _placement(ledger)
    with keyed_commands("learner-k", "k", "h", "1"), pytest.raises(RuleViolated):
        ledger.log_hours(LEARNER, placement, work_date=date(2026, 2, 2), minutes=0)
    with keyed_commands("learner-k", "k", "h", "1"), pytest.raises(RuleViolated):
        ledger.log_hours(LEARNER, placement, work_date=date(2026, 2, 2), minutes=0)


def test_a_command_beaten_by_another_writer_stores_no_key(ledger: Ledger) -> None:
    """The key is in the events' transaction: refused events, no key; the retry runs."""
    placement = _placement(ledger)
    version = ledger.get_placement(placement).version
    _log(ledger, placement, day=8)  # another writer moves the placement on
    with keyed_commands("learner-k", "k", "h", "1"), pytest.raises(StaleVersion):
        _log(ledger, placement, day=9, expected_version=version)
    with keyed_commands("learner-k", "k", "h", "1"):
        result = _log(ledger, placement, day=9)
    assert ledger.get_placement(placement).entries[str(result.created_id)].minutes == 60


def test_the_same_keyed_command_run_concurrently_records_once(ledger: Ledger) -> None:
    placement = _placement(ledger)
    ledger.get_placement(placement)
    results: list[CommandResult] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def attempt(n: int) -> None:
        start.wait()
        try:  # as a first attempt (no look-up before running) or as a retry that took over
            with keyed_commands("learner-k", "same", "h", "1", may_be_recorded=n % 2 == 0):
                results.append(_log(ledger, placement, day=10))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # However the attempts interleave (before the winner's commit, refused by its version,
    # or after it, refused by the rules or by the key), each answers the one stored result.
    assert not errors, errors
    assert len(results) == 6 and all(r == results[0] for r in results)
    entries = [e for e in ledger.get_placement(placement).entries.values()
               if e.work_date == date(2026, 2, 10)]
    assert len(entries) == 1
    with keyed_commands("learner-k", "same", "h", "1"):
        assert _log(ledger, placement, day=10) == results[0]


def test_expired_keys_and_command_keys_are_purged(ledger: Ledger, tmp_path: Path) -> None:
    """Answers and command keys older than the TTL go; recent ones stay and still answer."""
    placement = _placement(ledger)
    with keyed_commands("learner-k", "old", "h", "1"):
        old = _log(ledger, placement, day=11)
    engine = create_engine(f"sqlite:///{tmp_path / 'api.sqlite3'}")
    api_metadata.create_all(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for key, state, age in (("done-old", "done", 30), ("done-new", "done", 1),
                                ("pending-old", "pending", 30)):
            conn.execute(insert(idempotency).values(
                actor_id="a", idempotency_key=key, request_hash="h", state=state,
                created_at=now - timedelta(hours=age)))

    rows, keys = purge_expired(engine, ledger.recorder, timedelta(hours=24),
                               timedelta(seconds=30))
    assert (rows, keys) == (2, 0)  # the command key is seconds old: kept
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(idempotency)).scalar() == 1
    with keyed_commands("learner-k", "old", "h", "1"):
        assert _log(ledger, placement, day=11) == old

    _, keys = purge_expired(engine, ledger.recorder, timedelta(seconds=0), timedelta(0))
    assert keys == 1
    engine.dispose()
