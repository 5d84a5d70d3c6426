"""Indexes added to a read model after its tables were made (decision 070) reach existing
databases: the live projector creates what is missing when it starts (its schema upgrade,
under its lease), judged by columns, once."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, MetaData, inspect

from projections.apprenticeship_hours import LIVE_TABLES
from services.workers.projector import Projector

pytestmark = pytest.mark.integration

ORG_LIST = ("organisation_id", "learner_id", "program_id", "position")


def _indexes(engine: Engine) -> list[tuple[str, ...]]:
    return [tuple(ix["column_names"])
            for ix in inspect(engine).get_indexes(LIVE_TABLES.placement.name)]


def test_an_index_added_since_reaches_an_existing_database_once(engine: Engine) -> None:
    # the table as an earlier release made it: the same columns, without the new index
    earlier = LIVE_TABLES.placement.to_metadata(MetaData())
    for index in list(earlier.indexes):
        if tuple(c.name for c in index.columns) == ORG_LIST:
            earlier.indexes.discard(index)
    earlier.create(engine)
    assert ORG_LIST not in _indexes(engine)
    projector = Projector(engine, bootstrap="127.0.0.1:9", topic="wbl.unused.v1")
    assert ORG_LIST not in _indexes(engine), "made on construction, not at the upgrade"
    projector.upgrade_schema()
    assert _indexes(engine).count(ORG_LIST) == 1
    # a restarted projector finds it there and makes no second one
    Projector(engine, bootstrap="127.0.0.1:9", topic="wbl.unused.v1").upgrade_schema()
    assert _indexes(engine).count(ORG_LIST) == 1
