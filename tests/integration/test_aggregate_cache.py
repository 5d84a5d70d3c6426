"""The aggregate cache (docs/decisions/035): two processes' ledgers on one store, each with
its own cache, never act on a stale placement, and a refused command leaves the cached
placement as it was."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import date
from uuid import UUID

import pytest

from domain.actor import Actor, Role
from domain.errors import NotPermitted, RuleViolated
from domain.placement.hours import EntryStatus
from infra.settings import Settings
from services.bootstrap import build_ledger
from services.ledger import BirthDatesInMemory, Ledger
from tests.support import WORKLOAD_ORG, placement_story

LEARNER = Actor("learner-c", Role.LEARNER, WORKLOAD_ORG)
SUPERVISOR = Actor("super-1", Role.SUPERVISOR, WORKLOAD_ORG)


@pytest.fixture
def two_ledgers(store_settings: Settings) -> Iterator[tuple[Ledger, Ledger]]:
    assert store_settings.aggregate_cache_size > 0
    first = build_ledger(store_settings, birth_dates=BirthDatesInMemory())
    second = build_ledger(store_settings, birth_dates=BirthDatesInMemory())
    for ledger in (first, second):
        ledger.today = lambda: date(2026, 3, 2)  # type: ignore[method-assign]
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def _placement_id(ledger: Ledger) -> UUID:
    notifications = ledger.recorder.select_notifications(start=1, limit=50)
    return next(n.originator_id for n in notifications if "Placement" in n.topic
                )  # type: ignore[return-value]


def test_a_cached_placement_catches_up_with_another_process(
        two_ledgers: tuple[Ledger, Ledger]) -> None:
    first, second = two_ledgers
    placement_story(first, learner=LEARNER.id, days=2)
    placement_id = _placement_id(first)
    cached_version = first.get_placement(placement_id).version  # now in first's cache

    logged = second.log_hours(LEARNER, placement_id, work_date=date(2026, 2, 2), minutes=90)
    assert logged.version == cached_version + 1

    # first's cached copy is behind; the next command must see second's entry and build on
    # its version, not clash with it.
    approved = first.approve_hours(SUPERVISOR, placement_id, entry_id=str(logged.created_id))
    assert approved.version == cached_version + 2
    placement = second.get_placement(placement_id)
    assert placement.entries[str(logged.created_id)].status is EntryStatus.APPROVED


def test_a_refused_command_leaves_the_cached_placement_untouched(
        two_ledgers: tuple[Ledger, Ledger]) -> None:
    ledger, _ = two_ledgers
    placement_story(ledger, learner=LEARNER.id, days=1)
    placement_id = _placement_id(ledger)
    logged = ledger.log_hours(LEARNER, placement_id, work_date=date(2026, 2, 3), minutes=60,
                              start_time="09:00", end_time="10:00")
    before = ledger.get_placement(placement_id)

    with pytest.raises(RuleViolated):  # overlaps the entry above
        ledger.log_hours(LEARNER, placement_id, work_date=date(2026, 2, 3), minutes=60,
                         start_time="09:30", end_time="10:30")
    with pytest.raises(NotPermitted):  # a learner approving their own hours
        ledger.approve_hours(LEARNER, placement_id, entry_id=str(logged.created_id))

    after = ledger.get_placement(placement_id)
    assert after.version == before.version
    assert after.entries.keys() == before.entries.keys()
    assert after.entries[str(logged.created_id)].status is EntryStatus.LOGGED


def test_a_deep_copy_shares_nothing_that_a_command_changes(
        two_ledgers: tuple[Ledger, Ledger]) -> None:
    ledger, _ = two_ledgers
    placement_story(ledger, learner=LEARNER.id, days=1)
    placement = ledger.get_placement(_placement_id(ledger))
    copied = copy.deepcopy(placement)
    for original, twin in zip(placement.entries.values(), copied.entries.values(), strict=True):
        assert twin == original and twin is not original
        twin.status = EntryStatus.SUPERSEDED
        twin.allocations["other"] = 1
        twin.child_labour_flags.append("x")
        assert original.status is not EntryStatus.SUPERSEDED
        assert "other" not in original.allocations and "x" not in original.child_labour_flags
