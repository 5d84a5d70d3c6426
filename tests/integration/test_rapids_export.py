"""The RAPIDS export (issue 13) on both stores: apprentices registered by the RAPIDS import,
then credited, suspended, reinstated, completed or cancelled with a cause through the
ledger; the export's files validated by `frictionless` against the public upload table
schema and the status-change schema, and every coded field checked against the schema's
categories here as well (frictionless leaves ``categories`` unchecked)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from frictionless import Resource, Schema

from domain.actor import Actor, Role
from infra.personal_data import PersonalDataVault
from infra.settings import Settings
from services.importing import ImportKind, ImportMode
from services.importing.rapids import categories
from services.jobs.rapids_export import (
    RAPIDS_EVENTS,
    STATUS_SCHEMA,
    rapids_export,
    status_fields,
    to_csv,
    upload_fields,
)
from services.jobs.reporting import envelopes_until
from services.ledger import Ledger
from tests.integration.test_import import (
    ORG,
    RAPIDS_HEADER,
    ledger_today,
    rapids_row,
    run,
    vault,
)

__all__ = ["ledger_today", "vault"]

UPLOAD_SCHEMA = Path("/work/shared/standards/rapids-apprentice-upload.tableschema.json")
if not UPLOAD_SCHEMA.exists():  # the copy the importer reads is the same file
    UPLOAD_SCHEMA = Path(__file__).resolve().parents[2] / "services" / "importing" / \
        "rapids-apprentice-upload.tableschema.json"
SPONSOR = Actor("sponsor-1", Role.SPONSOR, "jatc")
SPONSOR_DETAILS = {  # what the sponsor keeps and the ledger does not
    "Employment Status": "NE", "Apprentice Street Address": "5 Elm St",
    "Apprentice City": "Springfield", "Apprentice State": "IL",
    "Apprentice 5-Digit Zip Code": "62701", "Veteran Status": "2",
    "Apprentice Education Level": "3", "Related Technical Instruction Provider": "RTI-3",
    "Prior Wages": "15", "Prior Wage Units": "H", "Wage Schedule": "WS-1",
    "Student Status": "NA",
}


def validate(text: str, schema_file: Path) -> list[str]:
    """frictionless's report, then the categories it does not check."""
    schema = json.loads(schema_file.read_text())
    resource = Resource(data=text.encode(), format="csv", encoding="utf-8",
                        schema=Schema.from_descriptor(schema))
    report = resource.validate()
    problems = [f"{error.type}: {error.message}" for task in report.tasks
                for error in task.errors]
    for n, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        for spec in schema["fields"]:
            allowed, value = categories(spec), row.get(spec["name"], "")
            if allowed is not None and value and value not in allowed:
                problems.append(f"row {n}: {spec['name']} {value!r} not in {sorted(allowed)}")
    return problems


def test_registrations_and_status_changes_in_the_upload_layout(
    store_settings: Settings, ledger_today: Ledger, vault: PersonalDataVault,
) -> None:
    program = ledger_today.define_program(
        SPONSOR, sponsor_id="jatc", sponsor_name="JATC", title="Inside wireman",
        rapids_code="0159", onet_code="47-2111.00", approach="time_based", ojl_hours=2000,
        work_processes={"Wiring": 2000}, competencies=["Wiring"],
        wage_schedule=[{"after_hours": 0, "hourly_wage": Decimal("18.00")}],
    ).aggregate_id
    text = "\n".join([",".join(f'"{h}"' for h in RAPIDS_HEADER),
                      rapids_row("Chidi", "123-45-6789", Gender="F",
                                 **{"Apprentice Disability Status": "1"}),
                      rapids_row("Ngozi", "555-12-3456", Gender="9", Asian="1",
                                 **{"Race-American Indian / Alaskan Native": "0",
                                    "Black / African American": "0", "White": "0"})]) + "\n"
    imported = run(ledger_today, vault, ImportKind.RAPIDS, text, ImportMode.ALL_OR_NOTHING,
                   program_id=program, supervisor_id="journey-1")
    assert imported.rows_recorded == 2, imported.rejected
    chidi = vault.find_by_student_number(ORG, "ssn:123456789")
    ngozi = vault.find_by_student_number(ORG, "ssn:555123456")
    assert chidi is not None and ngozi is not None
    events = list(envelopes_until(ledger_today, ledger_today.recorder.max_notification_id(),
                                  "/test"))
    placements = {e.data["learner_id"]: e.aggregate_id for e in events
                  if e.event_type == "LearnerMatched"}
    first, second = placements[chidi], placements[ngozi]
    coordinator = Actor("coord-7", Role.COORDINATOR, ORG)
    ledger_today.grant_prior_learning_credit(
        SPONSOR, UUID(first), minutes=2000 * 60, basis="prior_experience",
        granted_on=date(2025, 6, 3))
    ledger_today.suspend_placement(coordinator, UUID(first), reason="Employer shut for a "
                                   "month", suspended_on=date(2025, 7, 1))
    ledger_today.reinstate_placement(coordinator, UUID(first), reason="Reopened",
                                     reinstated_on=date(2025, 8, 1))
    ledger_today.complete_placement(SPONSOR, UUID(first), completed_on=date(2025, 9, 1))
    ledger_today.withdraw_placement(coordinator, UUID(second), reason="Left the trade",
                                    withdrawn_on=date(2025, 7, 15))

    events = list(envelopes_until(ledger_today, ledger_today.recorder.max_notification_id(),
                                  "/test"))
    profiles = vault.profiles_as_of(None, events[-1].recorded_at)
    bare = rapids_export(events, profiles, sponsor_id="jatc")
    assert {m["field"] for m in bare.missing} == set(SPONSOR_DETAILS)
    # the store asked for the export's event types alone gives the same export
    only = list(envelopes_until(ledger_today, ledger_today.recorder.max_notification_id(),
                                "/test", RAPIDS_EVENTS))
    assert {e.event_type for e in only} <= RAPIDS_EVENTS and len(only) < len(events)
    assert rapids_export(only, profiles, sponsor_id="jatc") == bare
    export = rapids_export(events, profiles, sponsor_id="jatc",
                           details={chidi: SPONSOR_DETAILS, ngozi: SPONSOR_DETAILS})
    assert export.missing == []
    assert rapids_export(events, profiles, sponsor_id="other").registrations == []

    registrations = to_csv(export.registrations, upload_fields())
    assert validate(registrations, UPLOAD_SCHEMA) == []
    assert registrations.splitlines()[0].count(",") == 41  # the 42 fields, in order
    rows = {r["Apprentice First Name"]: r for r in csv.DictReader(io.StringIO(registrations))}
    assert rows["Chidi"]["Gender"] == "F"
    assert rows["Chidi"]["Apprentice Disability Status"] == "1"
    assert rows["Chidi"]["Date of Birth"] == "08/19/2001"
    assert rows["Chidi"]["Credit for previous experience"] == "2000"
    assert rows["Ngozi"]["Gender"] == "9"
    assert rows["Ngozi"]["Apprentice Disability Status"] == "2"
    assert (rows["Ngozi"]["Ethnicity Hispanic / Latino"], rows["Ngozi"]["Asian"],
            rows["Ngozi"]["White"]) == ("2", "1", "0")
    assert rows["Ngozi"]["Occupation"] == "0159"
    assert rows["Ngozi"]["Entry Wages"] == "18"

    changes = to_csv(export.status_changes, status_fields())
    assert validate(changes, STATUS_SCHEMA) == []
    seen: list[tuple[Any, ...]] = [(r["Apprentice First Name"], r["Status"], r["Status Date"],
                                    r["Cause"], r["Credit Hours"])
                                   for r in csv.DictReader(io.StringIO(changes))]
    assert sorted(seen) == [
        ("Chidi", "Completed", "09/01/2025", "", ""),
        ("Chidi", "CreditGranted", "06/03/2025", "prior_experience", "2000"),
        ("Chidi", "Reinstated", "08/01/2025", "Reopened", ""),
        ("Chidi", "Suspended", "07/01/2025", "Employer shut for a month", ""),
        ("Ngozi", "Cancelled", "07/15/2025", "Left the trade", ""),
    ]
    assert store_settings is not None
