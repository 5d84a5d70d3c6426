"""Property tests: random sequences of valid and invalid commands never break an invariant,
a refused command changes nothing, and replaying the events rebuilds the same state."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.actor import Actor
from domain.errors import DomainError
from domain.learner_day import LearnerDay
from domain.placement import Placement, PlacementStatus
from domain.placement.hours import MINUTES_PER_DAY, EntryStatus, overlaps
from domain.placement.minors import ChildLabourPolicy
from tests.unit.domain.factories import (
    ADULT_BORN,
    COMPETENCIES,
    COORDINATOR,
    LEARNER,
    MINOR_BORN,
    OTHER_SUPERVISOR,
    SPONSOR,
    STARTS,
    SUPERVISOR,
    TODAY,
    WORK_PROCESSES,
    active,
    born_of,
    program,
    replayed,
    state,
)

ACTORS = [LEARNER, SUPERVISOR, COORDINATOR, OTHER_SUPERVISOR, SPONSOR]
actors = st.sampled_from(ACTORS)
reviewers = st.sampled_from([SUPERVISOR, SUPERVISOR, SUPERVISOR, LEARNER, COORDINATOR])
# a small window so entries collide often; some dates fall outside the placement
work_dates = st.integers(-2, 12).map(lambda n: STARTS + timedelta(days=n))
days = st.integers(-3, 1).map(lambda n: TODAY + timedelta(days=n))
reasons = st.sampled_from(["", "typo", "wrong day", "late start"])


def _entry_id(data: st.DataObject, placement: Placement) -> str:
    ids = [*sorted(placement.entries), "no-such-entry"] if data.draw(st.integers(0, 9)) == 0 \
        else sorted(placement.entries) or ["no-such-entry"]
    return data.draw(st.sampled_from(ids))


def _hours(data: st.DataObject) -> dict[str, Any]:
    minutes = data.draw(st.sampled_from([0, 15, 60, 180, 181, 240, 480, 600, 1440, 1441]))
    details: dict[str, Any] = {"work_date": data.draw(work_dates), "minutes": minutes,
                               "kind": data.draw(st.sampled_from(["on_the_job",
                                                                  "related_instruction"])),
                               "school_day": data.draw(st.booleans())}
    if data.draw(st.booleans()):
        start = data.draw(st.integers(5 * 4, 20 * 4)) * 15
        span = data.draw(st.integers(1, 16)) * 15
        end = min(start + span, MINUTES_PER_DAY - 1)
        details["start_time"] = f"{start // 60:02d}:{start % 60:02d}"
        details["end_time"] = f"{end // 60:02d}:{end % 60:02d}"
    if data.draw(st.booleans()):
        names = data.draw(st.lists(st.sampled_from([*WORK_PROCESSES, "Nope"]), max_size=2,
                                   unique=True))
        details["allocations"] = {n: data.draw(st.sampled_from([0, 30, 120, 700])) for n in names}
    details["policy"] = data.draw(st.sampled_from(list(ChildLabourPolicy)))
    return details


def c_log(p: Placement, data: st.DataObject) -> None:
    # deterministic ids keep hypothesis's draws reproducible
    p.log_hours(actor=data.draw(actors), today=TODAY, entry_id=f"e{len(p.entries):03d}",
                learner_born_on=born_of(p),
                **_hours(data))


def c_approve(p: Placement, data: st.DataObject) -> None:
    p.approve_hours(actor=data.draw(reviewers), entry_id=_entry_id(data, p),
                    approved_on=data.draw(days), today=TODAY)


def c_reject(p: Placement, data: st.DataObject) -> None:
    p.reject_hours(actor=data.draw(reviewers), entry_id=_entry_id(data, p),
                   reason=data.draw(reasons), rejected_on=data.draw(days), today=TODAY)


def c_correct(p: Placement, data: st.DataObject) -> None:
    p.correct_hours(actor=data.draw(actors), entry_id=_entry_id(data, p),
                    learner_born_on=born_of(p),
                    reason=data.draw(reasons), today=TODAY,
                    new_entry_id=f"e{len(p.entries):03d}", **_hours(data))


def c_suspend(p: Placement, data: st.DataObject) -> None:
    p.suspend(actor=data.draw(actors), reason=data.draw(reasons), suspended_on=TODAY,
              today=TODAY)


def c_reinstate(p: Placement, data: st.DataObject) -> None:
    p.reinstate(actor=data.draw(actors), reason=data.draw(reasons), reinstated_on=TODAY,
                today=TODAY)


def c_withdraw(p: Placement, data: st.DataObject) -> None:
    if data.draw(st.integers(0, 3)):  # rarely: it ends the placement
        raise _Skipped
    p.withdraw(actor=data.draw(actors), reason=data.draw(reasons),
               during_probation=data.draw(st.booleans()), withdrawn_on=TODAY, today=TODAY)


def c_complete(p: Placement, data: st.DataObject) -> None:
    p.complete(actor=data.draw(actors), completed_on=data.draw(days), today=TODAY)


def c_evaluate(p: Placement, data: st.DataObject) -> None:
    p.evaluate(actor=data.draw(actors),
               scores={data.draw(st.sampled_from([*COMPETENCIES, "x"])):
                       data.draw(st.integers(0, 5))},
               evaluator_role=data.draw(st.sampled_from(["supervisor", "self", "nobody"])),
               stage=data.draw(st.sampled_from(["interim", "final"])), evaluated_on=TODAY,
               today=TODAY)


def c_sign_off(p: Placement, data: st.DataObject) -> None:
    p.sign_off_competency(actor=data.draw(actors),
                          competency=data.draw(st.sampled_from([*COMPETENCIES, "x"])),
                          signed_off_on=TODAY, today=TODAY)


def c_credential(p: Placement, data: st.DataObject) -> None:
    p.issue_credential(actor=data.draw(actors), kind="Badge", issuer="JATC", issued_on=TODAY,
                       today=TODAY)


def c_credit(p: Placement, data: st.DataObject) -> None:
    p.grant_prior_learning_credit(actor=data.draw(actors),
                                  minutes=data.draw(st.sampled_from([0, 60, 200_000])),
                                  basis="prior_training", granted_on=TODAY, today=TODAY)


COMMANDS: list[Callable[[Placement, st.DataObject], None]] = [
    c_log, c_log, c_log, c_approve, c_approve, c_approve, c_reject, c_correct, c_correct,
    c_suspend,
    c_reinstate, c_reinstate, c_withdraw, c_complete, c_evaluate, c_sign_off, c_credential,
    c_credit,
]


SUCCEEDED: dict[str, int] = {}


class _Skipped(Exception):
    """The command chose not to run this time."""


def check_invariants(p: Placement) -> None:
    entries = list(p.entries.values())
    # approved minutes are exactly the approved entries (one with a correction pending over
    # it still counts until the correction is approved)
    assert p.approved_minutes() == sum(
        e.minutes for e in entries if e.status is EntryStatus.APPROVED)
    assert all(isinstance(e.minutes, int) for e in entries)
    live = [e for e in entries if e.active]
    for i, a in enumerate(live):
        assert 0 < a.minutes <= MINUTES_PER_DAY
        assert sum(a.allocations.values()) <= a.minutes
        assert p.started_on is not None and p.started_on <= a.work_date <= min(p.ends_on, TODAY)
        for b in live[i + 1:]:
            # a pending correction may overlap the approved entry it waits over
            if b.pending_over == a.entry_id or a.pending_over == b.entry_id:
                continue
            assert not overlaps(a, b)
    for e in entries:
        if e.status is EntryStatus.SUPERSEDED:
            assert e.superseded_by is not None
        if e.superseded_by is not None:
            successor = p.entries[e.superseded_by]
            assert e.status is not EntryStatus.LOGGED
            if e.status is EntryStatus.APPROVED:  # stands until its correction is decided
                assert successor.status is EntryStatus.LOGGED
                assert successor.pending_over == e.entry_id
        if e.supersedes is not None:
            # a correction of an approved entry that was rejected, or itself corrected, no
            # longer holds the approved entry: it stands, or waits under a later correction
            standing = e.pending_over == e.supersedes and e.status in (
                EntryStatus.REJECTED, EntryStatus.SUPERSEDED)
            assert standing or p.entries[e.supersedes].superseded_by == e.entry_id
    if p.status is PlacementStatus.COMPLETED and p.approach is not None:
        if p.approach.value != "competency_based":
            assert p.ojl_minutes_toward_requirement >= p.ojl_minutes_required
        if p.approach.value != "time_based":
            assert set(p.competencies) <= set(p.signed_off)
    if p.credentials:
        assert p.evaluation_completed
    assert p.credited_minutes <= p.ojl_minutes_required


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), approach=st.sampled_from(["time_based", "hybrid", "competency_based"]),
       born=st.sampled_from([ADULT_BORN, MINOR_BORN]), steps=st.integers(1, 30))
def test_random_commands_never_break_an_invariant(data: st.DataObject, approach: str,
                                                  born: date, steps: int) -> None:
    placement = active(born=born, apprenticeship=program(approach=approach))
    placement.ojl_minutes_required = 600  # reachable within a short run
    for _ in range(steps):
        command = data.draw(st.sampled_from(COMMANDS))
        approved_before = placement.approved_minutes()
        before = copy.deepcopy(state(placement))
        pending = len(placement._pending_events)
        try:
            command(placement, data)
        except _Skipped:
            continue
        except DomainError as error:
            assert error.code and error.detail
            assert state(placement) == before, f"{command.__name__} refused but changed state"
            assert len(placement._pending_events) == pending
        else:
            assert len(placement._pending_events) == pending + 1
            SUCCEEDED[command.__name__] = SUCCEEDED.get(command.__name__, 0) + 1
            # An approved hour never silently changes: only the supervisor's approval (of a
            # correction that replaces approved minutes) lowers the approved total.
            if placement.approved_minutes() < approved_before:
                last = placement._pending_events[-1]
                assert type(last).__name__ == "HoursApproved", command.__name__
                assert last.actor_id == placement.supervisor_id
        check_invariants(placement)
    rebuilt = replayed(placement)
    rebuilt.ojl_minutes_required = 600
    assert state(rebuilt) == state(placement)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 9), st.integers(1, 1440)),
                max_size=30))
def test_a_learner_day_never_holds_more_than_24_hours(ops: list[tuple[bool, int, int]]) -> None:
    actor = Actor("l", LEARNER.role)
    day = LearnerDay.open(actor=actor, learner_id="l", day=TODAY)
    for is_claim, n, minutes in ops:
        before = copy.deepcopy(state(day))
        try:
            if is_claim:
                if f"e{n}" in day.claims:
                    continue
                day.claim(actor=actor, placement_id="p", entry_id=f"e{n}", minutes=minutes)
            else:
                day.release(actor=actor, entry_id=f"e{n}", reason="rejected")
        except DomainError:
            assert state(day) == before
        assert 0 <= day.claimed_minutes <= MINUTES_PER_DAY
    assert state(replayed(day)) == state(day)
