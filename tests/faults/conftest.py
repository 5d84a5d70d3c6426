"""Fault scenarios run a reduced loop by default and the full count with
``WBL_FAULT_ITERATIONS=N`` (e.g. ``WBL_FAULT_ITERATIONS=100 python -m pytest tests/faults``)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def iterations() -> int:
    return int(os.environ.get("WBL_FAULT_ITERATIONS", "8"))
