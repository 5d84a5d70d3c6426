"""A report's cut-off without ``--as-of`` reads back from the last event instead of decoding
the whole log (decision 060): the same position and recording time as the full scan, also
when positions have gaps wider than the first window (PostgreSQL sequences can skip)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from services.jobs.reporting import resolve_cutoff
from services.ledger import Ledger

FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Notification:
    id: int


@dataclass(frozen=True)
class Event:
    timestamp: datetime


class Recorder:
    def __init__(self, ids: list[int]) -> None:
        self.ids = ids
        self.decoded = 0

    def max_notification_id(self) -> int | None:
        return max(self.ids, default=None)

    def select_notifications(self, *, start: int, limit: int, stop: int,
                             topics: tuple[str, ...] = (), inclusive_of_start: bool = True
                             ) -> list[Notification]:
        found = [i for i in self.ids if (i > start or (inclusive_of_start and i == start))
                 and i <= stop]
        return [Notification(i) for i in found[:limit]]


class Mapper:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def to_domain_event(self, n: Notification) -> Event:
        self.recorder.decoded += 1
        return Event(datetime(2025, 7, 1, tzinfo=UTC) + timedelta(minutes=n.id))


class FakeLedger:
    def __init__(self, ids: list[int]) -> None:
        self.recorder = Recorder(ids)
        self.mapper = Mapper(self.recorder)


@pytest.mark.parametrize("ids", [
    list(range(1, 5001)),
    [3, 4, 9, 2_500, 40_000, 40_001],  # gaps wider than the first window (1,000)
    [7],
    [],
])
def test_the_last_event_alone_gives_the_cut_off_of_the_full_scan(ids: list[int]) -> None:
    ledger = cast(Ledger, FakeLedger(ids))
    last = max(ids, default=0)
    between = [p for p in (39_999, last - 1) if 0 < p < last and p not in ids]  # no event
    for position in [None, 0, *ids[:3], *ids[-3:], *between]:
        fast = resolve_cutoff(ledger, position=position)
        decoded = cast(Any, ledger).recorder.decoded
        assert decoded <= 1  # one event read back, not the log
        assert fast == resolve_cutoff(ledger, position=position, as_of=FAR_FUTURE)
        cast(Any, ledger).recorder.decoded = 0


def test_a_cut_off_on_an_empty_log_is_position_0() -> None:
    ledger = cast(Ledger, FakeLedger([]))
    assert resolve_cutoff(ledger) == (0, datetime.min.replace(tzinfo=UTC))
