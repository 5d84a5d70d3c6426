"""Placements needing attention (decision 057), on both stores: real commands through the
ledger, their events folded into the transcript and audit-trail read models by the
projector, then the query at chosen moments."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import Engine

from domain.actor import Actor, Role
from infra.consumer import Delivery
from infra.database import read_model_engine
from infra.settings import Settings
from projections.attention import (
    NeedsAttention,
    Reason,
    placements_needing_attention,
    reason_counts,
    school_years_between,
)
from services.jobs.reporting import envelopes_until
from services.ledger import Ledger
from services.workers.projector import Projector

pytestmark = pytest.mark.integration

ORG = "school-att"
TODAY = date.today()
COORDINATOR = Actor("coord-att", Role.COORDINATOR, ORG)
SUPERVISOR = Actor("sup-att", Role.SUPERVISOR, "employer-att")


class _Reader:
    def advance(self, delivery: Delivery) -> None:
        pass


@pytest.fixture
def engine(store_settings: Settings) -> Iterator[Engine]:
    engine = read_model_engine(store_settings)
    yield engine
    engine.dispose()


def _weekday(before: date) -> date:
    day = before
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def _placement(ledger: Ledger, learner: str, born_on: date, *, start: bool = True,
               started_days_ago: int = 30) -> UUID:
    opportunity = ledger.post_opportunity(
        COORDINATOR, organisation_id=ORG, title=f"Intern {learner}", employer_name="Acme",
        worksite="Main St", wbl_type="UnpaidInternship", starts_on=TODAY - timedelta(60),
        ends_on=TODAY + timedelta(60), posted_on=TODAY - timedelta(60)).aggregate_id
    placement = ledger.match_learner(
        COORDINATOR, opportunity, learner_id=learner, supervisor_id=SUPERVISOR.id,
        learner_born_on=born_on, matched_on=TODAY - timedelta(59)).aggregate_id
    if not start:
        return placement
    signed = TODAY - timedelta(started_days_ago)
    for actor, party in ((Actor(learner, Role.LEARNER, ORG), "learner"),
                         (Actor("grd-att", Role.GUARDIAN, ORG), "guardian"),
                         (SUPERVISOR, "employer"), (COORDINATOR, "coordinator")):
        if party in ledger.get_placement(placement).required_parties:
            ledger.sign_agreement(actor, placement, party=party, signed_on=signed)
    ledger.start_placement(COORDINATOR, placement, started_on=signed)
    return placement


def _fold(ledger: Ledger, engine: Engine) -> None:
    last = ledger.recorder.max_notification_id() or 0
    projector = Projector(engine, bootstrap="unused", topic="attention")
    envelopes = list(envelopes_until(ledger, last, "test"))
    projector.apply_batch(_Reader(), [Delivery(0, i, e)  # type: ignore[arg-type]
                                      for i, e in enumerate(envelopes)])


def _by_id(engine: Engine, now: datetime, years: set[str]) -> dict[str, NeedsAttention]:
    with engine.connect() as conn:
        found = placements_needing_attention(conn, organisation_id=ORG, now=now,
                                             recorded_school_years=years)
    return {a.placement_id: a for a in found}


def test_each_reason_is_found_and_only_for_open_placements_of_the_organisation(
    ledger: Ledger, engine: Engine,
) -> None:
    adult = TODAY - timedelta(days=365 * 20)
    fifteen = TODAY - timedelta(days=365 * 15 + 40)
    quiet = _placement(ledger, "lrn-quiet", adult)
    busy = _placement(ledger, "lrn-busy", adult)
    yesterday = _weekday(TODAY - timedelta(1))
    pending = ledger.log_hours(Actor("lrn-busy", Role.LEARNER, ORG), busy,
                               work_date=yesterday, minutes=120).created_id
    matched_only = _placement(ledger, "lrn-matched", adult, start=False)
    done = _placement(ledger, "lrn-done", adult)
    ledger.complete_placement(COORDINATOR, done)
    # a minor at a school whose policy flags (not refuses) hours beyond the FLSA limits
    ledger.set_child_labour_policy(Actor("adm-att", Role.ADMIN), ORG, policy="flag",
                                   reason="WECEP exemption")
    young = _placement(ledger, "lrn-young", fifteen)
    day = _weekday(TODAY - timedelta(3))
    minor = Actor("lrn-young", Role.LEARNER, ORG)
    kept = ledger.log_hours(minor, young, work_date=day, minutes=300).created_id
    dropped = ledger.log_hours(minor, young, work_date=_weekday(day - timedelta(1)),
                               minutes=300).created_id
    ledger.approve_hours(SUPERVISOR, young, entry_id=str(kept))
    ledger.reject_hours(SUPERVISOR, young, entry_id=str(dropped), reason="Too long a day")
    # another school's quiet placement stays out of this school's list
    other = Actor("coord-other", Role.COORDINATOR, "school-other")
    elsewhere = ledger.post_opportunity(
        other, organisation_id="school-other", title="Elsewhere", employer_name="B",
        worksite="B St", wbl_type="UnpaidInternship", starts_on=TODAY - timedelta(60),
        ends_on=TODAY + timedelta(60), posted_on=TODAY - timedelta(60)).aggregate_id
    ledger.match_learner(other, elsewhere, learner_id="lrn-b", supervisor_id="sup-b",
                         learner_born_on=adult)
    _fold(ledger, engine)

    now = datetime.now(UTC)
    found = _by_id(engine, now, set())
    assert set(found) == {str(quiet), str(young)}, "busy, matched, done and other: none"
    assert found[str(quiet)].reasons == (Reason.NO_RECENT_HOURS,)
    assert found[str(quiet)].last_work_date is None
    young_reasons = found[str(young)]
    assert young_reasons.reasons == (Reason.MINOR_FLAGGED, Reason.CALENDAR_MISSING)
    assert young_reasons.minor and "calendar-missing" in young_reasons.flags
    assert young_reasons.missing_school_years == tuple(
        school_years_between(TODAY - timedelta(60), TODAY + timedelta(60)))
    assert str(matched_only) not in found and str(done) not in found

    # with the calendar recorded, only the flags of the approved entry remain
    years = set(school_years_between(TODAY - timedelta(60), TODAY + timedelta(60)))
    assert _by_id(engine, now, years)[str(young)].reasons == (Reason.MINOR_FLAGGED,)

    # eight days on, the busy placement's entry has waited over 7 days since it was logged
    later = _by_id(engine, now + timedelta(days=8), years)
    assert later[str(busy)].reasons == (Reason.APPROVAL_OVERDUE,)
    assert later[str(busy)].overdue_entries == 1
    assert pending is not None
    with engine.connect() as conn:
        counts = reason_counts(placements_needing_attention(
            conn, organisation_id=ORG, now=now + timedelta(days=8),
            recorded_school_years=years))
    assert counts == {"no-recent-hours": 1, "approval-overdue": 1, "minor-flagged": 1,
                      "calendar-missing": 0}


def test_school_years_run_from_july_to_june() -> None:
    assert school_years_between(date(2026, 6, 30), date(2026, 7, 1)) == [
        "2025-2026", "2026-2027"]
    assert school_years_between(date(2026, 9, 1), date(2027, 5, 1)) == ["2026-2027"]
