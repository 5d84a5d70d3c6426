"""Where the ledger finds a minor's birth date: the personal-data vault, never an event."""

from __future__ import annotations

from datetime import date
from typing import Protocol


class BirthDates(Protocol):
    """Where learners' birth dates are kept, outside the events (the personal-data vault in
    the service; a dict in tests of the ledger alone). See decision 038."""

    def record_birth_date(self, learner_id: str, born_on: date) -> None: ...

    def birth_date(self, learner_id: str) -> date | None: ...


class BirthDatesInMemory:
    """For a ledger without a vault (tests, benchmarks): this process's matches only."""

    def __init__(self) -> None:
        self._dates: dict[str, date] = {}

    def record_birth_date(self, learner_id: str, born_on: date) -> None:
        self._dates[learner_id] = born_on

    def birth_date(self, learner_id: str) -> date | None:
        return self._dates.get(learner_id)
