"""Helpers shared by the read models: exact hours, reading JSON, batched row I/O (writing
canonical JSON is ``domain.contract.canonical``).

The folds themselves stay pure (no I/O); the storage classes use the two row helpers to
read the rows a poll's events touch in one query and write them back in one
``executemany``, which is what lets a replay run at tens of thousands of events a second.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from operator import itemgetter
from typing import Any, TypeVar

import orjson
from sqlalchemy import Column, Connection, Table, delete, insert, select

T = TypeVar("T")

MINUTES_PER_HOUR = Decimal(60)
CHUNK = 500
"""Keys per ``IN (...)`` list: well under SQLite's and PostgreSQL's parameter limits."""


def hours(minutes: int, places: str = "0.01") -> Decimal:
    """Minutes as exact hours, ``Decimal(minutes) / 60`` quantized (half up); never a float."""
    return (Decimal(minutes) / MINUTES_PER_HOUR).quantize(Decimal(places), ROUND_HALF_UP)


_LONG_NUMBER = re.compile(r"\d{19}")
_DIGITS_AS_NINES = bytes(0x39 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
"""A table for ``bytes.translate``: every ASCII digit becomes ``9``, every other byte a
space, so that a run of 19 digits is a run of 19 nines, which ``in`` finds with the
library's substring search: 3-4 times quicker than the regular expression, which looked
at every position of every record a replay decodes. JSON numbers have ASCII digits only."""
_NINETEEN_NINES = b"9" * 19


def loads(text: str | bytes | None) -> Any:
    """JSON text or bytes as Python values: orjson, except where it would not give what
    ``json`` gives. orjson reads an integer beyond 64 bits as a float (inexact), so text
    holding a run of 19 digits anywhere goes through ``json``, as does what orjson refuses
    (``NaN``, ``Infinity``)."""
    if text is None:
        return None
    if isinstance(text, bytes):
        long_number = _NINETEEN_NINES in text.translate(_DIGITS_AS_NINES)
    else:
        long_number = _LONG_NUMBER.search(text) is not None
    if not long_number:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def chunks(keys: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(keys), size):
        yield keys[start:start + size]


def load_rows(conn: Connection, table: Table, key: Column[Any],
              keys: Iterable[Any]) -> dict[Any, dict[str, Any]]:
    """The rows whose ``key`` is among ``keys``, by key, in as few queries as possible."""
    wanted = sorted(set(keys))
    found: dict[Any, dict[str, Any]] = {}
    for part in chunks(wanted):
        for row in conn.execute(select(table).where(key.in_(part))).mappings():
            found[row[key.name]] = dict(row)
    return found


def replace_rows(conn: Connection, table: Table, key: Column[Any],
                 rows: Sequence[dict[str, Any]]) -> None:
    """Write ``rows`` (whole rows), replacing any stored row with the same key.

    Delete-then-insert is the one upsert SQLite and PostgreSQL share in SQLAlchemy Core,
    and both statements are batched.
    """
    if not rows:
        return
    for part in chunks([r[key.name] for r in rows]):
        conn.execute(delete(table).where(key.in_(part)))
    insert_rows(conn, table, rows)


_COMPILED: dict[tuple[str, str, tuple[str, ...]], tuple[str, tuple[str, ...] | None]] = {}


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """``INSERT`` many rows through the driver's ``executemany`` with a statement compiled
    once per table: SQLAlchemy's per-row parameter processing was a fifth of a replay.
    Only for columns whose values the driver takes as they are (str, int, bool, None)."""
    if not rows:
        return
    columns = tuple(rows[0])
    cache_key = (conn.dialect.name, table.name, columns)
    found = _COMPILED.get(cache_key)
    if found is None:
        compiled = insert(table).compile(dialect=conn.dialect, column_keys=list(columns))
        order = tuple(compiled.positiontup or ()) if compiled.positional else None
        found = (str(compiled), order)
        _COMPILED[cache_key] = found
    sql, order = found
    if order is not None:
        values = itemgetter(*order)
        conn.exec_driver_sql(sql, [values(r) for r in rows] if len(order) > 1
                             else [(values(r),) for r in rows])
    else:
        conn.exec_driver_sql(sql, list(rows))


def evolved(state: T, **changes: Any) -> T:
    """A copy of the frozen dataclass ``state`` with ``changes``: what
    ``dataclasses.replace`` does, without re-running ``__init__`` (a fold calls it for
    every event, and ``replace`` was most of the replay's time)."""
    new = object.__new__(type(state))
    new.__dict__.update(state.__dict__)
    new.__dict__.update(changes)
    return new
