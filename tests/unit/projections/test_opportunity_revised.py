"""``OpportunityRevised`` in the folds that show an opportunity: the opportunities read
model takes the revised terms and keeps its status and posting; the transcript names the
opportunity as it reads now, the last revision of a poll winning; the audit trail has its
sentence."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from projections import audit_trail, opportunities, transcript
from tests.unit.projections.test_folds import env

POSTED: dict[str, Any] = {
    "actor_id": "coord-1", "actor_role": "coordinator", "business_date": "2026-01-02",
    "organisation_id": "org-1", "title": "Clerk", "employer_name": "Acme",
    "worksite": "Main St", "wbl_type": "PaidInternship", "pre_apprenticeship": False,
    "occupation_code": None, "career_pathway": None, "paid": True, "hourly_wage": "16.00",
    "capacity": 1, "starts_on": "2026-01-12", "ends_on": "2026-05-22", "minimum_age": None,
    "hazardous": False}
REVISED = POSTED | {"business_date": "2026-01-05", "title": "Office clerk",
                    "worksite": "Depot 4", "hourly_wage": "16.50", "capacity": 3,
                    "ends_on": "2026-06-05"}


def _events() -> list[Any]:
    return [env("OpportunityPosted", POSTED, 1, 1, "o-1", "Opportunity"),
            env("OpportunityRevised", REVISED, 2, 2, "o-1", "Opportunity"),
            env("OpportunityClosed", {"actor_id": "coord-1", "actor_role": "coordinator",
                                      "business_date": "2026-02-01", "reason": "Filled"},
                3, 3, "o-1", "Opportunity")]


def test_the_opportunity_view_takes_the_revised_terms() -> None:
    view = None
    for event in _events():
        view = opportunities.evolve(view, event)
    assert view is not None
    assert (view.title, view.worksite, view.hourly_wage, view.capacity, view.ends_on) == (
        "Office clerk", "Depot 4", Decimal("16.50"), 3, date(2026, 6, 5))
    assert (view.status, view.posted_on, view.version) == ("closed", date(2026, 1, 2), 3)


def test_the_transcript_names_the_opportunity_as_revised() -> None:
    rows = [transcript.opportunity_row(e) for e in _events()]
    assert [r["title"] for r in rows if r is not None] == ["Clerk", "Office clerk"]
    assert rows[1] is not None and rows[1]["wbl_type"] == "PaidInternship"


def test_the_audit_trail_says_what_was_revised() -> None:
    assert audit_trail.summary(_events()[1]) == (
        'Revised opportunity "Office clerk" at Acme (2026-01-12 to 2026-06-05, capacity 3)')
