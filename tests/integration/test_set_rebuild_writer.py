"""The set-based rebuild's write-behind (decision 071), on both stores: every batch is
written, in the order made, whether written behind or inline; a batch the database refuses
is raised to the computing thread, no later batch is written, and no writer thread is left.
The rebuild's equality with the live folds (``test_set_based_rebuild.py``) runs with it on."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, exc, select

from services.workers import set_rebuild

pytestmark = pytest.mark.integration


def _table(engine: Engine, name: str) -> Table:
    table = Table(name, MetaData(), Column("id", Integer, primary_key=True,
                                           autoincrement=False),
                  Column("label", String(40), nullable=False))
    table.create(engine)
    return table


def _writers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "set-rebuild-writer"]


@pytest.mark.parametrize("behind", [True, False], ids=["behind", "inline"])
def test_every_batch_is_written_in_order(engine: Engine, behind: bool,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(set_rebuild, "FLUSH_ROWS", 7)
    table = _table(engine, f"writer_order_{int(behind)}")
    writer = set_rebuild._Writer(engine, behind=behind)
    for n in range(100):
        writer.add(table, {"id": n, "label": f"row {n}"})
    writer.close()
    with engine.connect() as conn:
        rows = conn.execute(select(table.c.id, table.c.label).order_by(table.c.id)).all()
    assert [tuple(r) for r in rows] == [(n, f"row {n}") for n in range(100)]
    assert _writers() == []


def test_a_refused_batch_is_raised_and_nothing_after_it_is_written(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(set_rebuild, "FLUSH_ROWS", 10)
    table = _table(engine, "writer_refused")
    writer = set_rebuild._Writer(engine, behind=True)
    with pytest.raises(exc.IntegrityError):
        try:
            for n in range(10):  # the first batch: written
                writer.add(table, {"id": n, "label": "first"})
            for n in range(5, 15):  # the second repeats ids 5-9: refused
                writer.add(table, {"id": n, "label": "second"})
            for n in range(100, 200):  # later batches: never written
                writer.add(table, {"id": n, "label": "later"})
            writer.close()
        finally:
            writer.abandon()
    with engine.connect() as conn:
        labels = conn.execute(select(table.c.label).distinct()).scalars().all()
    assert labels == ["first"]
    assert _writers() == []
