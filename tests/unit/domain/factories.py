"""Builders for domain tests: actors, an opportunity, a program, a placement in each state."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from domain.actor import Actor, Role
from domain.errors import DomainError
from domain.opportunity import Opportunity
from domain.placement import Placement
from domain.program import ApprenticeshipProgram

ORG = "org-1"
COORDINATOR = Actor("coord-1", Role.COORDINATOR, ORG)
OTHER_COORDINATOR = Actor("coord-9", Role.COORDINATOR, "org-9")
LEARNER = Actor("learner-1", Role.LEARNER)
SUPERVISOR = Actor("super-1", Role.SUPERVISOR)
OTHER_SUPERVISOR = Actor("super-2", Role.SUPERVISOR)
EMPLOYER = Actor("employer-1", Role.EMPLOYER)
GUARDIAN = Actor("guardian-1", Role.GUARDIAN)
SPONSOR = Actor("sponsor-1", Role.SPONSOR)

STARTS = date(2024, 1, 8)  # a Monday
ENDS = date(2025, 12, 31)
TODAY = date(2024, 6, 3)
ADULT_BORN = date(2000, 3, 15)
MINOR_BORN = date(2009, 1, 1)  # 15 at the start, 16 on 2025-01-01

WORK_PROCESSES = {"Safety": 500, "Wiring": 1000, "Troubleshooting": 500}
COMPETENCIES = ["Reads blueprints", "Installs conduit", "Tests circuits"]


def opportunity(**overrides: Any) -> Opportunity:
    details: dict[str, Any] = dict(
        actor=COORDINATOR, organisation_id=ORG, title="Electrical apprentice",
        employer_name="Sparks Ltd", worksite="Main St", wbl_type="PaidInternship", paid=True,
        hourly_wage=Decimal("17.50"), starts_on=STARTS, ends_on=ENDS, posted_on=date(2024, 1, 2),
    )
    details.update(overrides)
    return Opportunity.post(**details)


def program(**overrides: Any) -> ApprenticeshipProgram:
    details: dict[str, Any] = dict(
        actor=SPONSOR, sponsor_id="sponsor-org", sponsor_name="IBEW JATC",
        title="Inside wireman", rapids_code="0159", onet_code="47-2111.00",
        approach="time_based", ojl_hours=2000, work_processes=WORK_PROCESSES,
        competencies=COMPETENCIES,
        wage_schedule=[{"after_hours": 0, "hourly_wage": Decimal("18.00")},
                       {"after_hours": 1000, "hourly_wage": Decimal("21.00")}],
        defined_on=date(2024, 1, 1),
    )
    details.update(overrides)
    return ApprenticeshipProgram.define(**details)


BORN: dict[UUID, date] = {}
"""Each test placement's learner's birth date: the vault's part in the service."""


def born_of(placement: Placement) -> date:
    return BORN.get(placement.id, ADULT_BORN)


def matched(*, born: date = ADULT_BORN, apprenticeship: ApprenticeshipProgram | None = None,
            **opportunity_overrides: Any) -> Placement:
    if apprenticeship is not None:
        opportunity_overrides.setdefault("wbl_type", "Apprenticeship")
    placement = Placement.match(
        actor=COORDINATOR, opportunity=opportunity(**opportunity_overrides),
        program=apprenticeship, learner_id=LEARNER.id, supervisor_id=SUPERVISOR.id,
        learner_born_on=born, matched_on=date(2024, 1, 3),
    )
    BORN[placement.id] = born
    return placement


def sign_all(placement: Placement) -> None:
    signers = {"learner": LEARNER, "guardian": GUARDIAN, "employer": EMPLOYER,
               "coordinator": COORDINATOR}
    for party in placement.required_parties:
        placement.sign_agreement(actor=signers[party], party=party, signed_on=date(2024, 1, 4),
                                 today=TODAY)


def active(*, born: date = ADULT_BORN, apprenticeship: ApprenticeshipProgram | None = None,
           **opportunity_overrides: Any) -> Placement:
    placement = matched(born=born, apprenticeship=apprenticeship, **opportunity_overrides)
    sign_all(placement)
    placement.start(actor=COORDINATOR, started_on=STARTS, today=TODAY)
    return placement


def log(placement: Placement, work_date: date = date(2024, 1, 9), minutes: int = 240,
        actor: Actor = LEARNER, **kwargs: Any) -> str:
    kwargs.setdefault("today", TODAY)
    kwargs.setdefault("learner_born_on", born_of(placement))
    return placement.log_hours(actor=actor, work_date=work_date, minutes=minutes, **kwargs)


def approve(placement: Placement, entry_id: str) -> None:
    placement.approve_hours(actor=SUPERVISOR, entry_id=entry_id, approved_on=TODAY, today=TODAY)


def replayed(placement: Any) -> Any:
    """Rebuild an aggregate from the events it has recorded (not yet collected)."""
    events = placement.collect_events()
    rebuilt = None
    for domain_event in events:
        rebuilt = domain_event.mutate(rebuilt)
    # Put the events back so the caller's aggregate is unchanged.
    placement._pending_events.extend(events)
    return rebuilt


def state(aggregate: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


@contextmanager
def refused(aggregate: Any, error_type: type[DomainError], code: str) -> Iterator[None]:
    """The command inside is refused with this error and code, and records nothing."""
    before_version = aggregate.version
    before_pending = len(aggregate._pending_events)
    before_state = copy.deepcopy(state(aggregate))
    with pytest.raises(error_type) as info:
        yield
    assert info.value.code == code, info.value.detail
    assert info.value.detail
    assert aggregate.version == before_version
    assert len(aggregate._pending_events) == before_pending
    assert state(aggregate) == before_state
