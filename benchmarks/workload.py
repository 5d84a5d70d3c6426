"""A realistic history for benchmarks: placements with signatures, hour logs and approvals."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from domain.actor import Actor, Role
from services.ledger import Ledger

ORG = "org-bench"
COORDINATOR = Actor("coord-1", Role.COORDINATOR, ORG)
SUPERVISOR = Actor("super-1", Role.SUPERVISOR, ORG)
EMPLOYER = Actor("employer-1", Role.EMPLOYER, ORG)


def write_history(ledger: Ledger, events: int) -> int:
    """Record placements until at least ``events`` events are stored; return the count."""
    opportunity = ledger.post_opportunity(
        COORDINATOR, organisation_id=ORG, title="Machinist intern", employer_name="Acme",
        worksite="Main St", wbl_type="PaidInternship", paid=True, hourly_wage=Decimal("16.50"),
        starts_on=date(2026, 1, 5), ends_on=date(2026, 6, 30), posted_on=date(2026, 1, 2),
    ).aggregate_id
    n = 0
    while (ledger.recorder.max_notification_id() or 0) < events:
        learner = Actor(f"learner-{n}", Role.LEARNER, ORG)
        placement = ledger.match_learner(
            COORDINATOR, opportunity, learner_id=learner.id, supervisor_id=SUPERVISOR.id,
            learner_born_on=date(2000, 1, 1), matched_on=date(2026, 1, 3)).aggregate_id
        for party, actor in (("learner", learner), ("employer", EMPLOYER),
                             ("coordinator", COORDINATOR)):
            ledger.sign_agreement(actor, placement, party=party, signed_on=date(2026, 1, 4))
        ledger.start_placement(COORDINATOR, placement, started_on=date(2026, 1, 5))
        for day in range(8):
            worked = date(2026, 1, 5) + timedelta(days=day)
            entry = ledger.log_hours(learner, placement, work_date=worked, minutes=240)
            ledger.approve_hours(SUPERVISOR, placement, entry_id=str(entry.created_id),
                                 approved_on=worked + timedelta(days=1))
        n += 1
    return ledger.recorder.max_notification_id() or 0
