"""One canonical JSON (issue 15): before the three copies were merged into
``domain.contract.canonical``, this test showed that the merged function writes the same
bytes as each of them, over generated values of every kind they were given: event bodies
(dates, times, decimals, UUIDs, enums, tuples, sets of one), read-model columns and
checkpoints (plain JSON values, big integers, any Unicode), state reports (plain JSON).
The former copies are kept here verbatim as the reference."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Any
from uuid import UUID

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.contract.canonical import canonical_json, canonical_text


# -- the former copies, verbatim ----------------------------------------------------------
def _cloudevents_default(value: Any) -> Any:  # domain/contract/cloudevents.py until this change
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot publish a {type(value).__name__} in an event body")


def cloudevents_canonical_json(data: Any) -> bytes:
    return json.dumps(data, default=_cloudevents_default, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def read_models_dumps_bytes(value: Any) -> bytes:  # projections/common.py until this change
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8")


def state_report_canonical(report: Any) -> bytes:  # projections/state_report.py until now
    return json.dumps(report, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


# -- generated values -----------------------------------------------------------------------
class Colour(StrEnum):
    RED = "red"
    BLUE = "blåe"


class Level(Enum):
    ONE = 1
    TWO = "two"


_plain = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=25)

_zones = st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5,
                                                                                 minutes=30))])
_event_leaf = (
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63) | st.text()
    | st.dates() | st.datetimes(timezones=_zones) | st.datetimes()
    | st.decimals(allow_nan=False, allow_infinity=False, places=2) | st.uuids()
    | st.sampled_from(list(Colour)) | st.sampled_from(list(Level))
    | st.tuples(st.integers(), st.text()) | st.frozensets(st.integers(), max_size=1))
_event = st.recursive(
    _event_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=25)


@settings(max_examples=400, deadline=None)
@given(_event)
def test_the_same_bytes_as_the_event_bodies_copy(value: Any) -> None:
    assert canonical_json(value) == cloudevents_canonical_json(value)


@settings(max_examples=400, deadline=None)
@given(_plain)
def test_the_same_bytes_as_the_read_models_and_the_state_reports_copies(value: Any) -> None:
    merged = canonical_json(value)
    assert merged == read_models_dumps_bytes(value)
    assert merged == state_report_canonical(value)
    assert canonical_text(value) == merged.decode("utf-8")


def test_an_event_body_with_every_kind_of_field() -> None:
    body = {"work_date": date(2026, 9, 1), "at": datetime(2026, 9, 1, 8, 30, tzinfo=UTC),
            "wage": Decimal("16.50"), "id": UUID(int=7), "kind": Colour.BLUE,
            "level": Level.TWO, "pair": ("a", 1), "minutes": 450, "note": "déjà vu ✓",
            "big": 2**70}
    assert canonical_json(body) == cloudevents_canonical_json(body)
    assert canonical_json(body).startswith(b'{"at":"2026-09-01T08:30:00+00:00","big":')
