"""A school's calendar: which dates are school days, recorded as events.

Why the ledger keeps calendars: the FLSA limits for 14- and 15-year-olds (29 CFR 570.35)
depend on whether the work date is a *school day* and falls in a *school week*. A client
that says so itself can say "not a school day" and log 8 hours on a Tuesday; so the
ledger decides from the calendar the school recorded, never from a flag in the request.

A school year runs from July 1 to June 30 ("2026-2027"). Inside a recorded year, a school
day is a weekday between the first and the last instructional day that falls in no break
or holiday; every other date of that year (weekends, breaks, summer) is not. A coordinator
may record an exception for one date (a snow day, a make-up Saturday), with a reason, and
it wins over the year. A date of a year nobody recorded is *unknown*: the rules then take
the safer reading (a school day in a school week) and the entry is flagged
``calendar-missing``.

A school week is a Monday-to-Sunday week in which school is in session on at least one
day (the Wage and Hour Division's reading of "a week when school is in session").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.actor import Actor, Role
from domain.errors import NotPermitted, RuleViolated

CALENDAR_NAMESPACE = UUID("3c9d2a61-58e4-5f0b-a7c2-9e1b4d6f8a20")


@dataclass(frozen=True)
class SchoolDays:
    """The calendar's answer for one work date."""

    school_day: bool
    school_week: bool
    calendar_missing: bool = False

    @classmethod
    def unknown(cls) -> SchoolDays:
        """No calendar covers the date: the safer reading (the stricter limits apply)."""
        return cls(school_day=True, school_week=True, calendar_missing=True)


@dataclass(frozen=True)
class SchoolYear:
    name: str
    first_day: date
    last_day: date
    breaks: tuple[tuple[str, date, date], ...]

    def school_day(self, day: date) -> bool:
        if not self.first_day <= day <= self.last_day or day.weekday() >= 5:
            return False
        return not any(first <= day <= last for _, first, last in self.breaks)


def school_year_of(day: date) -> str:
    """The school year ("2026-2027") holding the date: July 1 to June 30."""
    start = day.year if day.month >= 7 else day.year - 1
    return f"{start}-{start + 1}"


def _year_bounds(name: str) -> tuple[date, date]:
    try:
        first, second = (int(part) for part in name.split("-"))
    except ValueError:
        first = second = -1
    if second != first + 1 or not 1900 <= first <= 2999:
        raise RuleViolated(f"{name!r} is not a school year; write it as 2026-2027.",
                           code="bad-school-year", field="school_year")
    return date(first, 7, 1), date(second, 6, 30)


def _require_coordinator(actor: Actor, organisation_id: str) -> None:
    if actor.role not in (Role.COORDINATOR, Role.ADMIN) or (
        actor.organisation_id is not None and actor.organisation_id != organisation_id
    ):
        raise NotPermitted("Only a coordinator of the school or district records its "
                           "calendar.", code="coordinator-required")


def _reason(reason: str) -> str:
    if not reason or not reason.strip():
        raise RuleViolated("Say why: a calendar exception carries a reason.",
                           code="reason-required", field="reason")
    return reason.strip()


class SchoolCalendar(Aggregate):
    """One school's (or district's) calendar; the id is derived from the organisation id.

    Events: ``SchoolCalendarOpened``, ``SchoolYearRecorded`` (again for the same year: the
    later one replaces it, the earlier stays in history), ``SchoolDayExceptionRecorded``.
    """

    @staticmethod
    def create_id(organisation_id: str) -> UUID:
        return uuid5(CALENDAR_NAMESPACE, f"school-calendar/{organisation_id}")

    @classmethod
    def open(cls, *, actor: Actor, organisation_id: str, opened_on: date) -> SchoolCalendar:
        _require_coordinator(actor, organisation_id)
        return cls(actor_id=actor.id, actor_role=str(actor.role), business_date=opened_on,
                   organisation_id=organisation_id)

    @event("SchoolCalendarOpened")
    def __init__(self, *, actor_id: str, actor_role: str, business_date: date,
                 organisation_id: str) -> None:
        """A school or district began keeping its calendar in the ledger."""
        self.organisation_id = organisation_id
        self.years: dict[str, SchoolYear] = {}
        self.exceptions: dict[date, bool] = {}

    def record_year(self, *, actor: Actor, school_year: str, first_day: date, last_day: date,
                    breaks: list[dict[str, Any]], recorded_on: date) -> None:
        """Instructional days of a year: from ``first_day`` to ``last_day``, weekdays, less
        each break or holiday (``{"name", "first_day", "last_day"}``)."""
        _require_coordinator(actor, self.organisation_id)
        starts, ends = _year_bounds(school_year)
        if not starts <= first_day <= last_day <= ends:
            raise RuleViolated(
                f"The first and last instructional days must lie in order within "
                f"{school_year} ({starts} to {ends}).", code="days-outside-school-year",
                field="first_day" if not starts <= first_day <= ends else "last_day")
        plain: list[dict[str, str]] = []
        for index, item in enumerate(breaks):
            name = str(item.get("name", "")).strip()
            b_first, b_last = item.get("first_day"), item.get("last_day")
            if not name or not isinstance(b_first, date) or not isinstance(b_last, date):
                raise RuleViolated("Each break has a name, a first and a last day.",
                                   code="bad-break", field=f"breaks.{index}")
            if not first_day <= b_first <= b_last <= last_day:
                raise RuleViolated(
                    f"Break {name!r} must lie in order between the first and the last "
                    "instructional days.", code="break-outside-school-year",
                    field=f"breaks.{index}")
            plain.append({"name": name, "first_day": b_first.isoformat(),
                          "last_day": b_last.isoformat()})
        self._year_recorded(actor_id=actor.id, actor_role=str(actor.role),
                            business_date=recorded_on, school_year=school_year,
                            first_day=first_day.isoformat(), last_day=last_day.isoformat(),
                            breaks=plain)

    @event("SchoolYearRecorded")
    def _year_recorded(self, *, actor_id: str, actor_role: str, business_date: date,
                       school_year: str, first_day: str, last_day: str,
                       breaks: list[dict[str, str]]) -> None:
        """A school year's instructional days and breaks were recorded (or recorded again,
        replacing the earlier record of that year for every later entry)."""
        self.years[school_year] = SchoolYear(
            school_year, date.fromisoformat(first_day), date.fromisoformat(last_day),
            tuple((b["name"], date.fromisoformat(b["first_day"]),
                   date.fromisoformat(b["last_day"])) for b in breaks))

    def record_exception(self, *, actor: Actor, day: date, school_day: bool, reason: str,
                         recorded_on: date) -> None:
        """One date differs from the year (a snow day closed school; a make-up day opened
        it); audited with who and why."""
        _require_coordinator(actor, self.organisation_id)
        self._exception_recorded(actor_id=actor.id, actor_role=str(actor.role),
                                 business_date=recorded_on, day=day.isoformat(),
                                 school_day=bool(school_day), reason=_reason(reason))

    @event("SchoolDayExceptionRecorded")
    def _exception_recorded(self, *, actor_id: str, actor_role: str, business_date: date,
                            day: str, school_day: bool, reason: str) -> None:
        """A coordinator said one date is (or is not) a school day, whatever the year says,
        with the reason."""
        self.exceptions[date.fromisoformat(day)] = school_day

    # -- queries ---------------------------------------------------------------------

    def is_school_day(self, day: date) -> bool | None:
        """True or False from an exception or a recorded year; None when neither covers it."""
        if day in self.exceptions:
            return self.exceptions[day]
        year = self.years.get(school_year_of(day))
        return None if year is None else year.school_day(day)

    def days(self, day: date) -> SchoolDays:
        """Whether ``day`` is a school day and in a school week; the safer reading where the
        calendar is silent."""
        monday = day - timedelta(days=day.weekday())
        week = [self.is_school_day(monday + timedelta(days=i)) for i in range(7)]
        today = week[day.weekday()]
        in_session = any(known is True for known in week)
        if today is None or (not in_session and None in week):
            return SchoolDays.unknown()
        return SchoolDays(school_day=today, school_week=in_session)
