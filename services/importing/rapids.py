"""RAPIDS apprentice registrations, in the bulk-upload layout (the public csg-org table
schema, `rapids-apprentice-upload.tableschema.json` beside this file, 42 fields).

Each row is checked against the table schema's own constraints (required, maxLength,
pattern, and the categories of every coded field, as the export writes them) and then
registers the apprentice in the given program through the ledger. Of the
personal fields, only what the ledger needs is kept, encrypted in the personal-data vault
(names, birth date, sex, race/ethnicity, disability); the Social Security number is used
only through a keyed hash to recognise the same apprentice again and is never stored; the
address, telephone and e-mail are checked and dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from domain.actor import Actor
from domain.errors import RuleViolated
from domain.learner import LearnerProfile, RaceEthnicity, Sex
from services.importing.core import RowContext, required_day
from services.importing.placements import learner_for, sign_and_start, stable_id

SCHEMA_FILE = Path(__file__).with_name("rapids-apprentice-upload.tableschema.json")


def categories(spec: Mapping[str, Any]) -> set[str] | None:
    """The values a field's ``categories`` allow, as the strings a CSV cell holds."""
    found = spec.get("categories")
    if found is None:
        return None
    return {str(c["value"] if isinstance(c, dict) else c) for c in found}

RACE_COLUMNS = {
    "Race-American Indian / Alaskan Native": RaceEthnicity.AMERICAN_INDIAN_OR_ALASKA_NATIVE,
    "Asian": RaceEthnicity.ASIAN,
    "Black / African American": RaceEthnicity.BLACK_OR_AFRICAN_AMERICAN,
    "Native Hawaiian / Other Pacific Islander":
        RaceEthnicity.NATIVE_HAWAIIAN_OR_OTHER_PACIFIC_ISLANDER,
    "White": RaceEthnicity.WHITE,
}


@cache
def schema_fields() -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = json.loads(SCHEMA_FILE.read_text())["fields"]
    return fields


REQUIRED = {f["name"] for f in schema_fields()
            if f.get("constraints", {}).get("required")}


def check_against_schema(row: dict[str, str]) -> None:
    for spec in schema_fields():
        name, rules = spec["name"], spec.get("constraints", {})
        value = row.get(name, "")
        if not value:
            if rules.get("required"):
                raise RuleViolated(f"RAPIDS field {name!r} is required.",
                                   code="value-required", field=name)
            continue
        if "maxLength" in rules and len(value) > rules["maxLength"]:
            raise RuleViolated(f"RAPIDS field {name!r} is longer than {rules['maxLength']}.",
                               code="too-long", field=name)
        if "pattern" in rules and not re.match(rules["pattern"], value):
            raise RuleViolated(f"RAPIDS field {name!r} does not match {rules['pattern']}.",
                               code="bad-format", field=name)
        if spec.get("type") == "integer" and not value.lstrip("-").isdigit():
            raise RuleViolated(f"RAPIDS field {name!r} must be a whole number.",
                               code="bad-number", field=name)
        allowed = categories(spec)
        if allowed is not None:
            cell = str(int(value)) if spec.get("type") == "integer" else value
            if cell not in allowed:
                raise RuleViolated(
                    f"RAPIDS field {name!r} takes one of {', '.join(sorted(allowed))}; "
                    f"{value!r} is not among them.", code="not-a-category", field=name)


GENDER = {"M": Sex.MALE, "F": Sex.FEMALE, "9": Sex.NOT_REPORTED}
"""The schema's Gender categories: 9 is "did not self-identify"."""

DISABILITY: dict[str, bool | None] = {"1": True, "2": False, "9": None}
"""The schema's disability categories: 1 has a disability (ADA section 3), 2 does not,
9 did not self-identify."""


def race_ethnicity(row: dict[str, str]) -> RaceEthnicity:
    if row.get("Ethnicity Hispanic / Latino") == "1":
        return RaceEthnicity.HISPANIC_OR_LATINO
    races = [race for column, race in RACE_COLUMNS.items() if row.get(column) == "1"]
    if len(races) > 1:
        return RaceEthnicity.TWO_OR_MORE_RACES
    return races[0] if races else RaceEthnicity.NOT_REPORTED


def rapids_row(context: RowContext, row: dict[str, str]) -> None:
    check_against_schema(row)
    org = context.organisation(row)
    if context.options.program_id is None:
        raise RuleViolated("Name the registered program (--program) the apprentices join.",
                           code="program-required", field="Occupation")
    program = context.ledger.get_program(context.options.program_id)
    if row["Occupation"] not in (program.rapids_code, program.onet_code):
        raise RuleViolated(
            f"Occupation {row['Occupation']!r} is not the program's ({program.rapids_code}).",
            code="occupation-mismatch", field="Occupation")
    begins = required_day(row, "Date Apprenticeship Begins")
    ssn = re.sub(r"\D", "", row.get("Social Security Number", ""))
    profile = LearnerProfile(
        organisation_id=org, given_name=row["Apprentice First Name"],
        family_name=row["Apprentice Last Name"], born_on=required_day(row, "Date of Birth"),
        sex=GENDER[row["Gender"]],
        race_ethnicity=race_ethnicity(row),
        disability=DISABILITY[str(int(row["Apprentice Disability Status"]))],
    )
    lookup = f"ssn:{ssn}" if ssn else (
        f"rapids:{profile.given_name}|{profile.family_name}|{profile.born_on}")
    learner_id, profile = learner_for(context, row, org, lookup_key=lookup, profile=profile)
    placement_id = stable_id(org, f"rapids:{program.id}", learner_id)
    if context.ledger.exists(placement_id):
        return  # already registered
    supervisor = context.options.supervisor_id or f"journeyworker-of:{row['Employer']}"
    coordinator = Actor(context.actor.id, context.actor.role, org)
    employer = f"RAPIDS employer {row['Employer']}"
    opportunity = context.ledger.post_opportunity(
        coordinator, id=stable_id(org, "rapids-opportunity", str(placement_id)),
        organisation_id=org, title=program.title, employer_name=employer,
        worksite=employer, wbl_type="Apprenticeship", occupation_code=program.onet_code,
        paid=True, hourly_wage=Decimal(row["Entry Wages"]), starts_on=begins,
        ends_on=begins + timedelta(days=5 * 366), posted_on=begins,
    ).aggregate_id
    context.ledger.match_learner(
        coordinator, opportunity, learner_id=learner_id, supervisor_id=supervisor,
        learner_born_on=profile.born_on, matched_on=begins, program_id=program.id,
        placement_id=placement_id)
    sign_and_start(context, placement_id, learner_id, org, employer, begins)
