"""The projections' storage without a broker, on both stores: the tables do not depend on
how events were grouped into polls (live: a few a poll; replay: thousands), a poll reads
only the hour entries its events name (decision 025), and a read model left in the earlier
layout is detected. Plus the fast record decoding and canonical JSON against their
reference implementations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, MetaData, Table, select, text

from domain.contract import cloudevents
from domain.contract.canonical import canonical_text
from domain.contract.envelope import Envelope
from infra.consumer import Delivery, from_record
from infra.database import read_model_engine
from infra.settings import Settings
from projections import apprenticeship_hours, transcript
from projections.common import loads
from projections.entry_rows import load_entries
from services.workers.projector import Projector
from services.workers.rebuild import PROJECTION_KINDS
from tests.integration.test_projections_support import record_of
from tests.unit.projections.history import generate

pytestmark = pytest.mark.integration


class _Reader:
    def advance(self, delivery: Delivery) -> None:
        pass


@pytest.fixture
def engine(store_settings: Settings) -> Iterator[Engine]:
    engine = read_model_engine(store_settings)
    yield engine
    engine.dispose()


def _apply(projector: Projector, envelopes: list[Envelope], poll: int) -> None:
    for start in range(0, len(envelopes), poll):
        batch = [Delivery(0, start + i, e) for i, e in enumerate(envelopes[start:start + poll])]
        projector.apply_batch(_Reader(), batch)  # type: ignore[arg-type]


def _dump(engine: Engine, tables: list[Table]) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with engine.connect() as conn:
        for t in tables:
            keys = list(t.primary_key.columns)
            out[t.name.split("__")[0]] = [tuple(r) for r in conn.execute(
                select(t).order_by(*keys))]
    return out


def test_tables_do_not_depend_on_how_events_are_grouped_into_polls(engine: Engine) -> None:
    history = generate(60, seed=9).envelopes
    dumps_by_poll = []
    for n, poll in enumerate((1, 7, 1000)):
        suffix = f"__g{n}"
        md = MetaData()
        fresh = [PROJECTION_KINDS[k].fresh(md, suffix) for k in PROJECTION_KINDS]
        md.create_all(engine)
        projector = Projector(engine, bootstrap="unused", topic=f"t{n}", consumer_name=f"g{n}",
                              projections=[p for p, _ in fresh])
        _apply(projector, history, poll)
        dumps_by_poll.append(_dump(engine, [t for _, tables in fresh for t in tables]))
    assert dumps_by_poll[0] == dumps_by_poll[1] == dumps_by_poll[2]
    assert len(dumps_by_poll[0]["transcript_hour_entry"]) > 300


def test_a_poll_reads_only_the_entries_its_events_name(engine: Engine) -> None:
    history = generate(40, seed=4).envelopes
    projector = Projector(engine, bootstrap="unused", topic="t")
    _apply(projector, history, 500)
    approval = next(e for e in reversed(history) if e.event_type == "HoursApproved")
    for table in (transcript.LIVE_TABLES.entry, apprenticeship_hours.LIVE_TABLES.entry):
        with engine.connect() as conn:
            stored = conn.execute(text(f"SELECT count(*) FROM {table.name} WHERE placement_id "
                                       f"= '{approval.aggregate_id}'")).scalar()
            read = load_entries(conn, table, [approval])
        assert stored and stored > 1
        assert list(read) == [approval.aggregate_id]
        assert list(read[approval.aggregate_id]) == [approval.data["entry_id"]]
    assert projector.legacy_layouts() == []


def test_an_earlier_layout_is_detected(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE transcript_experience (placement_id VARCHAR(100) "
                          "PRIMARY KEY, entries TEXT NOT NULL)"))
    projector = Projector(engine, bootstrap="unused", topic="t")
    assert projector.legacy_layouts() == ["transcripts"]


def test_fast_decoding_gives_the_reference_envelope() -> None:
    for e in generate(30, seed=1).envelopes:
        _, value, headers = record_of(e)
        assert from_record(headers, value) == cloudevents.from_record(headers, value) == e
    _, value, headers = record_of(generate(1, seed=1).envelopes[0])
    for broken_headers, broken_value in (
        ([h for h in headers if h[0] != "ce_position"], value),
        ([(k, b"x" if k == "ce_aggregateversion" else v) for k, v in headers], value),
        (headers, b"{not json"),
    ):
        with pytest.raises(cloudevents.MalformedRecord):
            cloudevents.from_record(broken_headers, broken_value)
        with pytest.raises(cloudevents.MalformedRecord):
            from_record(broken_headers, broken_value)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_canonical_json_is_what_the_json_module_writes(value: Any) -> None:
    reference = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_text(value) == reference
    assert loads(reference) == value
    assert loads(reference.encode("utf-8")) == value  # as records and stored bodies come
