"""Canonical JSON: one function for every byte the ledger hashes, signs or publishes.

Sorted keys, no spaces, UTF-8 with non-ASCII kept, dates and times as ISO 8601, decimals and
UUIDs as strings, enums as their values, sets and tuples as lists. The same value always
gives the same bytes, so an event body on the topic, an audit entry's hash, a checkpoint's
signature, a rebuilt read-model row and a state report's content hash can each be computed
again, years later, by anyone.

Three copies of this existed (event bodies, read models, state reports); they were proven
to write the same bytes before they were merged (``tests/unit/test_canonical_json.py``
compares this function with each former copy over generated values).

orjson (C) writes exactly what ``json.dumps(value, sort_keys=True, separators=(",", ":"),
ensure_ascii=False, default=...)`` writes for every value events carry, several times
faster. What orjson refuses (integers beyond 64 bits, lone surrogates, non-string keys)
goes through ``json``. Floats never occur (hours are integer minutes, money is a decimal
string); orjson would write an exponent as ``1e16`` where ``json`` writes ``1e+16``.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import orjson

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot write a {type(value).__name__} as canonical JSON")


def canonical_json(value: Any) -> bytes:
    """``value`` as canonical JSON bytes."""
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, default=_default, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8")


def canonical_text(value: Any) -> str:
    """``value`` as canonical JSON text (``canonical_json`` decoded)."""
    return canonical_json(value).decode("utf-8")
