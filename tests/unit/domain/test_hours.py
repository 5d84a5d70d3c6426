"""Hours: logging, approving, rejecting and correcting entries, one test per rule."""

from __future__ import annotations

from datetime import date

import pytest

from domain.errors import NotPermitted, RuleViolated, UnknownAggregate, WrongState
from domain.placement.hours import EntryStatus, HourKind
from tests.unit.domain.factories import (
    COORDINATOR,
    ENDS,
    LEARNER,
    OTHER_COORDINATOR,
    OTHER_SUPERVISOR,
    STARTS,
    SUPERVISOR,
    TODAY,
    active,
    approve,
    born_of,
    log,
    matched,
    program,
    refused,
    replayed,
    state,
)

DAY = date(2024, 1, 9)


def test_logged_entry_is_pending_and_counts_nothing_until_approved() -> None:
    placement = active()
    entry_id = log(placement, minutes=240)
    assert placement.entries[entry_id].status is EntryStatus.LOGGED
    assert placement.approved_minutes() == 0
    approve(placement, entry_id)
    assert placement.approved_minutes() == 240
    assert placement.approved_minutes(HourKind.RELATED_INSTRUCTION) == 0


def test_hours_logged_event_carries_actor_business_date_and_v2_flags() -> None:
    placement = active()
    entry_id = log(placement, minutes=90, start_time="09:00", end_time="10:30")
    logged = placement.collect_events()[-1]
    assert type(logged).__name__ == "HoursLogged"
    assert logged.actor_id == LEARNER.id and logged.actor_role == "learner"
    assert logged.business_date == DAY and logged.entry_id == entry_id
    assert logged.start_time == "09:00" and logged.child_labour_flags == []
    assert logged.timestamp.tzinfo is not None
    assert type(logged).class_version == 2


@pytest.mark.parametrize(
    ("work_date", "code"),
    [
        (STARTS.replace(day=STARTS.day - 1), "before-start"),
        (date(2024, 6, 4), "in-future"),
    ],
)
def test_hours_outside_the_placement_or_in_the_future_are_refused(work_date: date,
                                                                  code: str) -> None:
    placement = active()
    with refused(placement, RuleViolated, code):
        log(placement, work_date=work_date)


def test_hours_after_the_end_are_refused() -> None:
    placement = active(ends_on=date(2024, 3, 1))
    with refused(placement, RuleViolated, "after-end"):
        log(placement, work_date=date(2024, 3, 2))
    assert ENDS > TODAY  # the default placement ends after "today"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"minutes": 0}, "minutes-out-of-range"),
        ({"minutes": 24 * 60 + 1}, "minutes-out-of-range"),
        ({"minutes": 1.5}, "minutes-not-integer"),
        ({"kind": "nap"}, "unknown-hour-kind"),
        ({"start_time": "09:00"}, "clock-times-incomplete"),
        ({"start_time": "10:00", "end_time": "09:00"}, "clock-times-reversed"),
        ({"start_time": "9 am", "end_time": "10:00"}, "bad-clock-time"),
        ({"minutes": 90, "start_time": "09:00", "end_time": "10:00"},
         "minutes-exceed-clock-time"),
        ({"allocations": {"Nope": 10}}, "unknown-work-process"),
    ],
)
def test_impossible_entries_are_refused(kwargs: dict[str, object], code: str) -> None:
    placement = active()
    kwargs.setdefault("minutes", 60)
    with refused(placement, RuleViolated, code):
        log(placement, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"allocations": {"Wiring": 200, "Safety": 100}}, "allocation-exceeds-minutes"),
        ({"allocations": {"Wiring": 0}}, "allocation-not-positive"),
        ({"allocations": {"Wiring": 10}, "kind": "related_instruction"},
         "allocation-on-related-instruction"),
    ],
)
def test_allocations_cannot_exceed_the_minutes_logged(kwargs: dict[str, object],
                                                      code: str) -> None:
    placement = active(apprenticeship=program())
    with refused(placement, RuleViolated, code):
        log(placement, minutes=240, **kwargs)  # type: ignore[arg-type]


def test_allocations_may_leave_minutes_unallocated() -> None:
    placement = active(apprenticeship=program())
    entry_id = log(placement, minutes=240, allocations={"Wiring": 200})
    approve(placement, entry_id)
    assert placement.approved_minutes_by_work_process() == {
        "Safety": 0, "Troubleshooting": 0, "Wiring": 200,
    }


def test_overlapping_clock_times_are_refused_whatever_the_kind() -> None:
    placement = active()
    log(placement, minutes=120, start_time="09:00", end_time="11:00")
    with refused(placement, RuleViolated, "overlapping-entry"):
        log(placement, minutes=60, start_time="10:30", end_time="11:30",
            kind="related_instruction")
    log(placement, minutes=60, start_time="11:00", end_time="12:00")  # touching is fine


def test_same_date_and_kind_without_times_is_a_duplicate() -> None:
    placement = active()
    log(placement, minutes=120)
    with refused(placement, RuleViolated, "overlapping-entry"):
        log(placement, minutes=60)
    log(placement, minutes=60, kind="related_instruction")  # another kind is fine


def test_a_rejected_entry_no_longer_blocks_its_time() -> None:
    placement = active()
    entry_id = log(placement, minutes=120)
    placement.reject_hours(actor=SUPERVISOR, entry_id=entry_id, reason="wrong day",
                           rejected_on=TODAY, today=TODAY)
    log(placement, minutes=120)


def test_hours_cannot_be_logged_before_the_start_or_while_suspended() -> None:
    placement = matched()
    with refused(placement, WrongState, "placement-not-started"):
        log(placement)
    placement = active()
    placement.suspend(actor=COORDINATOR, reason="injury", suspended_on=TODAY, today=TODAY)
    with refused(placement, WrongState, "placement-suspended"):
        log(placement)


def test_only_parties_log_hours() -> None:
    placement = active()
    with refused(placement, NotPermitted, "not-a-party"):
        log(placement, actor=OTHER_SUPERVISOR)
    with refused(placement, NotPermitted, "other-organisation"):
        log(placement, actor=OTHER_COORDINATOR)


# -- approval and rejection ------------------------------------------------------------


def test_the_learner_cannot_approve_their_own_hours() -> None:
    placement = active()
    entry_id = log(placement)
    with refused(placement, NotPermitted, "own-hours"):
        placement.approve_hours(actor=LEARNER, entry_id=entry_id, approved_on=TODAY, today=TODAY)


def test_a_supervisor_cannot_approve_hours_they_logged() -> None:
    placement = active()
    entry_id = log(placement, actor=SUPERVISOR)
    with refused(placement, NotPermitted, "own-hours"):
        approve(placement, entry_id)
    with refused(placement, NotPermitted, "own-hours"):
        placement.reject_hours(actor=SUPERVISOR, entry_id=entry_id, reason="x",
                               rejected_on=TODAY, today=TODAY)


@pytest.mark.parametrize("actor", [OTHER_SUPERVISOR, COORDINATOR])
def test_only_the_named_supervisor_approves_or_rejects(actor: object) -> None:
    placement = active()
    entry_id = log(placement)
    with refused(placement, NotPermitted, "not-supervisor"):
        placement.approve_hours(actor=actor, entry_id=entry_id,  # type: ignore[arg-type]
                                approved_on=TODAY, today=TODAY)
    with refused(placement, NotPermitted, "not-supervisor"):
        placement.reject_hours(actor=actor, entry_id=entry_id,  # type: ignore[arg-type]
                               reason="no", rejected_on=TODAY, today=TODAY)


def test_approving_twice_or_an_unknown_entry_is_refused() -> None:
    placement = active()
    entry_id = log(placement)
    approve(placement, entry_id)
    with refused(placement, WrongState, "entry-not-pending"):
        approve(placement, entry_id)
    with refused(placement, UnknownAggregate, "unknown-entry"):
        approve(placement, "no-such-entry")


def test_rejection_needs_a_reason() -> None:
    placement = active()
    entry_id = log(placement)
    with refused(placement, RuleViolated, "reason-required"):
        placement.reject_hours(actor=SUPERVISOR, entry_id=entry_id, reason="  ",
                               rejected_on=TODAY, today=TODAY)
    placement.reject_hours(actor=SUPERVISOR, entry_id=entry_id, reason=" not on rota ",
                           rejected_on=TODAY, today=TODAY)
    assert placement.entries[entry_id].status is EntryStatus.REJECTED
    assert placement.entries[entry_id].rejection_reason == "not on rota"  # the learner sees it
    with refused(placement, WrongState, "entry-not-pending"):
        approve(placement, entry_id)


def test_approval_date_cannot_be_in_the_future() -> None:
    placement = active()
    entry_id = log(placement)
    with refused(placement, RuleViolated, "in-future"):
        placement.approve_hours(actor=SUPERVISOR, entry_id=entry_id,
                                approved_on=date(2024, 6, 4), today=TODAY)


# -- corrections ---------------------------------------------------------------------


def test_a_correction_is_a_new_entry_and_the_original_stays_in_history() -> None:
    placement = active()
    old = log(placement, minutes=240)
    approve(placement, old)
    new = placement.correct_hours(actor=COORDINATOR, entry_id=old, reason="was 3 h",
                                  learner_born_on=born_of(placement),
                                  work_date=DAY, minutes=180, today=TODAY)
    # An approved hour never silently changes: it counts until the correction is approved.
    assert placement.entries[old].status is EntryStatus.APPROVED
    assert placement.entries[old].superseded_by == new
    assert placement.entries[old].minutes == 240
    assert placement.entries[new].supersedes == old
    assert placement.entries[new].pending_over == old
    assert placement.entries[new].correction_reason == "was 3 h"  # the supervisor reads it
    assert placement.approved_minutes() == 240
    approve(placement, new)
    assert placement.entries[old].status is EntryStatus.SUPERSEDED
    assert placement.approved_minutes() == 180
    events = placement.collect_events()
    corrected, approved = events[-2], events[-1]
    assert type(corrected).__name__ == "HoursCorrected"
    assert corrected.supersedes == old and corrected.reason == "was 3 h"
    assert corrected.pending_over == old
    assert approved.replaces == old


def test_a_rejected_correction_of_approved_hours_leaves_them_standing() -> None:
    placement = active()
    old = log(placement, minutes=240)
    approve(placement, old)
    new = placement.correct_hours(actor=LEARNER, entry_id=old, reason="was 5 h",
                                  learner_born_on=born_of(placement),
                                  work_date=DAY, minutes=300, today=TODAY)
    placement.reject_hours(actor=SUPERVISOR, entry_id=new, reason="no, 4 h", today=TODAY,
                           rejected_on=TODAY)
    assert placement.entries[old].status is EntryStatus.APPROVED
    assert placement.entries[old].superseded_by is None  # correctable again
    assert placement.approved_minutes() == 240
    again = placement.correct_hours(actor=LEARNER, entry_id=old, reason="4.5 h then",
                                    learner_born_on=born_of(placement),
                                    work_date=DAY, minutes=270, today=TODAY)
    assert placement.entries[again].pending_over == old
    assert state(replayed(placement)) == state(placement)


def test_a_correction_of_a_pending_correction_still_waits_over_the_approved_entry() -> None:
    placement = active()
    old = log(placement, minutes=240)
    approve(placement, old)
    first = placement.correct_hours(actor=LEARNER, entry_id=old, reason="3 h",
                                    learner_born_on=born_of(placement),
                                    work_date=DAY, minutes=180, today=TODAY)
    second = placement.correct_hours(actor=LEARNER, entry_id=first, reason="typo: 3.5 h",
                                     learner_born_on=born_of(placement),
                                     work_date=DAY, minutes=210, today=TODAY)
    assert placement.entries[first].status is EntryStatus.SUPERSEDED
    assert placement.entries[old].status is EntryStatus.APPROVED
    assert placement.entries[old].superseded_by == second
    assert placement.approved_minutes() == 240
    approve(placement, second)
    assert placement.entries[old].status is EntryStatus.SUPERSEDED
    assert placement.approved_minutes() == 210
    assert state(replayed(placement)) == state(placement)


def test_a_corrected_rejected_entry_stays_rejected_in_history() -> None:
    placement = active()
    old = log(placement, minutes=240)
    placement.reject_hours(actor=SUPERVISOR, entry_id=old, reason="not that day",
                           rejected_on=TODAY, today=TODAY)
    new = placement.correct_hours(actor=LEARNER, entry_id=old, reason="the next day",
                                  learner_born_on=born_of(placement),
                                  work_date=date(2024, 1, 10), minutes=240, today=TODAY)
    assert placement.entries[old].status is EntryStatus.REJECTED
    assert placement.entries[old].superseded_by == new
    with refused(placement, WrongState, "entry-superseded"):
        placement.correct_hours(actor=LEARNER, entry_id=old, reason="again",
                                learner_born_on=born_of(placement),
                                work_date=date(2024, 1, 11), minutes=60, today=TODAY)


def test_a_correction_may_take_the_replaced_entrys_time() -> None:
    placement = active()
    old = log(placement, minutes=120, start_time="09:00", end_time="11:00")
    placement.correct_hours(actor=LEARNER, entry_id=old, reason="late start", work_date=DAY,
                            learner_born_on=born_of(placement),
                            minutes=90, start_time="09:30", end_time="11:00", today=TODAY)


def test_an_entry_is_corrected_once() -> None:
    placement = active()
    old = log(placement)
    placement.correct_hours(actor=COORDINATOR, entry_id=old, reason="typo", work_date=DAY,
                            learner_born_on=born_of(placement),
                            minutes=200, today=TODAY)
    with refused(placement, WrongState, "entry-superseded"):
        placement.correct_hours(actor=COORDINATOR, entry_id=old, reason="again",
                                learner_born_on=born_of(placement),
                                work_date=DAY, minutes=100, today=TODAY)


def test_a_correction_needs_a_reason_and_passes_the_same_rules_as_a_log() -> None:
    placement = active()
    old = log(placement)
    with refused(placement, RuleViolated, "reason-required"):
        placement.correct_hours(actor=COORDINATOR, entry_id=old, reason="", work_date=DAY,
                                learner_born_on=born_of(placement),
                                minutes=200, today=TODAY)
    with refused(placement, RuleViolated, "before-start"):
        placement.correct_hours(actor=COORDINATOR, entry_id=old, reason="date",
                                learner_born_on=born_of(placement),
                                work_date=date(2024, 1, 1), minutes=200, today=TODAY)
    log(placement, work_date=date(2024, 1, 10))
    with refused(placement, RuleViolated, "overlapping-entry"):
        placement.correct_hours(actor=COORDINATOR, entry_id=old, reason="date",
                                learner_born_on=born_of(placement),
                                work_date=date(2024, 1, 10), minutes=200, today=TODAY)
    with refused(placement, UnknownAggregate, "unknown-entry"):
        placement.correct_hours(actor=COORDINATOR, entry_id="nope", reason="x",
                                learner_born_on=born_of(placement),
                                work_date=DAY, minutes=200, today=TODAY)


def test_replaying_the_hours_history_rebuilds_the_same_state() -> None:
    placement = active(apprenticeship=program())
    a = log(placement, minutes=240, allocations={"Wiring": 240})
    b = log(placement, work_date=date(2024, 1, 10), minutes=60)
    approve(placement, a)
    placement.reject_hours(actor=SUPERVISOR, entry_id=b, reason="x", rejected_on=TODAY,
                           today=TODAY)
    placement.correct_hours(actor=LEARNER, entry_id=b, reason="y", work_date=date(2024, 1, 10),
                            learner_born_on=born_of(placement),
                            minutes=30, today=TODAY)
    assert state(replayed(placement)) == state(placement)
