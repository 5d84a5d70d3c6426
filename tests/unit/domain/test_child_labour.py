"""FLSA limits for 14- and 15-year-olds (29 CFR 570.35), refused or flagged by policy."""

from __future__ import annotations

from datetime import date, time

import pytest

from domain.errors import RuleViolated
from domain.placement import minors as child_labour
from domain.placement.minors import ChildLabourPolicy
from tests.unit.domain.factories import (
    COORDINATOR,
    MINOR_BORN,
    TODAY,
    active,
    born_of,
    log,
    refused,
)

MONDAY = date(2024, 1, 15)


def _week(offset: int) -> date:
    return date.fromordinal(MONDAY.toordinal() + offset)


def test_labor_day_and_summer_evenings() -> None:
    assert child_labour.labor_day(2024) == date(2024, 9, 2)
    assert child_labour.labor_day(2026) == date(2026, 9, 7)
    assert child_labour.latest_end(date(2024, 6, 1)) == time(21)
    assert child_labour.latest_end(date(2024, 9, 2)) == time(21)
    assert child_labour.latest_end(date(2024, 9, 3)) == time(19)
    assert child_labour.latest_end(date(2024, 5, 31)) == time(19)
    assert child_labour.week_of(date(2024, 1, 17)) == (MONDAY, date(2024, 1, 21))


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"minutes": 181, "school_day": True}, "minor-school-day-limit"),
        ({"minutes": 481, "school_day": False}, "minor-non-school-day-limit"),
        ({"minutes": 60, "start_time": "06:30", "end_time": "07:30"}, "minor-time-of-day"),
        ({"minutes": 60, "start_time": "18:30", "end_time": "19:30"}, "minor-time-of-day"),
    ],
)
def test_daily_limits_for_a_15_year_old_are_refused(kwargs: dict[str, object],
                                                    code: str) -> None:
    placement = active(born=MINOR_BORN)
    with refused(placement, RuleViolated, code):
        log(placement, work_date=MONDAY, **kwargs)  # type: ignore[arg-type]


def test_limits_at_the_boundary_are_allowed() -> None:
    placement = active(born=MINOR_BORN)
    log(placement, work_date=MONDAY, minutes=180, school_day=True)
    log(placement, work_date=_week(5), minutes=480, school_day=False, school_week=True)


def test_summer_evening_until_nine_is_allowed() -> None:
    placement = active(born=MINOR_BORN)
    log(placement, work_date=date(2024, 6, 3), minutes=120, start_time="19:00",
        end_time="21:00", today=date(2024, 6, 4))


def test_the_school_week_limit_sums_the_week() -> None:
    placement = active(born=MINOR_BORN)
    for offset in range(5):  # 5 x 3 h = 15 h
        log(placement, work_date=_week(offset), minutes=180, school_day=True)
    with refused(placement, RuleViolated, "minor-school-week-limit"):
        log(placement, work_date=_week(5), minutes=181, school_day=False, school_week=True)
    log(placement, work_date=_week(5), minutes=180, school_day=False, school_week=True)
    # the next week starts afresh
    log(placement, work_date=_week(7), minutes=180, school_day=True)


def test_the_non_school_week_limit() -> None:
    placement = active(born=MINOR_BORN)
    for offset in range(5):
        log(placement, work_date=_week(offset), minutes=480, school_day=False)
    with refused(placement, RuleViolated, "minor-non-school-week-limit"):
        log(placement, work_date=_week(5), minutes=1, school_day=False)


def test_related_instruction_is_not_employment() -> None:
    placement = active(born=MINOR_BORN)
    log(placement, work_date=MONDAY, minutes=180, school_day=True)
    log(placement, work_date=MONDAY, minutes=300, school_day=True, kind="related_instruction")


def test_limits_stop_at_the_16th_birthday() -> None:
    placement = active(born=MINOR_BORN)  # 16 on 2025-01-01
    later = date(2025, 1, 2)
    log(placement, work_date=later, minutes=600, school_day=True, today=later)
    with refused(placement, RuleViolated, "minor-school-day-limit"):
        log(placement, work_date=date(2024, 12, 31), minutes=200, school_day=True, today=later)


def test_an_adult_has_no_such_limits() -> None:
    placement = active()
    log(placement, work_date=MONDAY, minutes=600, school_day=True, start_time="05:00",
        end_time="15:00")


def test_flag_policy_records_the_breaches_instead_of_refusing() -> None:
    placement = active(born=MINOR_BORN)
    entry_id = log(placement, work_date=MONDAY, minutes=240, school_day=True,
                   start_time="15:00", end_time="19:30", policy=ChildLabourPolicy.FLAG)
    assert placement.entries[entry_id].child_labour_flags == (
        "minor-school-day-limit", "minor-time-of-day",
    )
    assert placement.collect_events()[-1].child_labour_flags == [
        "minor-school-day-limit", "minor-time-of-day",
    ]


def test_a_correction_is_checked_without_the_entry_it_replaces() -> None:
    placement = active(born=MINOR_BORN)
    old = log(placement, work_date=MONDAY, minutes=180, school_day=True)
    placement.correct_hours(actor=COORDINATOR, entry_id=old, reason="was 2:50",
                            learner_born_on=born_of(placement),
                            work_date=MONDAY, minutes=170, school_day=True, today=TODAY)
    with refused(placement, RuleViolated, "minor-school-day-limit"):
        placement.correct_hours(actor=COORDINATOR, entry_id=placement.entries[old].superseded_by
                                or "", reason="x", work_date=MONDAY, minutes=200,
                                school_day=True, today=TODAY, learner_born_on=born_of(placement))
