"""RAPIDS export: registered apprentices and their status changes, for sponsors to upload
to the US Department of Labor's RAPIDS and for state auditors to check against it.

Two tables, computed from the events up to a cut-off (like the state report) and the
learner profiles as they stood then:

- **registrations**, in the bulk-upload layout (the 42 fields of
  ``rapids-apprentice-upload.tableschema.json``), one row per apprenticeship placement
  started by the cut-off. The ledger fills what it records: the start date, names, birth
  date, gender, ethnicity and race, disability, the program's RAPIDS occupation code, the
  employer, the entry wage, and credit for previous experience and training. It never keeps
  what it has no use for (Social Security numbers, addresses, telephone, e-mail; decision
  011, docs/privacy.md), nor the sponsor's own registration details (employment status,
  veteran status, education level, prior wages, RTI provider, wage schedule, student
  status): the sponsor supplies those per apprentice (``details``), and any required field
  still empty is listed in ``missing`` so nothing incomplete is uploaded unnoticed;
- **status changes**: credit granted, completion, suspension, reinstatement and
  cancellation with its cause, one row each, identified by the same fields RAPIDS matches
  an apprentice on (names, birth date, occupation, begin date), in a table schema of the
  same style beside the upload's (``rapids-status-change.tableschema.json``).

Codes are the upload schema's own categories (Gender F/M/9; ethnicity 1/2/9; race 1/0/9;
disability 1/2/9); dates are MM/DD/YYYY as the schema's examples show.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Any

from domain.contract.envelope import Envelope
from domain.learner import LearnerProfile, RaceEthnicity, Sex

HERE = Path(__file__).parent
UPLOAD_SCHEMA = HERE.parent / "importing" / "rapids-apprentice-upload.tableschema.json"
STATUS_SCHEMA = HERE / "rapids-status-change.tableschema.json"

RACE_COLUMNS = {
    "Race-American Indian / Alaskan Native": RaceEthnicity.AMERICAN_INDIAN_OR_ALASKA_NATIVE,
    "Asian": RaceEthnicity.ASIAN,
    "Black / African American": RaceEthnicity.BLACK_OR_AFRICAN_AMERICAN,
    "Native Hawaiian / Other Pacific Islander":
        RaceEthnicity.NATIVE_HAWAIIAN_OR_OTHER_PACIFIC_ISLANDER,
    "White": RaceEthnicity.WHITE,
}

STATUS_OF_EVENT = {
    "PriorLearningCreditGranted": "CreditGranted",
    "PlacementCompleted": "Completed",
    "PlacementSuspended": "Suspended",
    "PlacementReinstated": "Reinstated",
    "PlacementWithdrawn": "Cancelled",
}

RAPIDS_EVENTS = frozenset({"ApprenticeshipProgramDefined", "OpportunityPosted",
                           "LearnerMatched", "PlacementStarted", *STATUS_OF_EVENT})
"""The only event types the export reads: the store is asked for these alone, so a state's
history of hour entries is never decoded for it."""


@cache
def upload_fields() -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = json.loads(UPLOAD_SCHEMA.read_text())["fields"]
    return fields


@cache
def status_fields() -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = json.loads(STATUS_SCHEMA.read_text())["fields"]
    return fields


def us_date(day: date) -> str:
    return day.strftime("%m/%d/%Y")


def gender(profile: LearnerProfile | None) -> str:
    sex = profile.sex if profile is not None else Sex.NOT_REPORTED
    return {Sex.FEMALE: "F", Sex.MALE: "M"}.get(sex, "9")


def ethnicity_and_race(profile: LearnerProfile | None) -> dict[str, str]:
    """Ethnicity 1 (Hispanic/Latino) / 2 (not) / 9 (not self-identified); each race column
    1 / 0 / 9. A learner recorded only as of two or more races has every race column 9, as
    the ledger does not know which."""
    race = profile.race_ethnicity if profile is not None else RaceEthnicity.NOT_REPORTED
    if race in (RaceEthnicity.NOT_REPORTED, RaceEthnicity.TWO_OR_MORE_RACES):
        unknown = {column: "9" for column in RACE_COLUMNS}
        return {"Ethnicity Hispanic / Latino":
                "9" if race is RaceEthnicity.NOT_REPORTED else "2", **unknown}
    if race is RaceEthnicity.HISPANIC_OR_LATINO:
        return {"Ethnicity Hispanic / Latino": "1", **{c: "9" for c in RACE_COLUMNS}}
    return {"Ethnicity Hispanic / Latino": "2",
            **{column: "1" if r is race else "0" for column, r in RACE_COLUMNS.items()}}


def disability(profile: LearnerProfile | None) -> str:
    value = profile.disability if profile is not None else None
    return "9" if value is None else ("1" if value else "2")


@dataclass
class Apprenticeship:
    placement_id: str
    learner_id: str
    program_id: str
    opportunity_id: str
    started_on: date | None = None
    experience_minutes: int = 0
    training_minutes: int = 0
    changes: list[tuple[date, str, str, int]] = field(default_factory=list)
    """(date, status, cause, credited minutes)"""


@dataclass
class RapidsExport:
    registrations: list[dict[str, str]]
    status_changes: list[dict[str, str]]
    missing: list[dict[str, str]]
    """Required upload fields left empty: {"placement_id", "field"}."""


def rapids_export(events: Iterable[Envelope], profiles: Mapping[str, LearnerProfile | None],
                  *, sponsor_id: str | None = None,
                  details: Mapping[str, Mapping[str, str]] | None = None) -> RapidsExport:
    """Registrations and status changes of the apprenticeships (of one sponsor's programs,
    or of all) recorded in ``events``. ``details``: per learner id, the sponsor's own
    upload fields the ledger does not keep."""
    programs: dict[str, Mapping[str, Any]] = {}
    opportunities: dict[str, Mapping[str, Any]] = {}
    found: dict[str, Apprenticeship] = {}
    for event in events:
        d = event.data
        if event.event_type == "ApprenticeshipProgramDefined":
            programs[event.aggregate_id] = d
        elif event.event_type == "OpportunityPosted":
            opportunities[event.aggregate_id] = d
        elif event.event_type == "LearnerMatched":
            program = d.get("program_id")
            if program is not None and not d.get("pre_apprenticeship", False):
                found[event.aggregate_id] = Apprenticeship(
                    event.aggregate_id, str(d["learner_id"]), str(program),
                    str(d["opportunity_id"]))
        elif event.aggregate_id in found:
            a = found[event.aggregate_id]
            day = date.fromisoformat(str(d["business_date"]))
            if event.event_type == "PlacementStarted":
                a.started_on = day
            elif event.event_type in STATUS_OF_EVENT:
                minutes = int(d.get("minutes", 0) or 0)
                if event.event_type == "PriorLearningCreditGranted":
                    if d.get("basis") == "prior_training":
                        a.training_minutes += minutes
                    else:
                        a.experience_minutes += minutes
                cause = str(d.get("reason") or d.get("basis") or "")
                if d.get("during_probation"):
                    cause = f"{cause} (during probation)"
                a.changes.append((day, STATUS_OF_EVENT[event.event_type], cause, minutes))
    registrations: list[dict[str, str]] = []
    changes: list[dict[str, str]] = []
    missing: list[dict[str, str]] = []
    names = [f["name"] for f in upload_fields()]
    for pid, a in sorted(found.items()):
        program = programs.get(a.program_id, {})
        if a.started_on is None or (sponsor_id is not None and
                                    program.get("sponsor_id") != sponsor_id):
            continue
        profile = profiles.get(a.learner_id)
        opportunity = opportunities.get(a.opportunity_id, {})
        wage = opportunity.get("hourly_wage")
        row = {name: "" for name in names}
        row.update({
            "Date Apprenticeship Begins": us_date(a.started_on),
            "Apprentice First Name": profile.given_name if profile else "",
            "Apprentice Last Name": profile.family_name if profile else "",
            "Date of Birth": us_date(profile.born_on) if profile else "",
            "Gender": gender(profile),
            **ethnicity_and_race(profile),
            "Apprentice Disability Status": disability(profile),
            "Occupation": str(program.get("rapids_code", "")),
            "Employer": str(opportunity.get("employer_name", "")),
            "Entry Wages": "" if wage is None else str(
                Decimal(str(wage)).quantize(Decimal(1), ROUND_HALF_UP)),
            "Entry Wage Units": "H" if wage is not None else "",
            "Credit for previous experience": str(a.experience_minutes // 60),
            "Credit for Previous Related Training In Hours": str(a.training_minutes // 60),
        })
        for name, value in (details or {}).get(a.learner_id, {}).items():
            if name in row and not row[name] and value:
                row[name] = value
        registrations.append(row)
        for spec in upload_fields():
            if spec.get("constraints", {}).get("required") and not row[spec["name"]]:
                missing.append({"placement_id": pid, "field": spec["name"]})
        for day, status, cause, minutes in a.changes:
            changes.append({
                "Apprentice First Name": row["Apprentice First Name"],
                "Apprentice Last Name": row["Apprentice Last Name"],
                "Date of Birth": row["Date of Birth"],
                "Occupation": row["Occupation"],
                "Date Apprenticeship Begins": row["Date Apprenticeship Begins"],
                "Status": status,
                "Status Date": us_date(day),
                "Cause": cause[:255],
                "Credit Hours": str(minutes // 60) if status == "CreditGranted" else "",
            })
    return RapidsExport(registrations, changes, missing)


def to_csv(rows: list[dict[str, str]], fields: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[f["name"] for f in fields], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
