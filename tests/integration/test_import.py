# ruff: noqa: E501 - the CSV fixtures are lines of real width
"""Bulk import of historical records, on both stores: domain rules judge every row, the
file is recorded whole or not at all (or only its valid rows), a second import of the same
file records nothing, provenance is kept, and personal data never reaches an event."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest

from domain.actor import Actor, Role
from domain.imports import ImportedFile
from domain.learner_day import LearnerDay
from domain.placement import PlacementStatus
from infra.command_log import stored_originators
from infra.database import personal_data_vault
from infra.personal_data import PersonalDataVault
from infra.settings import Settings
from services.importing import ImportKind, ImportMode, ImportOptions, import_file
from services.importing.placements import stable_id
from services.ledger import Ledger

ORG = "district-7"
IMPORTER = Actor("coord-7", Role.COORDINATOR, ORG)

TRACKER = """placement_ref,student_number,given_name,family_name,birth_date,sex,race_ethnicity,title,employer_name,worksite,wbl_type,paid,hourly_wage,start_date,end_date,supervisor_id,status,ended_on,end_reason
P-1,S-1001,Rosa,Delgado,2007-04-02,F,HispanicOrLatino,CNC intern,Acme,Main St,PaidInternship,yes,16.50,2025-01-13,2025-05-23,sup-1,active,,
P-2,S-1002,Tom,Baker,2007-09-12,M,White,Job shadow,St Mary's,Ward 3,JobShadowing,no,,2025-02-03,2025-02-03,sup-2,active,,
P-3,S-1003,Ana,Ng,2006-01-30,F,Asian,Service learning,Food Bank,Depot,ServiceLearning,no,,2025-03-01,2025-04-30,sup-3,active,,
"""
TRACKER_3 = TRACKER.replace("sup-3,active,,", "sup-3,withdrawn,2025-03-20,moved away")

TIMESHEET = """placement_ref,work_date,hours,kind,decision,decided_by,decided_on,reason
P-1,2025-01-14,4.5,on_the_job,approved,sup-1,2025-01-15,
P-1,2025-01-15,4,on_the_job,rejected,sup-1,2025-01-16,not on the rota
P-1,2025-01-16,3,on_the_job,pending,,,
P-2,2025-02-03,6,on_the_job,approved,sup-2,2025-02-04,
"""


@pytest.fixture
def vault(store_settings: Settings) -> PersonalDataVault:
    return personal_data_vault(store_settings)


@pytest.fixture
def ledger_today(ledger: Ledger) -> Iterator[Ledger]:
    ledger.today = lambda: date(2026, 11, 23)  # type: ignore[method-assign]
    yield ledger


def run(ledger: Ledger, vault: PersonalDataVault, kind: ImportKind, text: str,
        mode: ImportMode = ImportMode.ALL_OR_NOTHING, **options: object):  # type: ignore[no-untyped-def]
    return import_file(ledger, vault, IMPORTER, kind=kind, data=text.encode(),
                       file_name=f"{kind}.csv", mode=mode,
                       options=ImportOptions(organisation_id=ORG, **options))  # type: ignore[arg-type]


def stored_count(ledger: Ledger) -> int:
    return len(ledger.recorder.select_notifications(start=0, limit=100000))


def all_event_bytes(ledger: Ledger) -> bytes:
    return b"".join(n.state for n in ledger.recorder.select_notifications(start=0, limit=100000))


def test_tracker_and_timesheets_import_with_provenance(ledger_today: Ledger,
                                                       vault: PersonalDataVault) -> None:
    ledger = ledger_today
    tracker = run(ledger, vault, ImportKind.PLACEMENTS, TRACKER_3)
    assert tracker.recorded and not tracker.rejected, tracker.rejected
    assert tracker.rows_recorded == 3
    sheets = run(ledger, vault, ImportKind.TIMESHEETS, TIMESHEET)
    assert sheets.recorded and not sheets.rejected, sheets.rejected

    p1 = ledger.get_placement(stable_id(ORG, "placement", "P-1"))
    assert p1.status is PlacementStatus.ACTIVE
    assert p1.approved_minutes() == 270  # 4.5 h, exactly
    assert ledger.get_placement(stable_id(ORG, "placement", "P-2")).approved_minutes() == 360
    assert ledger.get_placement(stable_id(ORG, "placement", "P-3")).status is \
        PlacementStatus.WITHDRAWN

    record = ledger.repository.get(ImportedFile.create_id(sheets.file_hash))
    assert [r["row"] for r in record.rows] == [2, 3, 4, 5]
    aggregate_id, first, last = record.rows[0]["events"][0]
    assert aggregate_id == str(p1.id) and last >= first

    learner = vault.find_by_student_number(ORG, "S-1001")
    assert learner == p1.learner_id
    assert vault.get(learner).given_name == "Rosa"
    events = all_event_bytes(ledger)
    for personal in (b"Rosa", b"Delgado", b"S-1001", b"2007-04-02", b"HispanicOrLatino"):
        assert personal not in events


def test_same_file_twice_records_nothing_the_second_time(ledger_today: Ledger,
                                                         vault: PersonalDataVault) -> None:
    first = run(ledger_today, vault, ImportKind.PLACEMENTS, TRACKER)
    assert first.recorded
    before = stored_count(ledger_today)
    second = run(ledger_today, vault, ImportKind.PLACEMENTS, TRACKER)
    assert second.already_imported and not second.recorded
    assert stored_count(ledger_today) == before


def test_all_or_nothing_records_nothing_when_a_row_breaks_a_rule(
        ledger_today: Ledger, vault: PersonalDataVault) -> None:
    bad = TRACKER.replace("2025-05-23", "2024-12-01")  # ends before it starts
    bad = bad.replace("2007-09-12", "12/31/2007x")  # not a date
    report = run(ledger_today, vault, ImportKind.PLACEMENTS, bad)
    assert not report.recorded
    assert stored_count(ledger_today) == 0
    assert [(r.row, r.code, r.field) for r in report.rejected] == [
        (2, "dates-reversed", "ends_on"), (3, "bad-date", "birth_date")]
    assert "row,rule,field,reason" in report.rejected_csv()
    assert vault.find_by_student_number(ORG, "S-1003") is None  # no orphan personal data


def test_valid_rows_mode_keeps_the_good_rows_and_lists_the_bad(
        ledger_today: Ledger, vault: PersonalDataVault) -> None:
    run(ledger_today, vault, ImportKind.PLACEMENTS, TRACKER)
    sheet = TIMESHEET + "P-1,2025-01-17,4.51,on_the_job,approved,sup-1,2025-01-18,\n" \
                        "P-9,2025-01-17,2,on_the_job,approved,sup-1,2025-01-18,\n" \
                        "P-1,2024-12-20,2,on_the_job,approved,sup-1,2024-12-21,\n" \
                        "P-1,2025-01-18,2,on_the_job,approved,learner-x,2025-01-19,\n"
    report = run(ledger_today, vault, ImportKind.TIMESHEETS, sheet, ImportMode.VALID_ROWS)
    assert report.recorded and report.rows_recorded == 4
    assert [(r.row, r.code) for r in report.rejected] == [
        (6, "minutes-not-integer"), (7, "unknown-placement"), (8, "before-start"),
        (9, "not-supervisor")]
    record = ledger_today.repository.get(ImportedFile.create_id(report.file_hash))
    assert [r["row"] for r in record.rejected] == [6, 7, 8, 9]
    # fixing the file and importing again only adds what is new
    fixed = sheet.replace("4.51", "4.25").replace("P-9", "P-2").replace(
        "2024-12-20", "2025-01-20").replace("learner-x", "sup-1")
    again = run(ledger_today, vault, ImportKind.TIMESHEETS, fixed, ImportMode.VALID_ROWS)
    assert again.rows_unchanged == 4 and again.rows_recorded == 3, again.rejected
    assert [r.code for r in again.rejected] == ["before-start"]  # P-2 row dated before P-2


def test_a_refused_row_leaves_no_trace_in_the_records_earlier_rows_staged(
        ledger_today: Ledger, vault: PersonalDataVault) -> None:
    """A row's commands run on the staged records themselves (decision 062); a row refused
    halfway (its hours logged, its approval refused) must leave the placement and the
    learner's day exactly as the rows before it left them, for the rows after it (had the
    refused row's entry stayed, the next row would overlap it)."""
    run(ledger_today, vault, ImportKind.PLACEMENTS, TRACKER)
    sheet = TIMESHEET + "P-1,2025-01-21,1,on_the_job,approved,sup-1,2025-01-22,\n" \
                        "P-1,2025-01-21,2,related_instruction,approved,learner-x,2025-01-22,\n" \
                        "P-1,2025-01-21,3,related_instruction,approved,sup-1,2025-01-22,\n"
    report = run(ledger_today, vault, ImportKind.TIMESHEETS, sheet, ImportMode.VALID_ROWS)
    assert [(r.row, r.code) for r in report.rejected] == [(7, "not-supervisor")]
    assert report.rows_recorded == 6
    p1 = ledger_today.get_placement(stable_id(ORG, "placement", "P-1"))
    assert sorted((e.work_date.isoformat(), e.minutes, str(e.status))
                  for e in p1.entries.values()) == [
        ("2025-01-14", 270, "approved"), ("2025-01-15", 240, "rejected"),
        ("2025-01-16", 180, "logged"), ("2025-01-21", 60, "approved"),
        ("2025-01-21", 180, "approved")]
    assert p1.approved_minutes() == 270 + 60 + 180
    stored = ledger_today.recorder.select_events(p1.id)
    assert [s.originator_version for s in stored] == list(range(1, p1.version + 1))
    day = ledger_today.repository.get(LearnerDay.create_id(p1.learner_id, date(2025, 1, 21)))
    assert sorted(minutes for _, minutes in day.claims.values()) == [60, 180]
    day_events = ledger_today.recorder.select_events(day.id)
    assert [s.originator_version for s in day_events] == [1, 2, 3]


def test_the_bulk_look_up_of_stored_records_agrees_with_one_by_one(
        ledger_today: Ledger, vault: PersonalDataVault) -> None:
    """The import asks the store once which of a learner's days exist (decision 062); on
    both stores that answer must be what a look-up of each id would say."""
    run(ledger_today, vault, ImportKind.PLACEMENTS, TRACKER)
    run(ledger_today, vault, ImportKind.TIMESHEETS, TIMESHEET)
    p1 = ledger_today.get_placement(stable_id(ORG, "placement", "P-1"))
    asked = [LearnerDay.create_id(p1.learner_id, date(2025, 1, d)) for d in range(10, 20)]
    asked.append(p1.id)
    one_by_one = {i for i in asked if ledger_today.recorder.select_events(i, limit=1)}
    assert len(one_by_one) == 4  # three days with hours, and the placement
    assert stored_originators(ledger_today.recorder, asked) == one_by_one
    assert stored_originators(ledger_today.recorder, []) == set()


def test_a_later_tracker_applies_only_what_changed(ledger_today: Ledger,
                                                   vault: PersonalDataVault) -> None:
    run(ledger_today, vault, ImportKind.PLACEMENTS, TRACKER_3)
    later = TRACKER_3.replace("sup-2,active,,", "sup-2,completed,2025-02-03,")
    before = stored_count(ledger_today)
    report = run(ledger_today, vault, ImportKind.PLACEMENTS, later)
    assert report.recorded and report.rows_recorded == 1 and report.rows_unchanged == 2
    assert ledger_today.get_placement(stable_id(ORG, "placement", "P-2")).status is \
        PlacementStatus.COMPLETED
    assert stored_count(ledger_today) == before + 2  # PlacementCompleted + FileImported


RAPIDS_HEADER = [
    "Date Apprenticeship Begins", "Apprentice First Name", "Apprentice Last Name",
    "Social Security Number", "Date of Birth", "Gender", "Employment Status",
    "Apprentice Street Address", "Apprentice City", "Apprentice State",
    "Apprentice 5-Digit Zip Code", "Employer", "Ethnicity Hispanic / Latino",
    "Race-American Indian / Alaskan Native", "Asian", "Black / African American",
    "Native Hawaiian / Other Pacific Islander", "White", "Veteran Status",
    "Apprentice Disability Status", "Apprentice Education Level", "Occupation",
    "Related Technical Instruction Provider", "Prior Wages", "Prior Wage Units",
    "Entry Wages", "Entry Wage Units", "Wage Schedule", "Student Status"]


def rapids_row(first: str, ssn: str, zip_code: str = "62701", **changes: str) -> str:
    """A row in the schema's categories: Employment Status NE, Veteran 2 (non veteran),
    Disability 2 (no disability), Education 3 (high school), wage units H, Student NA."""
    values = dict(zip(RAPIDS_HEADER, [
        "2025-06-02", first, "Okafor", ssn, "2001-08-19", "M", "NE", "5 Elm St",
        "Springfield", "IL", zip_code, "E-77", "2", "0", "0", "1", "0", "1", "2", "2",
        "3", "0159", "RTI-3", "15", "H", "18", "H", "WS-1", "NA"], strict=True))
    values.update(changes)
    return ",".join(values[h] for h in RAPIDS_HEADER)


def test_rapids_registrations(ledger_today: Ledger, vault: PersonalDataVault) -> None:
    sponsor = Actor("sponsor-1", Role.SPONSOR)
    program = ledger_today.define_program(
        sponsor, sponsor_id="jatc", sponsor_name="JATC", title="Inside wireman",
        rapids_code="0159", onet_code="47-2111.00", approach="time_based", ojl_hours=8000,
        work_processes={"Safety": 4000, "Wiring": 4000}, competencies=["Wiring"],
        wage_schedule=[{"after_hours": 0, "hourly_wage": Decimal("18.00")}],
    ).aggregate_id
    text = "\n".join([",".join(f'"{h}"' for h in RAPIDS_HEADER),
                      rapids_row("Chidi", "123-45-6789"),
                      rapids_row("Ada", "987-65-4321", zip_code="6270"),
                      rapids_row("Ngozi", "555-12-3456")]) + "\n"
    report = run(ledger_today, vault, ImportKind.RAPIDS, text, ImportMode.VALID_ROWS,
                 program_id=program, supervisor_id="journey-1")
    assert report.recorded and report.rows_recorded == 2
    assert [(r.row, r.code, r.field) for r in report.rejected] == [
        (3, "bad-format", "Apprentice 5-Digit Zip Code")]
    learner = vault.find_by_student_number(ORG, "ssn:123456789")
    assert learner is not None
    profile = vault.get(learner)
    assert profile.student_number is None  # the SSN is never stored
    assert str(profile.race_ethnicity) == "TwoOrMoreRaces"
    events = all_event_bytes(ledger_today)
    for personal in (b"123-45-6789", b"123456789", b"Chidi", b"Okafor", b"5 Elm St"):
        assert personal not in events
    again = run(ledger_today, vault, ImportKind.RAPIDS,
                text.replace("6270,", "62704,"), ImportMode.VALID_ROWS,
                program_id=program, supervisor_id="journey-1")
    assert again.rows_unchanged == 2 and again.rows_recorded == 1


@pytest.mark.parametrize(("column", "value"), [
    ("Gender", "Q"), ("Student Status", "ZZ"), ("Apprentice Disability Status", "0"),
    ("Veteran Status", "0"), ("Employment Status", "1"), ("Prior Wage Units", "Hourly"),
])
def test_rapids_values_outside_the_schemas_categories_are_refused(
    ledger_today: Ledger, vault: PersonalDataVault, column: str, value: str,
) -> None:
    program = ledger_today.define_program(
        Actor("sponsor-1", Role.SPONSOR), sponsor_id="jatc", sponsor_name="JATC",
        title="Inside wireman", rapids_code="0159", onet_code="47-2111.00",
        approach="time_based", ojl_hours=8000, work_processes={"Wiring": 8000},
        competencies=["Wiring"], wage_schedule=[{"after_hours": 0, "hourly_wage": Decimal("18")}],
    ).aggregate_id
    text = "\n".join([",".join(f'"{h}"' for h in RAPIDS_HEADER),
                      rapids_row("Chidi", "123-45-6789", **{column: value})]) + "\n"
    report = run(ledger_today, vault, ImportKind.RAPIDS, text, ImportMode.VALID_ROWS,
                 program_id=program, supervisor_id="journey-1")
    assert [(r.code, r.field) for r in report.rejected] == [("not-a-category", column)]


@pytest.mark.parametrize(("gender", "disability", "sex", "has_disability"), [
    ("F", "1", "F", True), ("M", "2", "M", False), ("9", "9", "NotReported", None),
])
def test_rapids_codes_map_as_the_schema_describes(
    ledger_today: Ledger, vault: PersonalDataVault, gender: str, disability: str, sex: str,
    has_disability: bool | None,
) -> None:
    program = ledger_today.define_program(
        Actor("sponsor-1", Role.SPONSOR), sponsor_id="jatc", sponsor_name="JATC",
        title="Inside wireman", rapids_code="0159", onet_code="47-2111.00",
        approach="time_based", ojl_hours=8000, work_processes={"Wiring": 8000},
        competencies=["Wiring"], wage_schedule=[{"after_hours": 0, "hourly_wage": Decimal("18")}],
    ).aggregate_id
    text = "\n".join([",".join(f'"{h}"' for h in RAPIDS_HEADER), rapids_row(
        "Chidi", "123-45-6789", **{"Gender": gender,
                                   "Apprentice Disability Status": disability})]) + "\n"
    report = run(ledger_today, vault, ImportKind.RAPIDS, text, ImportMode.VALID_ROWS,
                 program_id=program, supervisor_id="journey-1")
    assert report.rows_recorded == 1, report.rejected
    learner = vault.find_by_student_number(ORG, "ssn:123456789")
    assert learner is not None
    profile = vault.get(learner)
    assert str(profile.sex) == sex
    assert profile.disability is has_disability
