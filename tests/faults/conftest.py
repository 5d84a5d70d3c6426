"""Fault scenarios run a reduced loop by default and the full count with
``WBL_FAULT_ITERATIONS=N`` (e.g. ``WBL_FAULT_ITERATIONS=100 python -m pytest tests/faults``);
their time limit grows with the count."""

from __future__ import annotations

import os

import pytest

ITERATIONS = int(os.environ.get("WBL_FAULT_ITERATIONS", "8"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.timeout(300 + 15 * ITERATIONS))


@pytest.fixture
def iterations() -> int:
    return ITERATIONS
