"""Hour entries kept one row each, so an event costs the same however long the history.

The transcript and apprenticeship-hours projections used to keep a placement's entries as
one JSON document in its row, loaded, decoded, re-encoded and rewritten for every poll that
touched the placement: in live operation (a few events a poll) the cost of one approval grew
with the placement's history (decision 025). Now each of the two projections keeps its own
entries table (so each can still be rebuilt alone), keyed by (placement, entry): a poll
reads only the entries its events name, the fold moves the placement's totals by the
difference (``hour_entries.entry_changes``), and only the entries that changed are written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, Text, select, tuple_

from domain.contract.canonical import canonical_text
from domain.contract.envelope import Envelope
from projections.common import chunks, insert_rows, load_rows, loads, replace_rows
from projections.hour_entries import HOUR_EVENTS, Entry, entry_referenced

Key = tuple[str, str]
"""(placement id, entry id)."""


def make_entry_table(md: MetaData, name: str) -> Table:
    return Table(
        name, md,
        Column("placement_id", String(100), primary_key=True),
        Column("entry_id", String(100), primary_key=True),
        Column("work_date", String(10), nullable=False),
        Column("minutes", Integer, nullable=False),
        Column("kind", String(30), nullable=False),
        Column("status", String(20), nullable=False),
        Column("allocations", Text, nullable=False),
        Column("supersedes", String(100)),
    )


def _to_row(placement_id: str, e: Entry) -> dict[str, Any]:
    return {"placement_id": placement_id, "entry_id": e.entry_id, "work_date": e.work_date,
            "minutes": e.minutes, "kind": e.kind, "status": e.status,
            "allocations": (canonical_text([list(a) for a in e.allocations])
                            if e.allocations else "[]"),
            "supersedes": e.supersedes}


def _from_row(row: Mapping[Any, Any]) -> Entry:
    return Entry(entry_id=row["entry_id"], work_date=row["work_date"],
                 minutes=int(row["minutes"]), kind=row["kind"], status=row["status"],
                 allocations=tuple((str(w), int(m)) for w, m in loads(row["allocations"]))
                 if row["allocations"] != "[]" else (),
                 supersedes=row["supersedes"])


def load_entries(conn: Connection, table: Table, events: Sequence[Envelope],
                 whole: Iterable[str] = ()) -> dict[str, dict[str, Entry]]:
    """The stored entries a poll's events name, by placement; every entry of the
    placements in ``whole``. Placements first matched in this poll have none stored, and
    an entry logged earlier in the poll needs no read."""
    new_placements = {e.aggregate_id for e in events if e.event_type == "LearnerMatched"}
    seen: set[Key] = set()
    wanted: list[Key] = []
    for e in events:
        if e.event_type not in HOUR_EVENTS or e.aggregate_id in new_placements:
            continue
        for entry_id in entry_referenced(e):
            key = (e.aggregate_id, entry_id)
            if key not in seen:
                seen.add(key)
                wanted.append(key)
    found: dict[str, dict[str, Entry]] = {}
    for part in chunks(sorted(wanted), 400):
        query = select(table).where(tuple_(table.c.placement_id, table.c.entry_id).in_(part))
        for row in conn.execute(query).mappings():
            found.setdefault(row["placement_id"], {})[row["entry_id"]] = _from_row(row)
    for part in chunks(sorted(set(whole) - new_placements)):
        for row in conn.execute(select(table).where(table.c.placement_id.in_(part))).mappings():
            found.setdefault(row["placement_id"], {})[row["entry_id"]] = _from_row(row)
    return found


def save_entries(conn: Connection, table: Table, stored: Mapping[str, Mapping[str, Entry]],
                 after: Mapping[str, Mapping[str, Entry]]) -> None:
    """Write the entries that differ from what was stored: new ones inserted, a changed
    status updated in place, anything else replaced."""
    inserts: list[dict[str, Any]] = []
    statuses: list[tuple[str, str, str]] = []
    replaced: list[Key] = []
    for placement_id in sorted(after):
        before = stored.get(placement_id, {})
        for entry_id, entry in sorted(after[placement_id].items()):
            old = before.get(entry_id)
            if old is None:
                inserts.append(_to_row(placement_id, entry))
            elif old == entry:
                continue
            elif evolved_only_status(old, entry):
                statuses.append((entry.status, placement_id, entry_id))
            else:
                replaced.append((placement_id, entry_id))
                inserts.append(_to_row(placement_id, entry))
    if statuses:
        conn.exec_driver_sql(_status_sql(conn, table), statuses)
    if replaced:
        conn.exec_driver_sql(_delete_sql(conn, table), [tuple(k) for k in replaced])
    insert_rows(conn, table, inserts)


def evolved_only_status(old: Entry, new: Entry) -> bool:
    return (old.work_date, old.minutes, old.kind, old.allocations, old.supersedes) == (
        new.work_date, new.minutes, new.kind, new.allocations, new.supersedes)


def _param(conn: Connection) -> str:
    return "%s" if conn.dialect.paramstyle in ("format", "pyformat") else "?"


def _status_sql(conn: Connection, table: Table) -> str:
    p = _param(conn)
    return (f"UPDATE {table.name} SET status = {p} WHERE placement_id = {p} "
            f"AND entry_id = {p}")


def _delete_sql(conn: Connection, table: Table) -> str:
    p = _param(conn)
    return f"DELETE FROM {table.name} WHERE placement_id = {p} AND entry_id = {p}"


class HasEntries(Protocol):
    @property
    def entries(self) -> Mapping[str, Entry]: ...


S = TypeVar("S", bound=HasEntries)


def fold_placement_rows(
    conn: Connection, table: Table, key: Column[Any], entry_table: Table,
    events: Sequence[Envelope], evolve: Callable[[S | None, Envelope], S | None],
    from_row: Callable[[Mapping[Any, Any], Mapping[str, Entry]], S],
    to_row: Callable[[S], dict[str, Any]], whole: Iterable[str] = (),
) -> None:
    """Apply a poll's placement events to a projection kept as one row per placement plus
    one row per hour entry: load the rows and the entries the events name, fold every
    event in memory, and write back each changed row once and only the changed entries.
    The transcripts and the apprenticeship hours share it; their folds differ."""
    placement_events = [e for e in events if e.aggregate_type == "Placement"]
    if not placement_events:
        return
    stored = load_rows(conn, table, key, (e.aggregate_id for e in placement_events))
    stored_entries = load_entries(conn, entry_table, placement_events, whole=whole)
    states: dict[str, S | None] = {
        k: from_row(v, stored_entries.get(k, {})) for k, v in stored.items()}
    changed: set[str] = set()
    for event in placement_events:
        before = states.get(event.aggregate_id)
        after = evolve(before, event)
        if after is not None and after is not before:
            states[event.aggregate_id] = after
            changed.add(event.aggregate_id)
    rows = []
    entries: dict[str, Mapping[str, Entry]] = {}
    for placement_id in sorted(changed):
        state = states[placement_id]
        if state is not None:
            rows.append(to_row(state))
            entries[placement_id] = state.entries
    replace_rows(conn, table, key, rows)
    save_entries(conn, entry_table, stored_entries, entries)
