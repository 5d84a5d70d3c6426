"""Revising an opportunity: the offer's terms change for the matches still to come, by the
same rules as a posting; placements already matched keep what they copied; a closed
opportunity and a revision that changes nothing are refused, recording nothing."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from domain.errors import RuleViolated, WrongState
from domain.opportunity import Opportunity
from domain.placement import Placement
from tests.unit.domain.factories import (
    ADULT_BORN,
    COORDINATOR,
    ENDS,
    LEARNER,
    STARTS,
    SUPERVISOR,
    TODAY,
    opportunity,
    refused,
    replayed,
)


def terms(o: Opportunity, **changes: Any) -> dict[str, Any]:
    current: dict[str, Any] = dict(
        title=o.title, employer_name=o.employer_name, worksite=o.worksite,
        occupation_code=o.occupation_code, career_pathway=o.career_pathway, paid=o.paid,
        hourly_wage=o.hourly_wage, capacity=o.capacity, starts_on=o.starts_on,
        ends_on=o.ends_on, minimum_age=o.minimum_age, hazardous=o.hazardous)
    return current | changes


def test_a_revision_records_the_whole_offer_and_later_matches_copy_it() -> None:
    offer = opportunity()
    earlier = Placement.match(actor=COORDINATOR, opportunity=offer, program=None,
                              learner_id=LEARNER.id, supervisor_id=SUPERVISOR.id,
                              learner_born_on=ADULT_BORN, matched_on=TODAY)
    later_end = ENDS + timedelta(days=30)
    offer.revise(actor=COORDINATOR, revised_on=TODAY, **terms(
        offer, title="Electrical apprentice (evenings)", capacity=3, ends_on=later_end,
        hourly_wage=Decimal("18.25")))
    revised = offer.collect_events()[-1]
    assert type(revised).__name__ == "OpportunityRevised"
    assert revised.wbl_type == "PaidInternship"  # type: ignore[attr-defined]
    assert revised.organisation_id == offer.organisation_id  # type: ignore[attr-defined]
    assert (offer.title, offer.capacity, offer.ends_on, offer.hourly_wage) == (
        "Electrical apprentice (evenings)", 3, later_end, Decimal("18.25"))
    assert earlier.ends_on == ENDS, "a placement keeps the dates it was matched with"
    later = Placement.match(actor=COORDINATOR, opportunity=offer, program=None,
                            learner_id="learner-2", supervisor_id=SUPERVISOR.id,
                            learner_born_on=ADULT_BORN, matched_on=TODAY)
    assert later.ends_on == later_end


def test_a_revision_replays_to_the_same_state() -> None:
    offer = opportunity()
    offer.revise(actor=COORDINATOR, revised_on=TODAY, **terms(offer, worksite="Depot 4"))
    assert replayed(offer).worksite == "Depot 4"


def test_a_revision_keeps_the_rules_of_a_posting() -> None:
    offer = opportunity()
    with refused(offer, RuleViolated, "dates-reversed"):
        offer.revise(actor=COORDINATOR, revised_on=TODAY,
                     **terms(offer, ends_on=STARTS - timedelta(days=1)))
    with refused(offer, RuleViolated, "wage-required"):
        offer.revise(actor=COORDINATOR, revised_on=TODAY, **terms(offer, hourly_wage=None))
    with refused(offer, RuleViolated, "hazardous-minimum-age"):
        offer.revise(actor=COORDINATOR, revised_on=TODAY, **terms(offer, hazardous=True))
    with refused(offer, RuleViolated, "title-required"):
        offer.revise(actor=COORDINATOR, revised_on=TODAY, **terms(offer, title="  "))


def test_nothing_to_revise_and_a_closed_opportunity_are_refused() -> None:
    offer = opportunity()
    with refused(offer, RuleViolated, "nothing-revised"):
        offer.revise(actor=COORDINATOR, revised_on=TODAY, **terms(offer))
    offer.close(actor=COORDINATOR, reason="Filled", closed_on=date(2024, 2, 1))
    with refused(offer, WrongState, "opportunity-closed"):
        offer.revise(actor=COORDINATOR, revised_on=TODAY, **terms(offer, capacity=9))
