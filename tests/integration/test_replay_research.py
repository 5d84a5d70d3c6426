"""Replays of history and research exports, on both stores: a replay folds only what was
recorded (or had happened) by a date, into its own store; research exports carry no
identities, and the same key gives the same pseudonyms across exports."""

from __future__ import annotations

import csv
import os
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow.parquet as pq
from sqlalchemy import text

from domain.learner import LearnerProfile, Sex
from infra.database import personal_data_vault
from infra.settings import Settings
from services.bootstrap import build_ledger
from services.jobs.replay import ReplayBy, replay_into, sqlite_engine
from services.jobs.reporting import envelopes_until
from services.jobs.research import research_tables, write_tables
from tests.support import placement_story


def audit_rows(path: Path) -> int:
    engine = sqlite_engine(str(path))
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM audit_entry")).scalar()
    engine.dispose()
    return int(count or 0)


def test_replay_by_business_and_by_recorded_time(store_settings: Settings,
                                                 tmp_path: Path) -> None:
    ledger = build_ledger(store_settings)
    for n in range(3):
        placement_story(ledger, learner=f"l{n}", days=5)  # hours 2026-01-05 .. 2026-01-09
    events = list(envelopes_until(ledger, ledger.recorder.max_notification_id() or 0, "/t"))
    until = date(2026, 1, 6)
    expected = sum(1 for e in events if e.data.get("business_date") is None
                   or date.fromisoformat(e.data["business_date"]) <= until)
    by_business = tmp_path / "business.sqlite3"
    result = replay_into(ledger, sqlite_engine(str(by_business)), until=until,
                         by=ReplayBy.BUSINESS, source="/t")
    assert result.events_read == len(events)
    assert result.events_applied == expected < len(events)
    assert audit_rows(by_business) == expected

    by_recorded = tmp_path / "recorded.sqlite3"
    everything = replay_into(ledger, sqlite_engine(str(by_recorded)),
                             until=datetime.now(UTC).date(), by=ReplayBy.RECORDED,
                             source="/t", names=["audit_trail"])
    assert everything.events_applied == len(events) == audit_rows(by_recorded)
    nothing = replay_into(ledger, sqlite_engine(str(tmp_path / "none.sqlite3")),
                          until=date(2000, 1, 1), by=ReplayBy.RECORDED, source="/t")
    assert nothing.events_applied == 0
    ledger.close()


def test_research_export_is_pseudonymised_and_stable(store_settings: Settings,
                                                     tmp_path: Path) -> None:
    ledger = build_ledger(store_settings)
    vault = personal_data_vault(store_settings)
    learners = []
    for n in range(4):
        learner = vault.register(LearnerProfile(
            organisation_id="org-1", given_name=f"Name{n}", family_name="Family",
            born_on=date(2006, 3, 4), student_number=f"S-{n}", sex=Sex.FEMALE,
            other_groups={"foster_care": "yes" if n == 0 else "no"}))
        placement_story(ledger, learner=learner, days=3)
        learners.append(learner)
    def events():  # type: ignore[no-untyped-def]
        return envelopes_until(ledger, ledger.recorder.max_notification_id() or 0, "/t")

    key, other_key = os.urandom(32), os.urandom(32)
    placements, people = research_tables(events(), vault, key)
    again, _ = research_tables(events(), vault, key)
    unlinkable, _ = research_tables(events(), vault, other_key)
    assert [p["learner"] for p in placements] == [p["learner"] for p in again]
    assert {p["learner"] for p in placements}.isdisjoint({p["learner"] for p in unlinkable})
    assert len(people) == 4 and all(p["approved_minutes"] == 720 for p in people)
    assert sorted(p["group_foster_care"] for p in people) == ["no", "no", "no", "yes"]
    assert all(p["birth_year"] == 2006 for p in people)

    written = write_tables(tmp_path / "export", {"placements": placements, "learners": people})
    assert sorted(p.name for p in written) == ["learners.csv", "learners.parquet",
                                               "placements.csv", "placements.parquet"]
    dump = b"".join(p.read_bytes() for p in written)
    for secret in [*learners, "Name0", "Family", "S-0", "2006-03-04", "super-1"]:
        assert secret.encode() not in dump
    with (tmp_path / "export" / "placements.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == pq.read_table(tmp_path / "export" / "placements.parquet").num_rows == 4
    ledger.close()
