"""LearnerDay: 24 hours a day per learner across placements; OrganisationSettings."""

from __future__ import annotations

from datetime import date

import pytest

from domain.errors import NotPermitted, RuleViolated, WrongState
from domain.learner_day import LearnerDay
from domain.organisation import OrganisationSettings
from domain.placement.minors import ChildLabourPolicy
from tests.unit.domain.factories import (
    COORDINATOR,
    LEARNER,
    OTHER_COORDINATOR,
    refused,
    replayed,
    state,
)

DAY = date(2024, 1, 9)


def test_the_id_is_derived_from_learner_and_date() -> None:
    day = LearnerDay.open(actor=LEARNER, learner_id="l-1", day=DAY)
    assert day.id == LearnerDay.create_id("l-1", DAY)
    assert LearnerDay.create_id("l-1", DAY) != LearnerDay.create_id("l-2", DAY)
    assert LearnerDay.create_id("l-1", DAY) != LearnerDay.create_id("l-1", date(2024, 1, 10))


def test_more_than_24_hours_a_day_is_refused() -> None:
    day = LearnerDay.open(actor=LEARNER, learner_id="l-1", day=DAY)
    day.claim(actor=LEARNER, placement_id="p-1", entry_id="e-1", minutes=900)
    day.claim(actor=LEARNER, placement_id="p-2", entry_id="e-2", minutes=540)
    assert day.claimed_minutes == 1440
    with refused(day, RuleViolated, "daily-limit-exceeded"):
        day.claim(actor=LEARNER, placement_id="p-3", entry_id="e-3", minutes=1)
    day.release(actor=LEARNER, entry_id="e-2", reason="rejected")
    day.release(actor=LEARNER, entry_id="e-2", reason="rejected")  # no-op, no event
    day.claim(actor=LEARNER, placement_id="p-3", entry_id="e-3", minutes=540)
    assert state(replayed(day)) == state(day)
    assert len(day.collect_events()) == 5


def test_organisation_policy_is_chosen_then_changed_with_reasons() -> None:
    settings = OrganisationSettings.choose(actor=COORDINATOR, organisation_id="org-1",
                                           policy="flag", reason="WECEP programme",
                                           chosen_on=DAY)
    assert settings.id == OrganisationSettings.create_id("org-1")
    assert settings.child_labour_policy is ChildLabourPolicy.FLAG
    with refused(settings, WrongState, "policy-unchanged"):
        settings.change(actor=COORDINATOR, policy="flag", reason="x", changed_on=DAY)
    with refused(settings, NotPermitted, "coordinator-required"):
        settings.change(actor=OTHER_COORDINATOR, policy="refuse", reason="x", changed_on=DAY)
    with refused(settings, RuleViolated, "unknown-policy"):
        settings.change(actor=COORDINATOR, policy="ignore", reason="x", changed_on=DAY)
    with refused(settings, RuleViolated, "reason-required"):
        settings.change(actor=COORDINATOR, policy="refuse", reason="", changed_on=DAY)
    settings.change(actor=COORDINATOR, policy="refuse", reason="WECEP ended", changed_on=DAY)
    assert settings.child_labour_policy is ChildLabourPolicy.REFUSE


def test_only_a_coordinator_chooses_a_policy() -> None:
    with pytest.raises(NotPermitted) as info:
        OrganisationSettings.choose(actor=LEARNER, organisation_id="org-1", policy="flag",
                                    reason="x", chosen_on=DAY)
    assert info.value.code == "coordinator-required"
