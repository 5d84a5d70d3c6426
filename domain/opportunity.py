"""An opportunity: a work-based-learning offer posted by an employer or a coordinator.

Learners are later matched to an opportunity, and each match becomes a
placement; the opportunity carries what a placement inherits (type, worksite,
pay, hazard flag, minimum age), so those facts are recorded once, when posted.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event

from domain.actor import Actor
from domain.errors import RuleViolated, WrongState


class WBLType(StrEnum):
    """Work-based-learning type: the CEDS element 001499 option set.

    States report participation by these codes; keeping the CEDS spelling means
    no translation table sits between the ledger and a state feed.
    """

    APPRENTICESHIP = "Apprenticeship"
    CLINICAL_WORK = "ClinicalWork"
    COOPERATIVE_EDUCATION = "CooperativeEducation"
    JOB_SHADOWING = "JobShadowing"
    MENTORSHIP = "Mentorship"
    NON_PAID_INTERNSHIP = "NonPaidInternship"
    ON_THE_JOB = "OnTheJob"
    PAID_INTERNSHIP = "PaidInternship"
    SERVICE_LEARNING = "ServiceLearning"
    SUPERVISED_AGRICULTURAL = "SupervisedAgricultural"
    UNPAID_INTERNSHIP = "UnpaidInternship"
    OTHER = "Other"


class Opportunity(Aggregate):
    """A posted offer of work-based learning.

    Events: ``OpportunityPosted``, ``OpportunityRevised``, ``OpportunityClosed``.
    """

    id: UUID  # lets an import give the id (stable across re-runs); otherwise a new uuid4

    @classmethod
    def post(
        cls,
        *,
        actor: Actor,
        organisation_id: str,
        title: str,
        employer_name: str,
        worksite: str,
        wbl_type: WBLType | str,
        pre_apprenticeship: bool = False,
        occupation_code: str | None = None,
        career_pathway: str | None = None,
        paid: bool = False,
        hourly_wage: Decimal | None = None,
        capacity: int = 1,
        starts_on: date,
        ends_on: date,
        minimum_age: int | None = None,
        hazardous: bool = False,
        posted_on: date,
        id: UUID | None = None,
    ) -> Opportunity:
        """Check the offer's own consistency, then record ``OpportunityPosted``."""
        wbl_type = _parse_wbl_type(wbl_type)
        _check_terms(title=title, employer_name=employer_name, paid=paid,
                     hourly_wage=hourly_wage, capacity=capacity, starts_on=starts_on,
                     ends_on=ends_on, minimum_age=minimum_age, hazardous=hazardous)
        return cls(
            id=id or uuid4(),  # type: ignore[call-arg]  # accepted by the metaclass (id: UUID)
            actor_id=actor.id,
            actor_role=str(actor.role),
            organisation_id=organisation_id,
            title=title.strip(),
            employer_name=employer_name.strip(),
            worksite=worksite,
            wbl_type=str(wbl_type),
            pre_apprenticeship=pre_apprenticeship,
            occupation_code=occupation_code,
            career_pathway=career_pathway,
            paid=paid,
            hourly_wage=hourly_wage,
            capacity=capacity,
            starts_on=starts_on,
            ends_on=ends_on,
            minimum_age=minimum_age,
            hazardous=hazardous,
            business_date=posted_on,
        )

    @event("OpportunityPosted")
    def __init__(
        self,
        *,
        actor_id: str,
        actor_role: str,
        organisation_id: str,
        title: str,
        employer_name: str,
        worksite: str,
        wbl_type: str,
        pre_apprenticeship: bool,
        occupation_code: str | None,
        career_pathway: str | None,
        paid: bool,
        hourly_wage: Decimal | None,
        capacity: int,
        starts_on: date,
        ends_on: date,
        minimum_age: int | None,
        hazardous: bool,
        business_date: date,
    ) -> None:
        """An employer or coordinator offered a work-based-learning opportunity.

        Everything a placement inherits (CEDS 001499 type, worksite, pay, hazard flag,
        minimum age) is fixed here, once, so later matches cannot disagree about it.
        """
        self.organisation_id = organisation_id
        self.title = title
        self.employer_name = employer_name
        self.worksite = worksite
        self.wbl_type = WBLType(wbl_type)
        self.pre_apprenticeship = pre_apprenticeship
        self.occupation_code = occupation_code
        self.career_pathway = career_pathway
        self.paid = paid
        self.hourly_wage = hourly_wage
        self.capacity = capacity
        self.starts_on = starts_on
        self.ends_on = ends_on
        self.minimum_age = minimum_age
        self.hazardous = hazardous
        self.posted_on = business_date
        self.closed = False
        self.closed_reason: str | None = None

    def revise(
        self,
        *,
        actor: Actor,
        title: str,
        employer_name: str,
        worksite: str,
        occupation_code: str | None = None,
        career_pathway: str | None = None,
        paid: bool = False,
        hourly_wage: Decimal | None = None,
        capacity: int = 1,
        starts_on: date,
        ends_on: date,
        minimum_age: int | None = None,
        hazardous: bool = False,
        revised_on: date,
    ) -> None:
        """Change the offer's terms for the matches still to come. Its type and organisation
        stay (post another opportunity for another kind of placement); placements already
        matched keep the dates and terms they copied when matched (``LearnerMatched``)."""
        if self.closed:
            raise WrongState("A closed opportunity takes no revision; post a new one.",
                             code="opportunity-closed")
        _check_terms(title=title, employer_name=employer_name, paid=paid,
                     hourly_wage=hourly_wage, capacity=capacity, starts_on=starts_on,
                     ends_on=ends_on, minimum_age=minimum_age, hazardous=hazardous)
        terms: dict[str, Any] = dict(
            title=title.strip(), employer_name=employer_name.strip(), worksite=worksite,
            occupation_code=occupation_code, career_pathway=career_pathway, paid=paid,
            hourly_wage=hourly_wage, capacity=capacity, starts_on=starts_on, ends_on=ends_on,
            minimum_age=minimum_age, hazardous=hazardous)
        if all(getattr(self, name) == value for name, value in terms.items()):
            raise RuleViolated("The revision changes nothing.", code="nothing-revised")
        self._revised(actor_id=actor.id, actor_role=str(actor.role),
                      business_date=revised_on, organisation_id=self.organisation_id,
                      wbl_type=self.wbl_type.value,
                      pre_apprenticeship=self.pre_apprenticeship, **terms)

    @event("OpportunityRevised")
    def _revised(
        self,
        *,
        actor_id: str,
        actor_role: str,
        business_date: date,
        organisation_id: str,
        title: str,
        employer_name: str,
        worksite: str,
        wbl_type: str,
        pre_apprenticeship: bool,
        occupation_code: str | None,
        career_pathway: str | None,
        paid: bool,
        hourly_wage: Decimal | None,
        capacity: int,
        starts_on: date,
        ends_on: date,
        minimum_age: int | None,
        hazardous: bool,
    ) -> None:
        """A coordinator revised the offer's terms; the event holds the whole offer as
        revised (its type and organisation unchanged), so a reader needs no earlier event.
        Later matches copy these terms; placements matched before keep theirs."""
        self.title = title
        self.employer_name = employer_name
        self.worksite = worksite
        self.occupation_code = occupation_code
        self.career_pathway = career_pathway
        self.paid = paid
        self.hourly_wage = hourly_wage
        self.capacity = capacity
        self.starts_on = starts_on
        self.ends_on = ends_on
        self.minimum_age = minimum_age
        self.hazardous = hazardous

    def close(self, *, actor: Actor, reason: str, closed_on: date) -> None:
        """Stop taking matches; placements already matched carry on."""
        if self.closed:
            raise WrongState("The opportunity is already closed.", code="opportunity-closed")
        if not reason.strip():
            raise RuleViolated("Closing an opportunity needs a reason.", code="reason-required",
                               field="reason")
        self._closed(actor_id=actor.id, actor_role=str(actor.role), reason=reason.strip(),
                     business_date=closed_on)

    @event("OpportunityClosed")
    def _closed(self, *, actor_id: str, actor_role: str, reason: str, business_date: date) -> None:
        """The opportunity stopped taking matches; placements already matched carry on."""
        self.closed = True
        self.closed_reason = reason


def _parse_wbl_type(value: WBLType | str) -> WBLType:
    try:
        return WBLType(value)
    except ValueError:
        options = ", ".join(t.value for t in WBLType)
        raise RuleViolated(
            f"{value!r} is not a CEDS work-based-learning type (001499); use one of: {options}.",
            code="unknown-wbl-type",
            field="wbl_type",
        ) from None


def _check_terms(*, title: str, employer_name: str, paid: bool, hourly_wage: Decimal | None,
                 capacity: int, starts_on: date, ends_on: date, minimum_age: int | None,
                 hazardous: bool) -> None:
    """The rules every version of an offer keeps, posted or revised."""
    if not title.strip():
        raise RuleViolated(
            "An opportunity needs a title.", code="title-required", field="title"
        )
    if not employer_name.strip():
        raise RuleViolated(
            "An opportunity needs the employer's name.",
            code="employer-required",
            field="employer_name",
        )
    if ends_on < starts_on:
        raise RuleViolated(
            f"The opportunity ends ({ends_on}) before it starts ({starts_on}).",
            code="dates-reversed",
            field="ends_on",
        )
    if capacity < 1:
        raise RuleViolated(
            "Capacity is the number of learners it can take: at least 1.",
            code="capacity-too-small",
            field="capacity",
        )
    if paid and (hourly_wage is None or hourly_wage <= 0):
        raise RuleViolated(
            "A paid opportunity states its hourly wage (greater than zero).",
            code="wage-required",
            field="hourly_wage",
        )
    if not paid and hourly_wage is not None:
        raise RuleViolated(
            "An unpaid opportunity cannot state a wage.",
            code="wage-on-unpaid",
            field="hourly_wage",
        )
    if minimum_age is not None and not 12 <= minimum_age <= 99:
        raise RuleViolated(
            "Minimum age must be between 12 and 99.",
            code="minimum-age-out-of-range",
            field="minimum_age",
        )
    if hazardous and (minimum_age is None or minimum_age < 16):
        # FLSA hazardous-occupation orders bar under-16s from hazardous work
        # (29 CFR 570.33, 570.50+); a hazardous posting must say so up front.
        raise RuleViolated(
            "A hazardous-occupation opportunity must set a minimum age of at least 16 "
            "(FLSA hazardous occupations orders).",
            code="hazardous-minimum-age",
            field="minimum_age",
        )


def summary(opportunity: Opportunity) -> dict[str, Any]:
    """The opportunity's current state as plain values, for the service layer."""
    return {
        "id": str(opportunity.id),
        "version": opportunity.version,
        "organisation_id": opportunity.organisation_id,
        "title": opportunity.title,
        "employer_name": opportunity.employer_name,
        "wbl_type": opportunity.wbl_type.value,
        "closed": opportunity.closed,
    }
