"""Placement trackers: one row per placement, in the shape of the spreadsheets schools keep.

Columns: placement_ref, organisation_id, student_number, given_name, family_name,
birth_date, sex, race_ethnicity, economically_disadvantaged, disability, english_learner,
title, employer_name, worksite, wbl_type, pre_apprenticeship, paid, hourly_wage, start_date,
end_date, supervisor_id, status (active | completed | withdrawn), ended_on, end_reason.

The learner's personal columns go to the personal-data vault, never into events. Ids are
derived from (organisation, placement_ref), so a later tracker with the same rows only
applies what changed (a placement now completed or withdrawn).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TypeVar
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.actor import Actor, Role
from domain.errors import RuleViolated
from domain.learner import LearnerProfile, RaceEthnicity, Sex
from domain.placement import PlacementStatus
from services.importing.core import RowContext, day, flag, required_day, text

REQUIRED = {"placement_ref", "student_number", "given_name", "family_name", "birth_date",
            "title", "employer_name", "wbl_type", "start_date", "end_date", "supervisor_id"}


def stable_id(organisation_id: str, kind: str, ref: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"wbl-ledger:{organisation_id}:{kind}:{ref}")


def learner_for(context: RowContext, row: dict[str, str], organisation_id: str,
                *, lookup_key: str | None = None,
                profile: LearnerProfile | None = None) -> tuple[str, LearnerProfile]:
    """The learner's pseudonymous id: found by student number (or ``lookup_key``) through the
    vault's blind index, or registered now."""
    key = lookup_key or text(row, "student_number")
    found = context.vault.find_by_student_number(organisation_id, key)
    if found is not None:
        return found, context.vault.get(found)
    if profile is None:
        profile = LearnerProfile(
            organisation_id=organisation_id, student_number=key,
            given_name=text(row, "given_name"), family_name=text(row, "family_name"),
            born_on=required_day(row, "birth_date"),
            sex=_enum(Sex, row, "sex", Sex.NOT_REPORTED),
            race_ethnicity=_enum(RaceEthnicity, row, "race_ethnicity",
                                 RaceEthnicity.NOT_REPORTED),
            economically_disadvantaged=flag(row, "economically_disadvantaged", None),
            disability=flag(row, "disability", None),
            english_learner=flag(row, "english_learner", None),
        )
    from domain.learner import check_profile

    check_profile(profile, today=context.ledger.today())
    learner_id = context.vault.register(profile, lookup_key=lookup_key)
    context.registered.append(learner_id)
    return learner_id, profile


def sign_and_start(context: RowContext, placement_id: UUID, learner_id: str,
                   organisation_id: str, employer_name: str, started_on: date) -> None:
    coordinator = Actor(context.actor.id, context.actor.role, organisation_id)
    signers = {
        "learner": Actor(learner_id, Role.LEARNER, organisation_id),
        "guardian": Actor(f"guardian-of-{learner_id}", Role.GUARDIAN, organisation_id),
        "employer": Actor(f"employer:{employer_name}", Role.EMPLOYER, organisation_id),
        "coordinator": coordinator,
    }
    placement = context.ledger.get_placement(placement_id)
    for party in placement.required_parties:
        context.ledger.sign_agreement(signers[party], placement_id, party=party,
                                      signed_on=started_on)
    context.ledger.start_placement(coordinator, placement_id,
                                   started_on=started_on)


def placement_row(context: RowContext, row: dict[str, str]) -> None:
    org = context.organisation(row)
    ref = text(row, "placement_ref")
    placement_id = stable_id(org, "placement", ref)
    coordinator = Actor(context.actor.id, context.actor.role, org)
    status = (row.get("status") or "active").lower()
    if status not in ("active", "completed", "withdrawn"):
        raise RuleViolated(f"Status {status!r} is not active, completed or withdrawn.",
                           code="bad-status", field="status")
    if not context.ledger.exists(placement_id):
        learner_id, profile = learner_for(context, row, org)
        starts_on, ends_on = required_day(row, "start_date"), required_day(row, "end_date")
        employer = text(row, "employer_name")
        opportunity = context.ledger.post_opportunity(
            coordinator, id=stable_id(org, "opportunity", ref), organisation_id=org,
            title=text(row, "title"), employer_name=employer,
            worksite=row.get("worksite") or employer, wbl_type=text(row, "wbl_type"),
            pre_apprenticeship=bool(flag(row, "pre_apprenticeship")),
            paid=bool(flag(row, "paid")), hourly_wage=_money(row, "hourly_wage"),
            starts_on=starts_on, ends_on=ends_on, posted_on=starts_on,
        ).aggregate_id
        context.ledger.match_learner(
            coordinator, opportunity, learner_id=learner_id,
            supervisor_id=text(row, "supervisor_id"), learner_born_on=profile.born_on,
            matched_on=starts_on, placement_id=placement_id,
            program_id=UUID(row["program_id"]) if row.get("program_id") else None)
        sign_and_start(context, placement_id, learner_id, org, employer, starts_on)
    placement = context.ledger.get_placement(placement_id)
    if status == "completed" and placement.status is not PlacementStatus.COMPLETED:
        context.ledger.complete_placement(coordinator, placement_id,
                                          completed_on=day(row, "ended_on"))
    if status == "withdrawn" and placement.status is not PlacementStatus.WITHDRAWN:
        context.ledger.withdraw_placement(coordinator, placement_id,
                                          reason=text(row, "end_reason"),
                                          withdrawn_on=day(row, "ended_on"))


def _money(row: dict[str, str], column: str) -> Decimal | None:
    value = row.get(column, "")
    if not value:
        return None
    try:
        return Decimal(value.lstrip("$"))
    except InvalidOperation:
        raise RuleViolated(f"{value!r} in {column!r} is not an amount.", code="bad-amount",
                           field=column) from None


E = TypeVar("E", Sex, RaceEthnicity)


def _enum(kind: type[E], row: dict[str, str], column: str, default: E) -> E:
    value = row.get(column, "")
    if not value:
        return default
    try:
        return kind(value)
    except ValueError:
        options = ", ".join(v.value for v in kind)
        raise RuleViolated(f"{value!r} in {column!r} is not one of: {options}.",
                           code="bad-code", field=column) from None

