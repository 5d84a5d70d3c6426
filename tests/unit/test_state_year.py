"""The state-year generator (benchmarks/state_year.py) makes events the system accepts: each
body matches its published JSON Schema, the domain's event classes take them and the store
keeps them at the generated positions, every placement loads through its aggregate, and
every projection folds them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from uuid import UUID

import jsonschema
import pytest
from sqlalchemy import create_engine

from benchmarks.state_year import StateYear, write_profiles, write_store
from domain.contract.cloudevents import from_record, to_record
from domain.placement import Placement
from infra.settings import Settings
from projections.registry import default_projections
from projections.tables import metadata
from services.bootstrap import build_ledger, build_vault
from services.ledger import BirthDatesInMemory

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
EVENTS = 6000


@pytest.fixture(scope="module")
def year() -> list:  # type: ignore[type-arg]
    return list(StateYear(EVENTS, seed=3).envelopes())


def test_same_seed_same_history_and_the_mix_is_there(year: list) -> None:  # type: ignore[type-arg]
    again = list(StateYear(EVENTS, seed=3).envelopes())
    assert [(e.event_id, dict(e.data)) for e in again] == [(e.event_id, dict(e.data))
                                                           for e in year]
    assert [e.position for e in year] == list(range(1, EVENTS + 1))
    kinds = Counter(e.data["wbl_type"] for e in year if e.event_type == "LearnerMatched")
    assert {"JobShadowing", "PaidInternship", "CooperativeEducation", "Apprenticeship",
            "OnTheJob"} <= set(kinds)
    types = Counter(e.event_type for e in year)
    for needed in ("OrganisationRegistered", "ApprenticeshipProgramDefined",
                   "OpportunityPosted", "HoursApproved", "HoursRejected", "HoursCorrected",
                   "PlacementEvaluated", "CredentialIssued", "LearnerDayOpened",
                   "DayMinutesClaimed", "DayMinutesReleased", "PlacementCompleted"):
        assert types[needed] > 0, needed
    versions: dict[str, int] = {}
    for e in year:  # each aggregate's versions 1, 2, 3... in store order
        assert e.aggregate_version == versions.get(e.aggregate_id, 0) + 1
        versions[e.aggregate_id] = e.aggregate_version
    recorded = [e.recorded_at for e in year]
    assert recorded == sorted(recorded)


def test_bodies_match_the_published_schemas(year: list) -> None:  # type: ignore[type-arg]
    schemas = {}
    for e in year:
        name = f"{e.event_type}.v{e.schema_version}.json"
        if name not in schemas:
            schemas[name] = json.loads((SCHEMAS / name).read_text())
        jsonschema.validate(dict(e.data), schemas[name])


def test_stored_as_the_ledger_stores_and_read_back_the_same(year: list,  # type: ignore[type-arg]
                                                            tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    ledger = build_ledger(settings, birth_dates=BirthDatesInMemory())
    try:
        assert write_store(ledger, year, batch=1000) == EVENTS
        notes = ledger.recorder.select_notifications(start=0, limit=EVENTS + 1)
        assert [n.id for n in notes] == list(range(1, EVENTS + 1))
        for note, envelope in zip(notes, year, strict=True):
            record = to_record(ledger.mapper.to_domain_event(note), note.topic, note.id,
                               settings.event_source)
            back = from_record(record.headers, record.value)
            assert (back.event_id, back.event_type, dict(back.data)) == (
                envelope.event_id, envelope.event_type, dict(envelope.data))
        placements = {e.aggregate_id for e in year if e.event_type == "LearnerMatched"}
        for placement_id in sorted(placements)[:60]:
            placement = ledger.repository.get(UUID(placement_id))
            assert isinstance(placement, Placement)
    finally:
        ledger.close()
    assert write_profiles(build_vault(settings), StateYear(EVENTS, seed=3).profiles()) > 0


def test_every_projection_folds_it(year: list) -> None:  # type: ignore[type-arg]
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as conn:
        for projection in default_projections():
            projection.apply_many(conn, year)
