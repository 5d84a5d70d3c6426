"""The projector's own bookkeeping, kept in the same database as the read models.

Written in the same transaction as every read-model change, so a crash can never
leave a read model ahead of, or behind, the position it claims.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Engine, Integer, MetaData, String, Table, inspect

metadata = MetaData()

consumer_positions = Table(
    "consumer_positions",
    metadata,
    Column("consumer", String(100), primary_key=True),
    Column("topic", String(249), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
    Column("last_event_id", String(200), nullable=True),
)

applied_versions = Table(
    "applied_versions",
    metadata,
    Column("consumer", String(100), primary_key=True),
    Column("aggregate_id", String(100), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("position", BigInteger, nullable=False),
)

projection_swaps = Table(
    "projection_swaps",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("projection", String(100), nullable=False),
    Column("action", String(20), nullable=False),
    Column("positions", String(4000), nullable=False),
    Column("events", BigInteger, nullable=False),
)
"""One row per rebuild swap or check: written first in the swap's transaction, which takes
SQLite's write lock before the live positions are read (decision 021)."""


def ensure_indexes(engine: Engine, tables: list[Table]) -> list[str]:
    """Create the indexes of ``tables`` (existing ones) that their database lacks, judged by
    columns, not names: ``create_all`` adds none to a table that exists, and a table a
    rebuild swapped in keeps its indexes under the rebuild's suffixed names. An index whose
    columns the table lacks is left to the rebuild of that earlier layout. Returns the names
    created."""
    inspector = inspect(engine)
    created = []
    for table in tables:
        if not inspector.has_table(table.name):
            continue
        present = {tuple(ix["column_names"]) for ix in inspector.get_indexes(table.name)}
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        for index in table.indexes:
            wanted = tuple(c.name for c in index.columns)
            # A table of an earlier layout, without the index's columns, is rebuilt
            # instead (``Projector.legacy_layouts``), and its new table has the index.
            if wanted not in present and columns.issuperset(wanted):
                index.create(engine)
                created.append(str(index.name))
    return created
