"""Timesheets: one row per block of time, with the supervisor's decision if one was made.

Columns: placement_ref, organisation_id, work_date, minutes (or hours, e.g. 4.5), kind
(on_the_job | related_instruction), decision (approved | rejected | pending), decided_by,
decided_on, reason.

Hours become integer minutes exactly (4.5 h -> 270); a value that is not a whole number of
minutes is refused, never rounded. A row already in the ledger (same placement, date, kind
and minutes, with the same outcome) is left as it is, so a timesheet can be imported again
after fixing its refused rows.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from domain.actor import Actor, Role
from domain.errors import RuleViolated, UnknownAggregate
from domain.placement.hours import EntryStatus
from services.importing.core import RowContext, day, required_day, text
from services.importing.placements import stable_id

REQUIRED = {"placement_ref", "work_date"}


def minutes_of(row: dict[str, str]) -> int:
    if row.get("minutes"):
        raw, factor, column = row["minutes"], Decimal(1), "minutes"
    elif row.get("hours"):
        raw, factor, column = row["hours"], Decimal(60), "hours"
    else:
        raise RuleViolated("Give minutes or hours.", code="value-required", field="minutes")
    try:
        value = Decimal(raw) * factor
    except InvalidOperation:
        raise RuleViolated(f"{raw!r} in {column!r} is not a number.", code="bad-number",
                           field=column) from None
    if value != value.to_integral_value():
        raise RuleViolated(f"{raw} {column} is not a whole number of minutes.",
                           code="minutes-not-integer", field=column)
    return int(value)


def timesheet_row(context: RowContext, row: dict[str, str]) -> None:
    org = context.organisation(row)
    placement_id = stable_id(org, "placement", text(row, "placement_ref"))
    if not context.ledger.exists(placement_id):
        raise UnknownAggregate(
            f"No imported placement {row['placement_ref']!r} in {org}: import the tracker "
            f"first.", code="unknown-placement", field="placement_ref")
    placement = context.ledger.get_placement(placement_id)
    work_date = required_day(row, "work_date")
    minutes = minutes_of(row)
    kind = row.get("kind") or "on_the_job"
    decision = (row.get("decision") or "pending").lower()
    same_outcome = {EntryStatus.REJECTED} if decision == "rejected" else {
        EntryStatus.LOGGED, EntryStatus.APPROVED}
    for entry in placement.entries.values():
        if (entry.work_date, entry.minutes, str(entry.kind)) == (work_date, minutes, kind) and \
                entry.status in same_outcome:
            return  # this row is already in the ledger
    learner = Actor(placement.learner_id, Role.LEARNER, org)
    entry_id = context.ledger.log_hours(learner, placement_id, work_date=work_date,
                                        minutes=minutes, kind=kind).created_id
    assert entry_id is not None
    decider = Actor(row.get("decided_by") or placement.supervisor_id, Role.SUPERVISOR, org)
    if decision == "approved":
        context.ledger.approve_hours(decider, placement_id, entry_id=entry_id,
                                     approved_on=day(row, "decided_on", required=False))
    elif decision == "rejected":
        context.ledger.reject_hours(decider, placement_id, entry_id=entry_id,
                                    reason=text(row, "reason"),
                                    rejected_on=day(row, "decided_on", required=False))
    elif decision != "pending":
        raise RuleViolated(f"Decision {decision!r} is not approved, rejected or pending.",
                           code="bad-decision", field="decision")
