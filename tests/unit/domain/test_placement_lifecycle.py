"""The placement lifecycle: match, agreement, start, evaluation, credential, status changes,
completion and prior-learning credit; one test per rule."""

from __future__ import annotations

from datetime import date

import pytest

from domain.actor import Actor, Role
from domain.errors import NotPermitted, RuleViolated, WrongState
from domain.placement import Placement, PlacementStatus, age_on, birthday
from tests.unit.domain.factories import (
    ADULT_BORN,
    COMPETENCIES,
    COORDINATOR,
    EMPLOYER,
    GUARDIAN,
    LEARNER,
    MINOR_BORN,
    OTHER_COORDINATOR,
    SPONSOR,
    STARTS,
    SUPERVISOR,
    TODAY,
    active,
    approve,
    born_of,
    log,
    matched,
    opportunity,
    program,
    refused,
    replayed,
    sign_all,
    state,
)

# -- match ----------------------------------------------------------------------------


def _match(**kwargs: object) -> Placement:
    details: dict[str, object] = dict(
        actor=COORDINATOR, opportunity=opportunity(), program=None, learner_id=LEARNER.id,
        supervisor_id=SUPERVISOR.id, learner_born_on=ADULT_BORN, matched_on=date(2024, 1, 3),
    )
    details.update(kwargs)
    return Placement.match(**details)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "error", "code"),
    [
        ({"actor": EMPLOYER}, NotPermitted, "coordinator-required"),
        ({"actor": OTHER_COORDINATOR}, NotPermitted, "other-organisation"),
        ({"supervisor_id": LEARNER.id}, RuleViolated, "supervisor-is-learner"),
        ({"supervisor_id": " "}, RuleViolated, "supervisor-required"),
        ({"learner_id": ""}, RuleViolated, "learner-required"),
        ({"opportunity": opportunity(minimum_age=18), "learner_born_on": MINOR_BORN},
         RuleViolated, "learner-under-minimum-age"),
        ({"opportunity": opportunity(wbl_type="Apprenticeship")}, RuleViolated,
         "program-required"),
        ({"program": program()}, RuleViolated, "program-not-allowed"),
    ],
)
def test_match_rules(kwargs: dict[str, object], error: type[Exception], code: str) -> None:
    with pytest.raises(error) as info:
        _match(**kwargs)
    assert info.value.code == code  # type: ignore[attr-defined]


def test_a_closed_opportunity_takes_no_match() -> None:
    closed = opportunity()
    closed.close(actor=COORDINATOR, reason="filled", closed_on=TODAY)
    with pytest.raises(WrongState) as info:
        _match(opportunity=closed)
    assert info.value.code == "opportunity-closed"


def test_match_records_no_date_derived_from_the_birth_date() -> None:
    """Only "a minor during the placement" is recorded (decision 038): no birth date, and
    none of the birthdays that would give it away."""
    adult = _match()
    assert adult.minor is False
    minor = _match(learner_born_on=MINOR_BORN)
    assert minor.minor is True
    recorded = vars(minor.collect_events()[0])
    assert recorded["minor_during_placement"] is True
    assert not [name for name, value in recorded.items()
                if "born" in name or "turns_" in name or value in (
                    MINOR_BORN, date(2025, 1, 1), date(2027, 1, 1))]


def test_a_version_1_match_is_read_without_its_birthdays() -> None:
    state = {"turns_16_on": date(2025, 1, 1), "turns_18_on": date(2027, 1, 1), "x": 1}
    Placement.LearnerMatched.upcast_v1_v2(state)
    assert state == {"minor_during_placement": True, "x": 1}
    adult = {"turns_16_on": None, "turns_18_on": None}
    Placement.LearnerMatched.upcast_v1_v2(adult)
    assert adult == {"minor_during_placement": False}


def test_a_minors_hours_need_the_birth_date_from_the_vault() -> None:
    placement = active(born=MINOR_BORN)
    with refused(placement, RuleViolated, "birth-date-unknown"):
        log(placement, learner_born_on=None)
    log(placement)  # with it: checked, and within the limits


def test_apprenticeship_match_copies_the_program_requirements() -> None:
    placement = matched(apprenticeship=program())
    assert placement.ojl_minutes_required == 2000 * 60
    assert placement.competencies == COMPETENCIES
    assert placement.approach is not None and placement.approach.value == "time_based"


def test_birthdays_and_ages() -> None:
    assert birthday(date(2008, 2, 29), 16) == date(2024, 2, 29)
    assert birthday(date(2008, 2, 29), 17) == date(2025, 3, 1)
    assert age_on(date(2008, 5, 1), date(2024, 4, 30)) == 15
    assert age_on(date(2008, 5, 1), date(2024, 5, 1)) == 16


# -- agreement and start ------------------------------------------------------------


def test_an_adult_learners_agreement_needs_no_guardian() -> None:
    placement = matched()
    assert placement.required_parties == ["learner", "employer", "coordinator"]
    with refused(placement, RuleViolated, "guardian-not-required"):
        placement.sign_agreement(actor=GUARDIAN, party="guardian", signed_on=TODAY, today=TODAY)


def test_a_minors_agreement_needs_the_guardian_before_the_start() -> None:
    placement = matched(born=MINOR_BORN)
    for actor, party in [(LEARNER, "learner"), (EMPLOYER, "employer"),
                         (COORDINATOR, "coordinator")]:
        placement.sign_agreement(actor=actor, party=party, signed_on=TODAY, today=TODAY)
    with refused(placement, WrongState, "agreement-incomplete"):
        placement.start(actor=COORDINATOR, started_on=STARTS, today=TODAY)
    placement.sign_agreement(actor=GUARDIAN, party="guardian", signed_on=TODAY, today=TODAY)
    placement.start(actor=COORDINATOR, started_on=STARTS, today=TODAY)
    assert placement.status is PlacementStatus.ACTIVE


@pytest.mark.parametrize(
    ("actor", "party", "error", "code"),
    [
        (SUPERVISOR, "learner", NotPermitted, "not-signing-party"),
        (LEARNER, "coordinator", NotPermitted, "not-signing-party"),
        (LEARNER, "employer", NotPermitted, "not-signing-party"),
        (LEARNER, "witness", RuleViolated, "unknown-party"),
    ],
)
def test_each_party_signs_in_their_own_name(actor: Actor, party: str, error: type[Exception],
                                            code: str) -> None:
    placement = matched()
    with refused(placement, error, code):  # type: ignore[arg-type]
        placement.sign_agreement(actor=actor, party=party, signed_on=TODAY, today=TODAY)


def test_a_party_signs_once_and_not_after_the_start() -> None:
    placement = matched()
    placement.sign_agreement(actor=LEARNER, party="learner", signed_on=TODAY, today=TODAY)
    with refused(placement, WrongState, "already-signed"):
        placement.sign_agreement(actor=LEARNER, party="learner", signed_on=TODAY, today=TODAY)
    started = active()
    with refused(started, WrongState, "placement-active"):
        started.sign_agreement(actor=LEARNER, party="learner", signed_on=TODAY, today=TODAY)


def test_start_rules() -> None:
    placement = matched()
    sign_all(placement)
    with refused(placement, NotPermitted, "coordinator-required"):
        placement.start(actor=LEARNER, started_on=STARTS, today=TODAY)
    with refused(placement, RuleViolated, "start-outside-opportunity"):
        placement.start(actor=COORDINATOR, started_on=date(2024, 1, 1), today=TODAY)
    with refused(placement, RuleViolated, "in-future"):
        placement.start(actor=SUPERVISOR, started_on=date(2024, 7, 1), today=TODAY)
    placement.start(actor=SUPERVISOR, started_on=STARTS, today=TODAY)
    with refused(placement, WrongState, "placement-active"):
        placement.start(actor=COORDINATOR, started_on=STARTS, today=TODAY)


# -- evaluation, sign-off and credentials ----------------------------------------------


def _evaluate(placement: Placement, actor: Actor = SUPERVISOR, **kwargs: object) -> str:
    details: dict[str, object] = dict(scores={"Reads blueprints": 3},
                                      evaluator_role="supervisor", evaluated_on=TODAY,
                                      today=TODAY)
    details.update(kwargs)
    return placement.evaluate(actor=actor, **details)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"scores": {}}, "scores-required"),
        ({"scores": {"Reads blueprints": 5}}, "score-out-of-range"),
        ({"scores": {"Reads blueprints": 0}}, "score-out-of-range"),
        ({"scores": {"Juggling": 3}}, "unknown-competency"),
        ({"evaluator_role": "friend"}, "unknown-evaluator-role"),
        ({"stage": "midway"}, "unknown-evaluation-stage"),
    ],
)
def test_evaluation_rules(kwargs: dict[str, object], code: str) -> None:
    placement = active(apprenticeship=program())
    with refused(placement, RuleViolated, code):
        _evaluate(placement, **kwargs)


def test_an_evaluation_records_rubric_scores_comments_and_role() -> None:
    placement = active(apprenticeship=program())
    _evaluate(placement, comments="Careful worker", stage="interim")
    evaluation = placement.evaluations[0]
    assert evaluation.scores == {"Reads blueprints": 3}
    assert evaluation.evaluator_role.value == "supervisor"
    assert evaluation.comments == "Careful worker"
    assert not placement.evaluation_completed


def test_a_credential_needs_a_completed_evaluation() -> None:
    placement = active()
    _evaluate(placement, stage="interim", scores={"Teamwork": 4})
    with refused(placement, RuleViolated, "evaluation-required"):
        placement.issue_credential(actor=COORDINATOR, kind="Fieldwork", issuer="District 9",
                                   issued_on=TODAY, today=TODAY)
    _evaluate(placement, stage="final", scores={"Teamwork": 4})
    placement.issue_credential(actor=COORDINATOR, kind="Fieldwork", issuer="District 9",
                               issued_on=TODAY, expires_on=date(2027, 1, 1), today=TODAY)
    assert placement.credentials[0].kind.value == "Fieldwork"


def test_the_sponsor_of_an_apprenticeship_issues_its_certificate() -> None:
    """A sponsor's token carries the sponsor's own organisation, never the school's."""
    sponsor = Actor("sponsor-1", Role.SPONSOR, "jatc-local-26")
    placement = active(apprenticeship=program())
    _evaluate(placement, stage="final")
    placement.issue_credential(actor=sponsor, kind="ApprenticeshipCertificate",
                               issuer="Local 26 JATC", issued_on=TODAY, today=TODAY)
    assert placement.credentials[0].issuer == "Local 26 JATC"

    internship = active()
    _evaluate(internship, stage="final", scores={"Teamwork": 4})
    with refused(internship, NotPermitted, "not-the-sponsor"):
        internship.issue_credential(actor=sponsor, kind="Fieldwork", issuer="Local 26",
                                    issued_on=TODAY, today=TODAY)


@pytest.mark.parametrize(
    ("actor", "kwargs", "error", "code"),
    [
        (LEARNER, {}, NotPermitted, "coordinator-required"),
        (COORDINATOR, {"kind": "Trophy"}, RuleViolated, "unknown-credential-kind"),
        (COORDINATOR, {"issuer": " "}, RuleViolated, "issuer-required"),
        (COORDINATOR, {"expires_on": date(2024, 1, 1)}, RuleViolated, "dates-reversed"),
    ],
)
def test_credential_rules(actor: Actor, kwargs: dict[str, object], error: type[Exception],
                          code: str) -> None:
    placement = active()
    _evaluate(placement, scores={"Teamwork": 4})
    details: dict[str, object] = dict(kind="Fieldwork", issuer="District 9", issued_on=TODAY,
                                      today=TODAY)
    details.update(kwargs)
    with refused(placement, error, code):  # type: ignore[arg-type]
        placement.issue_credential(actor=actor, **details)  # type: ignore[arg-type]


def test_competency_sign_off_rules() -> None:
    placement = active(apprenticeship=program())
    with refused(placement, NotPermitted, "not-supervisor"):
        placement.sign_off_competency(actor=LEARNER, competency="Reads blueprints",
                                      signed_off_on=TODAY, today=TODAY)
    with refused(placement, RuleViolated, "unknown-competency"):
        placement.sign_off_competency(actor=SUPERVISOR, competency="Juggling",
                                      signed_off_on=TODAY, today=TODAY)
    placement.sign_off_competency(actor=SUPERVISOR, competency="Reads blueprints",
                                  signed_off_on=TODAY, today=TODAY)
    with refused(placement, WrongState, "competency-already-signed-off"):
        placement.sign_off_competency(actor=SPONSOR, competency="Reads blueprints",
                                      signed_off_on=TODAY, today=TODAY)


# -- status changes ----------------------------------------------------------------------


def test_suspend_and_reinstate_need_reasons_and_the_right_state() -> None:
    placement = active()
    with refused(placement, RuleViolated, "reason-required"):
        placement.suspend(actor=COORDINATOR, reason="", suspended_on=TODAY, today=TODAY)
    with refused(placement, NotPermitted, "coordinator-required"):
        placement.suspend(actor=SUPERVISOR, reason="x", suspended_on=TODAY, today=TODAY)
    with refused(placement, WrongState, "placement-active"):
        placement.reinstate(actor=COORDINATOR, reason="x", reinstated_on=TODAY, today=TODAY)
    placement.suspend(actor=COORDINATOR, reason="injury", suspended_on=TODAY, today=TODAY)
    assert placement.status is PlacementStatus.SUSPENDED
    with refused(placement, WrongState, "placement-suspended"):
        placement.suspend(actor=COORDINATOR, reason="x", suspended_on=TODAY, today=TODAY)
    with refused(placement, WrongState, "placement-suspended"):
        placement.complete(actor=COORDINATOR, completed_on=TODAY, today=TODAY)
    placement.reinstate(actor=COORDINATOR, reason="recovered", reinstated_on=TODAY, today=TODAY)
    assert placement.status is PlacementStatus.ACTIVE


def test_withdrawal_records_the_reason_and_probation_and_closes_the_placement() -> None:
    placement = active()
    with refused(placement, RuleViolated, "reason-required"):
        placement.withdraw(actor=LEARNER, reason=" ", during_probation=True,
                           withdrawn_on=TODAY, today=TODAY)
    with refused(placement, NotPermitted, "coordinator-required"):
        placement.withdraw(actor=SUPERVISOR, reason="x", during_probation=True,
                           withdrawn_on=TODAY, today=TODAY)
    placement.withdraw(actor=LEARNER, reason="moved away", during_probation=True,
                       withdrawn_on=TODAY, today=TODAY)
    assert placement.status is PlacementStatus.WITHDRAWN
    assert placement.withdrawn_during_probation is True
    with refused(placement, WrongState, "placement-withdrawn"):
        log(placement)
    with refused(placement, WrongState, "placement-withdrawn"):
        placement.withdraw(actor=COORDINATOR, reason="x", during_probation=False,
                           withdrawn_on=TODAY, today=TODAY)


def test_a_non_apprenticeship_completes_without_an_hours_requirement() -> None:
    placement = active()
    placement.complete(actor=COORDINATOR, completed_on=TODAY, today=TODAY)
    assert placement.status is PlacementStatus.COMPLETED
    with refused(placement, WrongState, "placement-completed"):
        placement.complete(actor=COORDINATOR, completed_on=TODAY, today=TODAY)


def _with_approved_minutes(placement: Placement, minutes: int) -> None:
    day = date(2024, 1, 9)
    while minutes > 0:
        chunk = min(minutes, 600)
        approve(placement, log(placement, work_date=day, minutes=chunk))
        minutes -= chunk
        day = date.fromordinal(day.toordinal() + 1)


def test_a_time_based_apprenticeship_completes_only_with_the_required_hours() -> None:
    placement = active(apprenticeship=program(ojl_hours=2000))
    placement.ojl_minutes_required = 600 * 3  # keep the test short: 30 hours required
    _with_approved_minutes(placement, 600 * 3 - 60)
    with refused(placement, RuleViolated, "approved-hours-short"):
        placement.complete(actor=COORDINATOR, completed_on=TODAY, today=TODAY)
    placement.grant_prior_learning_credit(actor=SPONSOR, minutes=60, basis="prior_experience",
                                          granted_on=TODAY, today=TODAY)
    placement.complete(actor=SPONSOR, completed_on=TODAY, today=TODAY)


def test_pending_and_superseded_hours_do_not_count_toward_completion() -> None:
    placement = active(apprenticeship=program())
    placement.ojl_minutes_required = 600
    entry = log(placement, minutes=600)
    with refused(placement, RuleViolated, "approved-hours-short"):
        placement.complete(actor=COORDINATOR, completed_on=TODAY, today=TODAY)
    approve(placement, entry)
    fixed = placement.correct_hours(actor=COORDINATOR, entry_id=entry, reason="typo",
                                    learner_born_on=born_of(placement),
                                    work_date=date(2024, 1, 9), minutes=540, today=TODAY)
    # The approved 600 still count, but the total is not final while the correction waits.
    with refused(placement, WrongState, "correction-pending"):
        placement.complete(actor=COORDINATOR, completed_on=TODAY, today=TODAY)
    approve(placement, fixed)
    with refused(placement, RuleViolated, "approved-hours-short"):
        placement.complete(actor=COORDINATOR, completed_on=TODAY, today=TODAY)


def test_a_competency_based_apprenticeship_completes_on_competencies_not_hours() -> None:
    placement = active(apprenticeship=program(approach="competency_based"))
    for competency in COMPETENCIES[:-1]:
        placement.sign_off_competency(actor=SUPERVISOR, competency=competency,
                                      signed_off_on=TODAY, today=TODAY)
    with refused(placement, RuleViolated, "competencies-incomplete"):
        placement.complete(actor=COORDINATOR, completed_on=TODAY, today=TODAY)
    placement.sign_off_competency(actor=SUPERVISOR, competency=COMPETENCIES[-1],
                                  signed_off_on=TODAY, today=TODAY)
    placement.complete(actor=COORDINATOR, completed_on=TODAY, today=TODAY)
    assert placement.approved_minutes() == 0


def test_a_hybrid_apprenticeship_needs_hours_and_competencies() -> None:
    placement = active(apprenticeship=program(approach="hybrid"))
    for competency in COMPETENCIES:
        placement.sign_off_competency(actor=SUPERVISOR, competency=competency,
                                      signed_off_on=TODAY, today=TODAY)
    with refused(placement, RuleViolated, "approved-hours-short"):
        placement.complete(actor=COORDINATOR, completed_on=TODAY, today=TODAY)


# -- prior learning ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "kwargs", "error", "code"),
    [
        (LEARNER, {}, NotPermitted, "sponsor-required"),
        (SPONSOR, {"minutes": 0}, RuleViolated, "credit-not-positive"),
        (SPONSOR, {"minutes": 2001 * 60}, RuleViolated, "credit-exceeds-requirement"),
        (SPONSOR, {"basis": "vibes"}, RuleViolated, "unknown-credit-basis"),
        (SPONSOR, {"work_process": "Juggling"}, RuleViolated, "unknown-work-process"),
        (SPONSOR, {"basis": "pre_apprenticeship", "source_placement_id": "p"}, RuleViolated,
         "pre-apprenticeship-credit-not-allowed"),
    ],
)
def test_prior_learning_credit_rules(actor: Actor, kwargs: dict[str, object],
                                     error: type[Exception], code: str) -> None:
    placement = active(apprenticeship=program())
    details: dict[str, object] = dict(minutes=600, basis="prior_training", granted_on=TODAY,
                                      today=TODAY)
    details.update(kwargs)
    with refused(placement, error, code):  # type: ignore[arg-type]
        placement.grant_prior_learning_credit(actor=actor, **details)  # type: ignore[arg-type]


def test_prior_learning_credit_is_for_apprenticeships() -> None:
    placement = active()
    with refused(placement, RuleViolated, "not-an-apprenticeship"):
        placement.grant_prior_learning_credit(actor=SPONSOR, minutes=60, basis="prior_training",
                                              granted_on=TODAY, today=TODAY)


def test_pre_apprenticeship_hours_count_when_the_program_says_so() -> None:
    pre = active(pre_apprenticeship=True)
    approve(pre, log(pre, minutes=300))
    apprenticeship = active(apprenticeship=program(pre_apprenticeship_hours_count=True))
    with refused(apprenticeship, RuleViolated, "source-not-completed"):
        apprenticeship.credit_pre_apprenticeship(actor=SPONSOR, source=pre, granted_on=TODAY,
                                                 today=TODAY)
    pre.complete(actor=COORDINATOR, completed_on=TODAY, today=TODAY)
    assert apprenticeship.credit_pre_apprenticeship(
        actor=SPONSOR, source=pre, granted_on=TODAY, today=TODAY) == 300
    assert apprenticeship.credited_minutes == 300
    with refused(apprenticeship, WrongState, "already-credited"):
        apprenticeship.credit_pre_apprenticeship(actor=SPONSOR, source=pre, granted_on=TODAY,
                                                 today=TODAY)
    not_pre = active()
    not_pre.complete(actor=COORDINATOR, completed_on=TODAY, today=TODAY)
    with refused(apprenticeship, RuleViolated, "not-a-pre-apprenticeship"):
        apprenticeship.credit_pre_apprenticeship(actor=SPONSOR, source=not_pre,
                                                 granted_on=TODAY, today=TODAY)


def test_pre_apprenticeship_of_another_learner_is_not_credited() -> None:
    pre = Placement.match(actor=COORDINATOR, opportunity=opportunity(pre_apprenticeship=True),
                          program=None, learner_id="someone-else", supervisor_id=SUPERVISOR.id,
                          learner_born_on=ADULT_BORN, matched_on=TODAY)
    apprenticeship = active(apprenticeship=program(pre_apprenticeship_hours_count=True))
    with refused(apprenticeship, RuleViolated, "different-learner"):
        apprenticeship.credit_pre_apprenticeship(actor=SPONSOR, source=pre, granted_on=TODAY,
                                                 today=TODAY)


def test_the_whole_lifecycle_replays_to_the_same_state() -> None:
    placement = active(born=MINOR_BORN, apprenticeship=program())
    approve(placement, log(placement, minutes=120, allocations={"Safety": 60}, school_day=True))
    _evaluate(placement)
    placement.sign_off_competency(actor=SUPERVISOR, competency="Reads blueprints",
                                  signed_off_on=TODAY, today=TODAY)
    placement.issue_credential(actor=SPONSOR, kind="Badge", issuer="JATC", issued_on=TODAY,
                               today=TODAY)
    placement.suspend(actor=COORDINATOR, reason="x", suspended_on=TODAY, today=TODAY)
    placement.reinstate(actor=COORDINATOR, reason="y", reinstated_on=TODAY, today=TODAY)
    placement.withdraw(actor=COORDINATOR, reason="z", during_probation=False,
                       withdrawn_on=TODAY, today=TODAY)
    rebuilt = replayed(placement)
    assert state(rebuilt) == state(placement)
    assert all(hasattr(e, "actor_id") and hasattr(e, "actor_role")
               and hasattr(e, "business_date") for e in placement.collect_events())


def test_role_enum_has_guardian() -> None:
    assert Role("guardian") is Role.GUARDIAN
