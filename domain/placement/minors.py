"""FLSA hours limits for 14- and 15-year-olds (29 CFR 570.35): pure functions.

Employment of 14- and 15-year-olds is limited to 3 hours on a school day, 18 hours in a
school week, 8 hours on a non-school day and 40 hours in a non-school week, between
7 a.m. and 7 p.m. (9 p.m. from June 1 through Labor Day). Only on-the-job minutes are
employment; related instruction is schooling and does not count.

The limits concern the learner: they count the learner's on-the-job minutes across all of
their placements (``domain.learner_week.LearnerWeek`` keeps them consistent). A placement
under a Work Experience and Career Exploration Program agreement (570.36) allows 23 hours
in a school week; work-study (570.37) is not modelled, and an organisation running it
chooses ``FLAG`` so hours are recorded with a flag for review instead of refused.

Whether a day is a school day and a week a school week comes from the school's calendar
(``domain.calendar``), never from the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time, timedelta
from enum import StrEnum

SCHOOL_DAY_LIMIT = 3 * 60
SCHOOL_WEEK_LIMIT = 18 * 60
WECEP_SCHOOL_WEEK_LIMIT = 23 * 60
"""29 CFR 570.36: a learner in a Work Experience and Career Exploration Program may work up
to 23 hours in a school week (and during school hours)."""
NON_SCHOOL_DAY_LIMIT = 8 * 60
NON_SCHOOL_WEEK_LIMIT = 40 * 60
EARLIEST_START = time(7, 0)
LATEST_END = time(19, 0)
LATEST_END_SUMMER = time(21, 0)


class ChildLabourPolicy(StrEnum):
    """What an organisation wants done with hours beyond the 14-15 limits.

    ``REFUSE`` (the default) keeps unlawful hours out of the record; ``FLAG`` records them
    with the breached limits named, for organisations whose programmes fall under an
    exemption the ledger cannot see, or who must record hours actually worked.
    """

    REFUSE = "refuse"
    FLAG = "flag"


@dataclass(frozen=True)
class Breach:
    code: str
    detail: str


def limits_apply(turns_16_on: date | None, work_date: date) -> bool:
    """The 14-15 limits apply to a learner still under 16 on the work date."""
    return turns_16_on is not None and work_date < turns_16_on


def labor_day(year: int) -> date:
    """The first Monday of September."""
    first = date(year, 9, 1)
    return first + timedelta(days=(7 - first.weekday()) % 7)


def latest_end(work_date: date) -> time:
    if date(work_date.year, 6, 1) <= work_date <= labor_day(work_date.year):
        return LATEST_END_SUMMER
    return LATEST_END


def week_of(work_date: date) -> tuple[date, date]:
    """The Monday-to-Sunday week holding the date (a fixed, recurring 7-day workweek)."""
    monday = work_date - timedelta(days=work_date.weekday())
    return monday, monday + timedelta(days=6)


def breaches(
    *,
    work_date: date,
    minutes: int,
    start_time: time | None,
    end_time: time | None,
    school_day: bool,
    school_week: bool,
    other_minutes_that_day: int,
    other_minutes_that_week: int,
    school_week_limit: int = SCHOOL_WEEK_LIMIT,
) -> list[Breach]:
    """Every 570.35 limit the new on-the-job minutes would break, in a stable order."""
    found: list[Breach] = []
    day_total = other_minutes_that_day + minutes
    week_total = other_minutes_that_week + minutes
    if school_day and day_total > SCHOOL_DAY_LIMIT:
        found.append(Breach("minor-school-day-limit",
                            f"{day_total} minutes on a school day; the limit is 3 hours."))
    if not school_day and day_total > NON_SCHOOL_DAY_LIMIT:
        found.append(Breach("minor-non-school-day-limit",
                            f"{day_total} minutes on a non-school day; the limit is 8 hours."))
    if school_week and week_total > school_week_limit:
        found.append(Breach("minor-school-week-limit",
                            f"{week_total} minutes in a school week; the limit is "
                            f"{school_week_limit // 60} hours."))
    if not school_week and week_total > NON_SCHOOL_WEEK_LIMIT:
        found.append(Breach("minor-non-school-week-limit",
                            f"{week_total} minutes in a non-school week; the limit is 40 hours."))
    if start_time is not None and end_time is not None:
        latest = latest_end(work_date)
        if start_time < EARLIEST_START or end_time > latest:
            found.append(Breach(
                "minor-time-of-day",
                f"Work between {start_time:%H:%M} and {end_time:%H:%M} falls outside "
                f"07:00-{latest:%H:%M}.",
            ))
    return found
