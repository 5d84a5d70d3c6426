"""The ledger application on SQLite and PostgreSQL: every lifecycle step through the
service, refusals that store nothing, the 24-hour day across placements under concurrency,
concurrent corrections, and reading a stored version-1 HoursLogged event."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from domain.actor import Actor, Role
from domain.errors import (
    ConcurrentChange,
    NotPermitted,
    RuleViolated,
    StaleVersion,
    UnknownAggregate,
    WrongState,
)
from domain.learner_day import LearnerDay
from domain.placement import Placement, PlacementStatus
from domain.placement.hours import EntryStatus
from services.ledger import Ledger

ORG = "org-1"
COORDINATOR = Actor("coord-1", Role.COORDINATOR, ORG)
LEARNER = Actor("learner-1", Role.LEARNER)
SUPERVISOR = Actor("super-1", Role.SUPERVISOR)
SUPERVISOR_2 = Actor("super-2", Role.SUPERVISOR)
EMPLOYER = Actor("employer-1", Role.EMPLOYER)
SPONSOR = Actor("sponsor-1", Role.SPONSOR)
TODAY = date(2024, 6, 3)
DAY = date(2024, 1, 9)


@pytest.fixture
def app(ledger: Ledger) -> Ledger:
    ledger.today = lambda: TODAY  # type: ignore[method-assign]
    return ledger


def _opportunity(app: Ledger, **overrides: Any) -> UUID:
    details: dict[str, Any] = dict(
        organisation_id=ORG, title="Apprentice electrician", employer_name="Sparks",
        worksite="Main St", wbl_type="PaidInternship", paid=True, hourly_wage=Decimal("17.50"),
        starts_on=date(2024, 1, 8), ends_on=date(2025, 12, 31),
    )
    details.update(overrides)
    return app.post_opportunity(COORDINATOR, **details).aggregate_id


def _program(app: Ledger, **overrides: Any) -> UUID:
    details: dict[str, Any] = dict(
        sponsor_id="jatc", sponsor_name="JATC", title="Inside wireman", rapids_code="0159",
        onet_code="47-2111.00", approach="competency_based", ojl_hours=2000,
        work_processes={"Safety": 1000, "Wiring": 1000}, competencies=["Wiring basics"],
        wage_schedule=[{"after_hours": 0, "hourly_wage": Decimal("18.00")}],
        pre_apprenticeship_hours_count=True,
    )
    details.update(overrides)
    return app.define_program(SPONSOR, **details).aggregate_id


def _started(app: Ledger, supervisor: Actor = SUPERVISOR, **opportunity: Any) -> UUID:
    program_id = opportunity.pop("program_id", None)
    opportunity_id = _opportunity(app, **opportunity)
    placement_id = app.match_learner(
        COORDINATOR, opportunity_id, learner_id=LEARNER.id, supervisor_id=supervisor.id,
        learner_born_on=date(2000, 1, 1), program_id=program_id,
    ).aggregate_id
    for actor, party in [(LEARNER, "learner"), (EMPLOYER, "employer"),
                         (COORDINATOR, "coordinator")]:
        app.sign_agreement(actor, placement_id, party=party)
    app.start_placement(COORDINATOR, placement_id, started_on=date(2024, 1, 8))
    return placement_id


def _stored_count(app: Ledger) -> int:
    return app.recorder.max_notification_id() or 0


def test_every_lifecycle_step_through_the_service(app: Ledger) -> None:
    program_id = _program(app)
    assert app.get_program(program_id).title == "Inside wireman"
    placement_id = _started(app, wbl_type="Apprenticeship", program_id=program_id)
    logged = app.log_hours(LEARNER, placement_id, work_date=DAY, minutes=240,
                           allocations={"Wiring": 200})
    assert logged.created_id and logged.version == 6
    app.approve_hours(SUPERVISOR, placement_id, entry_id=logged.created_id,
                      expected_version=logged.version)
    second = app.log_hours(LEARNER, placement_id, work_date=date(2024, 1, 10), minutes=60)
    assert second.created_id
    app.reject_hours(SUPERVISOR, placement_id, entry_id=second.created_id, reason="not rota")
    corrected = app.correct_hours(COORDINATOR, placement_id, entry_id=second.created_id,
                                  reason="right day", work_date=date(2024, 1, 11), minutes=60)
    assert corrected.created_id
    app.approve_hours(SUPERVISOR, placement_id, entry_id=corrected.created_id)
    app.grant_prior_learning_credit(SPONSOR, placement_id, minutes=600, basis="prior_training")
    app.evaluate_placement(SUPERVISOR, placement_id, scores={"Wiring basics": 4},
                           evaluator_role="supervisor", comments="Ready")
    app.sign_off_competency(SUPERVISOR, placement_id, competency="Wiring basics")
    app.suspend_placement(COORDINATOR, placement_id, reason="injury")
    app.reinstate_placement(COORDINATOR, placement_id, reason="recovered")
    app.complete_placement(COORDINATOR, placement_id)
    result = app.issue_credential(COORDINATOR, placement_id, kind="ApprenticeshipCertificate",
                                  issuer="US DOL")
    placement = app.get_placement(placement_id)
    assert placement.status is PlacementStatus.COMPLETED
    assert placement.approved_minutes() == 300
    # rejected, then corrected: it stays rejected in history, replaced by the correction
    assert placement.entries[second.created_id].status is EntryStatus.REJECTED
    assert placement.entries[second.created_id].superseded_by == corrected.created_id
    assert placement.credited_minutes == 600
    assert placement.credentials[0].credential_id == result.created_id
    assert result.version == placement.version and result.position == _stored_count(app)
    assert app.learner_minutes_on(LEARNER.id, DAY) == 240
    assert app.learner_minutes_on(LEARNER.id, date(2024, 1, 10)) == 0  # rejected: released
    assert app.learner_minutes_on(LEARNER.id, date(2024, 1, 11)) == 60


def test_withdrawal_and_pre_apprenticeship_credit(app: Ledger) -> None:
    pre_id = _started(app, pre_apprenticeship=True)
    entry = app.log_hours(LEARNER, pre_id, work_date=DAY, minutes=480).created_id
    assert entry
    app.approve_hours(SUPERVISOR, pre_id, entry_id=entry)
    app.complete_placement(COORDINATOR, pre_id)
    program_id = _program(app)
    apprenticeship_id = _started(app, wbl_type="Apprenticeship", program_id=program_id)
    app.credit_pre_apprenticeship_hours(SPONSOR, apprenticeship_id, source_placement_id=pre_id)
    assert app.get_placement(apprenticeship_id).credited_minutes == 480
    with pytest.raises(RuleViolated) as info:
        app.grant_prior_learning_credit(SPONSOR, apprenticeship_id, minutes=60,
                                        basis="pre_apprenticeship")
    assert info.value.code == "source-required"
    app.withdraw_placement(LEARNER, apprenticeship_id, reason="moved", during_probation=True)
    assert app.get_placement(apprenticeship_id).status is PlacementStatus.WITHDRAWN


def test_a_refused_command_stores_nothing(app: Ledger) -> None:
    placement_id = _started(app)
    entry = app.log_hours(LEARNER, placement_id, work_date=DAY, minutes=120).created_id
    not_a_placement = _opportunity(app)
    refusals: list[tuple[type[Exception], str, Any]] = [
        (RuleViolated, "before-start",
         lambda: app.log_hours(LEARNER, placement_id, work_date=date(2024, 1, 1), minutes=60)),
        (RuleViolated, "in-future",
         lambda: app.log_hours(LEARNER, placement_id, work_date=date(2024, 7, 1), minutes=60)),
        (RuleViolated, "overlapping-entry",
         lambda: app.log_hours(LEARNER, placement_id, work_date=DAY, minutes=60)),
        (NotPermitted, "own-hours",
         lambda: app.approve_hours(LEARNER, placement_id, entry_id=entry)),
        (NotPermitted, "not-supervisor",
         lambda: app.approve_hours(SUPERVISOR_2, placement_id, entry_id=entry)),
        (RuleViolated, "evaluation-required",
         lambda: app.issue_credential(COORDINATOR, placement_id, kind="Badge", issuer="x")),
        (WrongState, "placement-active",
         lambda: app.reinstate_placement(COORDINATOR, placement_id, reason="x")),
        (StaleVersion, "stale-version",
         lambda: app.approve_hours(SUPERVISOR, placement_id, entry_id=entry,
                                   expected_version=3)),
        (StaleVersion, "stale-version",
         lambda: app.define_program(SPONSOR, expected_version=4)),
        (UnknownAggregate, "unknown-placement",
         lambda: app.approve_hours(SUPERVISOR, UUID(int=7), entry_id=entry)),
        (UnknownAggregate, "unknown-placement",
         lambda: app.get_placement(not_a_placement)),
    ]
    for error, code, command in refusals:
        before = _stored_count(app)
        with pytest.raises(error) as info:
            command()
        assert info.value.code == code  # type: ignore[attr-defined]
        assert _stored_count(app) == before, code


def test_24_hours_a_day_across_all_of_a_learners_placements(app: Ledger) -> None:
    first = _started(app)
    second = _started(app, supervisor=SUPERVISOR_2)
    app.log_hours(LEARNER, first, work_date=DAY, minutes=900)
    app.log_hours(LEARNER, second, work_date=DAY, minutes=500)
    before = _stored_count(app)
    with pytest.raises(RuleViolated) as info:
        app.log_hours(LEARNER, second, work_date=DAY, minutes=41, kind="related_instruction")
    assert info.value.code == "daily-limit-exceeded"
    assert _stored_count(app) == before
    assert app.get_placement(second).version == 6  # the placement's event was not stored
    app.log_hours(LEARNER, second, work_date=DAY, minutes=40, kind="related_instruction")
    assert app.learner_minutes_on(LEARNER.id, DAY) == 1440


def test_concurrent_logs_for_one_learner_day_cannot_both_pass(app: Ledger) -> None:
    """Two placements, two writers, each reads the learner's day before the other saves:
    the LearnerDay is written at the same version by both, so one is refused."""
    first = _started(app)
    second = _started(app, supervisor=SUPERVISOR_2)
    app.log_hours(LEARNER, first, work_date=DAY, minutes=600)
    p1: Placement = app.repository.get(first)
    p2: Placement = app.repository.get(second)
    day_a: LearnerDay = app.repository.get(LearnerDay.create_id(LEARNER.id, DAY))
    day_b: LearnerDay = app.repository.get(LearnerDay.create_id(LEARNER.id, DAY))
    e1 = p1.log_hours(actor=LEARNER, work_date=DAY, minutes=500, kind="related_instruction",
                      today=TODAY, learner_born_on=None)
    day_a.claim(actor=LEARNER, placement_id=str(first), entry_id=e1, minutes=500)
    e2 = p2.log_hours(actor=LEARNER, work_date=DAY, minutes=500, today=TODAY, learner_born_on=None)
    day_b.claim(actor=LEARNER, placement_id=str(second), entry_id=e2, minutes=500)
    app._save_all(p1, day_a)
    before = _stored_count(app)
    with pytest.raises(ConcurrentChange):
        app._save_all(p2, day_b)
    assert _stored_count(app) == before
    assert app.get_placement(second).entries == {}
    assert app.learner_minutes_on(LEARNER.id, DAY) == 1100
    # the retry re-reads the day and the rule refuses it
    with pytest.raises(RuleViolated) as info:
        app.log_hours(LEARNER, second, work_date=DAY, minutes=500)
    assert info.value.code == "daily-limit-exceeded"


def test_first_logs_of_a_new_day_race_on_creating_it(app: Ledger) -> None:
    first = _started(app)
    second = _started(app, supervisor=SUPERVISOR_2)
    p1: Placement = app.repository.get(first)
    p2: Placement = app.repository.get(second)
    day_a = LearnerDay.open(actor=LEARNER, learner_id=LEARNER.id, day=DAY)
    day_b = LearnerDay.open(actor=LEARNER, learner_id=LEARNER.id, day=DAY)
    e1 = p1.log_hours(actor=LEARNER, work_date=DAY, minutes=800, today=TODAY, learner_born_on=None)
    day_a.claim(actor=LEARNER, placement_id=str(first), entry_id=e1, minutes=800)
    e2 = p2.log_hours(actor=LEARNER, work_date=DAY, minutes=800, today=TODAY, learner_born_on=None)
    day_b.claim(actor=LEARNER, placement_id=str(second), entry_id=e2, minutes=800)
    app._save_all(p1, day_a)
    with pytest.raises(ConcurrentChange):
        app._save_all(p2, day_b)
    assert app.learner_minutes_on(LEARNER.id, DAY) == 800


def test_correcting_one_entry_twice_concurrently(app: Ledger) -> None:
    placement_id = _started(app)
    entry = app.log_hours(LEARNER, placement_id, work_date=DAY, minutes=120).created_id
    assert entry
    copy_a: Placement = app.repository.get(placement_id)
    copy_b: Placement = app.repository.get(placement_id)
    copy_a.correct_hours(actor=COORDINATOR, entry_id=entry, reason="a", work_date=DAY,
                         minutes=100, today=TODAY, learner_born_on=None)
    copy_b.correct_hours(actor=LEARNER, entry_id=entry, reason="b", work_date=DAY,
                         minutes=90, today=TODAY, learner_born_on=None)
    app._save_all(copy_a)
    with pytest.raises(ConcurrentChange):
        app._save_all(copy_b)
    with pytest.raises(WrongState) as info:  # and sequentially, the entry is already replaced
        app.correct_hours(LEARNER, placement_id, entry_id=entry, reason="b", work_date=DAY,
                          minutes=90)
    assert info.value.code == "entry-superseded"
    placement = app.get_placement(placement_id)
    assert [e.minutes for e in placement.entries.values() if e.active] == [100]


def test_child_labour_policy_is_per_organisation(app: Ledger) -> None:
    opportunity_id = _opportunity(app)
    placement_id = app.match_learner(COORDINATOR, opportunity_id, learner_id=LEARNER.id,
                                     supervisor_id=SUPERVISOR.id,
                                     learner_born_on=date(2009, 3, 1)).aggregate_id
    for actor, party in [(LEARNER, "learner"), (Actor("g", Role.GUARDIAN), "guardian"),
                         (EMPLOYER, "employer"), (COORDINATOR, "coordinator")]:
        app.sign_agreement(actor, placement_id, party=party)
    app.start_placement(COORDINATOR, placement_id, started_on=date(2024, 1, 8))
    with pytest.raises(RuleViolated) as info:
        app.log_hours(LEARNER, placement_id, work_date=DAY, minutes=240)
    assert info.value.code == "minor-school-day-limit"  # no calendar: read as a school day
    app.set_child_labour_policy(COORDINATOR, ORG, policy="flag", reason="WECEP")
    result = app.log_hours(LEARNER, placement_id, work_date=DAY, minutes=240)
    assert result.created_id
    entry = app.get_placement(placement_id).entries[result.created_id]
    assert entry.child_labour_flags == ("minor-school-day-limit", "calendar-missing")
    app.set_child_labour_policy(COORDINATOR, ORG, policy="refuse", reason="WECEP ended")
    assert app.child_labour_policy(ORG).value == "refuse"


def test_a_stored_version_1_hours_logged_event_is_upcast_on_read(app: Ledger) -> None:
    placement_id = _started(app)
    placement = app.get_placement(placement_id)
    v1_state = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2024-01-09T17:00:00+00:00"},
        "actor_id": LEARNER.id, "actor_role": "learner",
        "business_date": {"_type_": "date_iso", "_data_": "2024-01-09"},
        "entry_id": "legacy-1", "minutes": 180, "kind": "on_the_job", "start_time": None,
        "end_time": None, "allocations": {}, "school_day": False, "school_week": False,
    }
    app.recorder.insert_events([StoredEvent(
        originator_id=placement_id,
        originator_version=placement.version + 1,
        topic="domain.placement:Placement.HoursLogged",
        state=json.dumps(v1_state).encode(),
    )])
    reread = app.get_placement(placement_id)
    assert reread.entries["legacy-1"].minutes == 180
    assert reread.entries["legacy-1"].child_labour_flags == ()
    notification = app.recorder.select_notifications(start=_stored_count(app), limit=1)[0]
    upcast = app.mapper.to_domain_event(notification)
    assert upcast.child_labour_flags == []  # type: ignore[attr-defined]
    # and a version-2 event written now says it is version 2
    app.log_hours(LEARNER, placement_id, work_date=date(2024, 1, 10), minutes=60)
    latest = app.recorder.select_events(placement_id, desc=True, limit=1)[0]
    assert latest.topic == "domain.placement:Placement.HoursLogged"
    assert app.mapper.transcoder.decode(latest.state)["class_version"] == 2


def test_stored_version_1_corrections_keep_their_meaning(app: Ledger) -> None:
    """A version-1 HoursCorrected replaced an approved entry at once; read back, it still
    does (upcast: nothing stood pending), and HoursApproved v1 replaced nothing."""
    placement_id = _started(app)
    logged = app.log_hours(LEARNER, placement_id, work_date=DAY, minutes=240)
    app.approve_hours(SUPERVISOR, placement_id, entry_id=str(logged.created_id))
    placement = app.get_placement(placement_id)
    v1_state = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2024-01-10T17:00:00+00:00"},
        "actor_id": LEARNER.id, "actor_role": "learner",
        "business_date": {"_type_": "date_iso", "_data_": DAY.isoformat()},
        "entry_id": "legacy-fix", "supersedes": str(logged.created_id), "reason": "typo",
        "minutes": 180, "kind": "on_the_job", "start_time": None, "end_time": None,
        "allocations": {}, "school_day": False, "school_week": False,
        "child_labour_flags": [],
    }
    app.recorder.insert_events([StoredEvent(
        originator_id=placement_id, originator_version=placement.version + 1,
        topic="domain.placement:Placement.HoursCorrected",
        state=json.dumps(v1_state).encode())])
    reread = app.get_placement(placement_id)
    assert reread.entries[str(logged.created_id)].status.value == "superseded"
    assert reread.entries["legacy-fix"].pending_over is None
    assert reread.approved_minutes() == 0


def test_a_stored_version_1_match_is_read_without_the_birthdays(app: Ledger) -> None:
    """Placements matched before version 2 held a minor's 16th and 18th birthdays: read
    back, published or replayed, those dates appear nowhere (decision 038)."""
    from domain.contract.cloudevents import to_record

    opportunity_id = _opportunity(app)
    placement_id = UUID("00000000-0000-4000-8000-000000000011")
    v1_state = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2024-01-03T17:00:00+00:00"},
        "originator_topic": "domain.placement:Placement",
        "actor_id": COORDINATOR.id, "actor_role": "coordinator",
        "business_date": {"_type_": "date_iso", "_data_": "2024-01-03"},
        "organisation_id": ORG, "opportunity_id": str(opportunity_id),
        "learner_id": LEARNER.id, "supervisor_id": SUPERVISOR.id,
        "wbl_type": "PaidInternship", "pre_apprenticeship": False,
        "starts_on": {"_type_": "date_iso", "_data_": "2024-01-08"},
        "ends_on": {"_type_": "date_iso", "_data_": "2025-12-31"},
        "turns_16_on": {"_type_": "date_iso", "_data_": "2024-09-30"},
        "turns_18_on": {"_type_": "date_iso", "_data_": "2026-09-30"},
        "program_id": None, "approach": None, "ojl_minutes_required": 0,
        "work_processes": [], "competencies": [], "pre_apprenticeship_hours_count": False,
    }
    app.recorder.insert_events([StoredEvent(
        originator_id=placement_id, originator_version=1,
        topic="domain.placement:Placement.LearnerMatched",
        state=json.dumps(v1_state).encode(),
    )])
    placement = app.get_placement(placement_id)
    assert placement.minor is True
    assert "guardian" in placement.required_parties
    assert not hasattr(placement, "turns_16_on") and not hasattr(placement, "turns_18_on")

    notification = app.recorder.select_notifications(start=_stored_count(app), limit=1)[0]
    event = app.mapper.to_domain_event(notification)
    record = to_record(event, notification.topic, notification.id, "/wbl-ledger")
    for text in (json.dumps(vars(event), default=str), record.value.decode()):
        assert "2024-09-30" not in text and "2026-09-30" not in text and "turns_" not in text
    assert json.loads(record.value)["minor_during_placement"] is True


def test_a_minors_birth_date_is_kept_outside_the_events(app: Ledger) -> None:
    """The match keeps a minor's birth date in the ledger's birth-date store (the vault in
    the service) and the child-labour rules read it from there; no event holds it."""
    opportunity_id = _opportunity(app)
    placement_id = app.match_learner(
        COORDINATOR, opportunity_id, learner_id="minor-1", supervisor_id=SUPERVISOR.id,
        learner_born_on=date(2009, 3, 1)).aggregate_id
    assert app.birth_dates.birth_date("minor-1") == date(2009, 3, 1)
    stored = app.recorder.select_events(placement_id)
    assert all(b"2009-03-01" not in s.state and b"2025-03-01" not in s.state
               and b"2027-03-01" not in s.state for s in stored)
    adult = app.match_learner(
        COORDINATOR, _opportunity(app), learner_id="adult-1", supervisor_id=SUPERVISOR.id,
        learner_born_on=date(2000, 1, 1))
    assert adult.version == 1 and app.birth_dates.birth_date("adult-1") is None
