"""An import whose staged events leave memory (decision 067) keeps the import's promises, on
both stores, driven as a coordinator types it: ``wbl import timesheets``. The limits are set
so low (``WBL_IMPORT_SPILL_AFTER_EVENTS``, ``WBL_IMPORT_AGGREGATES_IN_MEMORY``) that a
300-row file moves its events to the spill file some twenty times and forgets most of its
records between rows: an all-or-nothing file refused at its last row stores nothing although
nearly all of it had been spilled, a row refused after its hours were logged leaves no trace
in records that had been spilled and rebuilt, every event kept is accounted for once by the
``FileImported`` provenance, and the same file again records nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from domain.actor import Actor, Role
from domain.imports import ImportedFile
from domain.learner_day import LearnerDay
from infra.database import personal_data_vault
from infra.personal_data import PersonalDataVault
from infra.settings import Settings
from services.bootstrap import build_ledger
from services.importing import ImportKind, ImportMode, ImportOptions, import_file
from services.importing.core import file_hash
from services.importing.placements import stable_id
from services.ledger import BirthDatesInMemory, Ledger, UnitLimits
from services.ledger.staging import Spill

ORG = "district-9"
START = date(2025, 1, 6)
PLACEMENTS = 10
ROWS = 300
REFUSED_AFTER_LOGGING = 152
"""Line of a row approved by someone who is not the placement's supervisor: refused after
its hours were logged on a placement whose earlier events are in the spill."""


def _wbl(settings: Settings, *args: str, **limits: int) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WBL_")}
    env.update({"WBL_DATA_DIR": str(settings.data_dir), "WBL_LOG_LEVEL": "WARNING"})
    env.update({f"WBL_{k.upper()}": str(v) for k, v in limits.items()})
    if settings.database_url:
        env["WBL_DATABASE_URL"] = settings.database_url
    return subprocess.run([sys.executable, "-m", "services.cli", *args], env=env,
                          capture_output=True, text=True, timeout=240, cwd=Path.cwd())


def _tracker() -> str:
    lines = ["placement_ref,student_number,given_name,family_name,birth_date,sex,"
             "race_ethnicity,title,employer_name,worksite,wbl_type,paid,hourly_wage,"
             "start_date,end_date,supervisor_id,status,ended_on,end_reason"]
    lines += [f"P-{n},S-{n},Ada,Learner{n},2005-03-02,F,White,Machinist intern,Acme,Main St,"
              f"PaidInternship,yes,16.50,{START.isoformat()},2025-12-19,sup-{n},active,,"
              for n in range(PLACEMENTS)]
    return "\n".join(lines) + "\n"


def _timesheet(last_row: str) -> str:
    """``ROWS`` rows (line 2 onwards), one refused at ``REFUSED_AFTER_LOGGING`` and the next
    on the same placement and day, then ``last_row``."""
    lines = ["placement_ref,work_date,minutes,kind,decision,decided_by,decided_on,reason"]
    for n in range(ROWS):
        p, work = n % PLACEMENTS, START + timedelta(days=n // PLACEMENTS)
        decided = (work + timedelta(days=1)).isoformat()
        line = len(lines) + 1
        if line == REFUSED_AFTER_LOGGING:
            lines.append(f"P-{p},{work},60,related_instruction,approved,sup-x,{decided},")
            lines.append(f"P-{p},{work},90,related_instruction,approved,sup-{p},{decided},")
        lines.append(f"P-{p},{work},{[120, 240, 360][n % 3]},on_the_job,"
                     + ("rejected" if n % 7 == 0 else "approved")
                     + f",sup-{p},{decided}," + ("not on the rota" if n % 7 == 0 else ""))
    lines.append(last_row)
    return "\n".join(lines) + "\n"


LIMITS = {"import_spill_after_events": 50, "import_aggregates_in_memory": 4}


def _positions(settings: Settings) -> int:
    ledger = build_ledger(settings, birth_dates=BirthDatesInMemory())
    try:
        return ledger.recorder.max_notification_id() or 0
    finally:
        ledger.close()


def test_an_import_spilled_out_of_memory_is_still_all_or_nothing_on_both_stores(
        store_settings: Settings, tmp_path: Path) -> None:
    tracker, sheet = tmp_path / "tracker.csv", tmp_path / "timesheets.csv"
    tracker.write_text(_tracker())
    common = ["--organisation", ORG, "--actor-id", "coord-9"]
    done = _wbl(store_settings, "import", "placements", str(tracker), *common)
    assert done.returncode == 0, done.stderr[-2000:]
    before = _positions(store_settings)

    # The last row logs its hours, then names a decision there is none of: refused.
    sheet.write_text(_timesheet("P-0,2025-03-03,120,on_the_job,maybe,sup-0,2025-03-04,"))
    last_line = ROWS + 4  # the header, 300 rows, the refused one and the one after it
    refused = _wbl(store_settings, "import", "timesheets", str(sheet), *common, **LIMITS)
    assert refused.returncode == 1, refused.stdout + refused.stderr[-2000:]
    summary = json.loads(refused.stdout)
    assert summary["recorded"] is False and summary["rejected_rows"] == 2
    assert f"{REFUSED_AFTER_LOGGING},not-supervisor" in refused.stderr
    assert f"{last_line},bad-decision" in refused.stderr
    assert _positions(store_settings) == before  # nothing stored, though most was spilled

    # The same file, keeping the valid rows: every other row recorded, once.
    kept = _wbl(store_settings, "import", "timesheets", str(sheet), *common,
                "--mode", "valid-rows", **LIMITS)
    assert kept.returncode == 0, kept.stderr[-2000:]
    summary = json.loads(kept.stdout)
    assert summary["recorded"] is True and summary["rejected_rows"] == 2
    assert summary["rows_recorded"] == ROWS + 1  # the 300 rows and the one after the refusal
    after = _positions(store_settings)

    ledger = build_ledger(store_settings, birth_dates=BirthDatesInMemory())
    try:
        record = ledger.repository.get(
            ImportedFile.create_id(file_hash(sheet.read_bytes())))
        assert len(record.rows) == ROWS + 1
        assert REFUSED_AFTER_LOGGING not in [r["row"] for r in record.rows]
        accounted = sum(last - first + 1 for r in record.rows for _, first, last in r["events"])
        new_events = ledger.recorder.select_notifications(
            start=before, limit=after - before + 1, inclusive_of_start=False)
        assert len(new_events) == accounted + 1  # and the FileImported event itself
        # Its provenance, written a row at a time, is what the library's mapper would write
        # for the whole list: decoded and encoded again, the same bytes.
        [stored_record] = [n for n in new_events if n.originator_id == record.id]
        again_encoded = ledger.mapper.to_stored_event(
            ledger.mapper.to_domain_event(stored_record))
        assert again_encoded.state == stored_record.state
        seen = {(str(n.originator_id), n.originator_version) for n in new_events}
        for row in record.rows:
            for aggregate_id, first, last in row["events"]:
                assert {(aggregate_id, v) for v in range(first, last + 1)} <= seen

        refused_on = START + timedelta(days=(REFUSED_AFTER_LOGGING - 2) // PLACEMENTS)
        ref = f"P-{(REFUSED_AFTER_LOGGING - 2) % PLACEMENTS}"
        placement = ledger.get_placement(stable_id(ORG, "placement", ref))
        stored = ledger.recorder.select_events(placement.id)
        assert [s.originator_version for s in stored] == list(range(1, placement.version + 1))
        that_day = sorted((e.minutes, str(e.kind)) for e in placement.entries.values()
                          if e.work_date == refused_on)
        assert (60, "related_instruction") not in that_day
        assert (90, "related_instruction") in that_day
        day = ledger.repository.get(LearnerDay.create_id(placement.learner_id, refused_on))
        assert 60 not in [minutes for _, minutes in day.claims.values()]
        assert sum(e.minutes for e in placement.entries.values()
                   if str(e.status) == "approved") == placement.approved_minutes()
    finally:
        ledger.close()

    again = _wbl(store_settings, "import", "timesheets", str(sheet), *common,
                 "--mode", "valid-rows", **LIMITS)
    assert again.returncode == 0 and json.loads(again.stdout)["already_imported"] is True
    assert _positions(store_settings) == after


def test_the_limits_do_move_events_out_of_memory(store_settings: Settings, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The test above relies on the limits spilling and forgetting; this one counts it."""
    spilled: list[int] = []
    original = Spill.append
    monkeypatch.setattr(Spill, "append",
                        lambda self, events: (spilled.append(len(events)),
                                              original(self, events))[1])
    ledger: Ledger = build_ledger(store_settings, birth_dates=BirthDatesInMemory())
    ledger.unit_limits = UnitLimits(spill_after_events=50, aggregates_in_memory=4)
    vault: PersonalDataVault = personal_data_vault(store_settings)
    actor = Actor("coord-9", Role.COORDINATOR, ORG)
    try:
        for kind, text in ((ImportKind.PLACEMENTS, _tracker()),
                           (ImportKind.TIMESHEETS, _timesheet(
                               "P-0,2025-03-03,120,on_the_job,approved,sup-0,2025-03-04,"))):
            report = import_file(ledger, vault, actor, kind=kind, data=text.encode(),
                                 file_name=f"{kind}.csv", mode=ImportMode.VALID_ROWS,
                                 options=ImportOptions(organisation_id=ORG))
            assert report.recorded, report.rejected
        assert len(spilled) > 15 and sum(spilled) > 1000
    finally:
        ledger.close()
