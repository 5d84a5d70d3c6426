"""The aggregate cache (docs/decisions/035): two processes' ledgers on one store, each with
its own cache, never act on a stale placement, and a refused command leaves the cached
placement as it was."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from datetime import date
from uuid import UUID

import pytest

import domain.placement as placement_module
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


def test_a_copy_of_a_placement_shares_only_immutable_entries(
        two_ledgers: tuple[Ledger, Ledger]) -> None:
    """Decision 064: a command's copy shares the hour entries (immutable) but owns the
    mapping that holds them and everything else."""
    ledger, _ = two_ledgers
    placement_story(ledger, learner=LEARNER.id, days=1)
    placement = ledger.get_placement(_placement_id(ledger))
    copied = copy.deepcopy(placement)
    assert copied.entries == placement.entries and copied.entries is not placement.entries
    assert copied.signatures is not placement.signatures
    for original, twin in zip(placement.entries.values(), copied.entries.values(), strict=True):
        assert twin is original  # shared: nothing in it can change
        with pytest.raises(dataclasses.FrozenInstanceError):
            twin.status = EntryStatus.SUPERSEDED  # type: ignore[misc]
        with pytest.raises(TypeError):
            twin.allocations["other"] = 1  # type: ignore[index]
        assert isinstance(twin.child_labour_flags, tuple)
    copied.entries.clear()
    assert placement.entries


def test_a_command_that_raises_halfway_leaves_the_cached_placement_untouched(
        two_ledgers: tuple[Ledger, Ledger], monkeypatch: pytest.MonkeyPatch) -> None:
    """A correction whose event method fails after it marked the old entry superseded (here
    made to fail on purpose, where the new entry is built) must leave the cached placement
    as it was: the command worked on its own copy. Fails if a copy shared the ``entries``
    mapping with the cache, or if an entry were changed in place."""
    ledger, _ = two_ledgers
    placement_story(ledger, learner=LEARNER.id, days=1)
    placement_id = _placement_id(ledger)
    logged = ledger.log_hours(LEARNER, placement_id, work_date=date(2026, 2, 3), minutes=60)
    entry_id = str(logged.created_id)
    cached = ledger.read_placement(placement_id)  # the cache's own object, not a copy
    entries_before = dict(cached.entries)
    version_before = cached.version

    built = placement_module.HourEntry
    calls = 0

    def fail_on_the_new_entry(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if kwargs.get("supersedes") is not None:
            raise RuntimeError("halfway")
        return built(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(placement_module, "HourEntry", fail_on_the_new_entry)
    with pytest.raises(RuntimeError, match="halfway"):
        ledger.correct_hours(LEARNER, placement_id, entry_id=entry_id, reason="typo",
                             work_date=date(2026, 2, 3), minutes=45)
    monkeypatch.undo()
    assert calls  # the event method did run, and failed after changing the old entry

    assert ledger.read_placement(placement_id) is cached
    assert cached.version == version_before
    assert cached.entries == entries_before
    assert cached.entries[entry_id].status is EntryStatus.LOGGED
    assert cached.entries[entry_id].superseded_by is None
    # and the next command acts on the record as stored
    corrected = ledger.correct_hours(LEARNER, placement_id, entry_id=entry_id, reason="typo",
                                     work_date=date(2026, 2, 3), minutes=45)
    assert corrected.version == version_before + 1
    after = ledger.get_placement(placement_id)
    assert after.entries[entry_id].status is EntryStatus.SUPERSEDED
    assert after.entries[entry_id].superseded_by == str(corrected.created_id)
