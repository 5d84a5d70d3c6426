"""Approval by emailed link and proxy approvers (issue 16, decision 055): the link's id is
recorded in the approval or rejection event (HoursApproved v3, HoursRejected v2; older
versions read as without one), a coordinator names a proxy approver under rules checked
before the event, and the proxy then reviews like the supervisor."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    UUIDAsHex,
)

from domain.actor import Actor, Role
from domain.errors import NotPermitted, RuleViolated, WrongState
from domain.placement import Placement
from domain.placement.hours import EntryStatus
from services.ledger.application import DateAsISO
from tests.unit.domain.factories import (
    COORDINATOR,
    LEARNER,
    OTHER_COORDINATOR,
    OTHER_SUPERVISOR,
    SUPERVISOR,
    TODAY,
    active,
    log,
    refused,
    replayed,
)

PROXY = Actor("proxy-1", Role.SUPERVISOR)


def _events(placement: Placement, name: str) -> list[Any]:
    return [e for e in placement.pending_events if type(e).__name__ == name]


def test_approval_and_rejection_record_the_link_id_and_the_supervisor_as_actor() -> None:
    placement = active()
    first, second = log(placement), log(placement, work_date=date(2024, 1, 10))
    placement.approve_hours(actor=SUPERVISOR, entry_id=first, approved_on=TODAY, today=TODAY,
                            link_id="lnk-a")
    placement.reject_hours(actor=SUPERVISOR, entry_id=second, reason="Not rota",
                           rejected_on=TODAY, today=TODAY, link_id="lnk-b")
    (approved,) = _events(placement, "HoursApproved")
    (rejected,) = _events(placement, "HoursRejected")
    assert (approved.actor_id, approved.actor_role, approved.link_id) == (
        SUPERVISOR.id, "supervisor", "lnk-a")
    assert (rejected.actor_id, rejected.actor_role, rejected.link_id, rejected.reason) == (
        SUPERVISOR.id, "supervisor", "lnk-b", "Not rota")
    assert type(approved).class_version == 3 and type(rejected).class_version == 2


def test_without_a_link_the_events_say_so() -> None:
    placement = active()
    entry = log(placement)
    placement.approve_hours(actor=SUPERVISOR, entry_id=entry, approved_on=TODAY, today=TODAY)
    assert _events(placement, "HoursApproved")[0].link_id is None


def test_a_malformed_link_id_is_refused_and_nothing_is_recorded() -> None:
    placement = active()
    entry = log(placement)
    with refused(placement, RuleViolated, "link-id-invalid"):
        placement.approve_hours(actor=SUPERVISOR, entry_id=entry, approved_on=TODAY,
                                today=TODAY, link_id="x" * 65)


def _mapper() -> Mapper[Any]:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), DateAsISO()):
        transcoder.register(transcoding)
    return Mapper(transcoder=transcoder)


def _as_older_version(mapper: Mapper[Any], event: Any, version: int,
                      drop: tuple[str, ...]) -> Any:
    """The stored form of ``event`` as an older version wrote it: without ``drop`` and with
    that class version (version 1 states carry no ``class_version`` at all)."""
    stored = mapper.to_stored_event(event)
    state = json.loads(stored.state)
    for name in drop:
        state.pop(name)
    if version == 1:
        state.pop("class_version", None)
    else:
        state["class_version"] = version
    return mapper.to_domain_event(type(stored)(
        originator_id=stored.originator_id, originator_version=stored.originator_version,
        topic=stored.topic, state=json.dumps(state).encode()))


@pytest.mark.parametrize(("name", "version", "drop"), [
    ("HoursApproved", 2, ("link_id",)),
    ("HoursApproved", 1, ("link_id", "replaces")),
    ("HoursRejected", 1, ("link_id",)),
])
def test_older_versions_are_upcast_to_no_link(name: str, version: int,
                                              drop: tuple[str, ...]) -> None:
    placement = active()
    first, second = log(placement), log(placement, work_date=date(2024, 1, 10))
    placement.approve_hours(actor=SUPERVISOR, entry_id=first, approved_on=TODAY, today=TODAY,
                            link_id="lnk-a")
    placement.reject_hours(actor=SUPERVISOR, entry_id=second, reason="No", rejected_on=TODAY,
                           today=TODAY, link_id="lnk-b")
    mapper = _mapper()
    (event,) = _events(placement, name)
    read = _as_older_version(mapper, event, version, drop)
    assert type(read) is type(event)
    assert read.link_id is None
    assert read.entry_id == event.entry_id and read.actor_id == SUPERVISOR.id
    assert mapper.to_stored_event(event).topic == f"domain.placement:Placement.{name}"


def test_entries_remember_when_they_were_logged_and_pending_lists_them_oldest_first() -> None:
    placement = active()
    later = log(placement, work_date=date(2024, 1, 10))
    earlier_day = log(placement, work_date=date(2024, 1, 9))
    approved = log(placement, work_date=date(2024, 1, 11))
    placement.approve_hours(actor=SUPERVISOR, entry_id=approved, approved_on=TODAY,
                            today=TODAY)
    stamps = {e.entry_id: e.logged_at for e in placement.entries.values()}
    assert all(stamps.values())
    logged = [e for e in placement.pending_events if type(e).__name__ == "HoursLogged"]
    assert [stamps[e.entry_id] for e in logged] == [e.timestamp for e in logged]
    assert [e.entry_id for e in placement.pending_entries()] == [later, earlier_day]
    rebuilt = replayed(placement)
    assert {e.entry_id: e.logged_at for e in rebuilt.entries.values()} == stamps
    fixed = placement.correct_hours(actor=LEARNER, entry_id=later, reason="typo",
                                    work_date=date(2024, 1, 10), minutes=200, today=TODAY,
                                    learner_born_on=None)
    assert placement.entries[fixed].logged_at is not None
    assert placement.entries[fixed].logged_at >= stamps[later]  # type: ignore[operator]


# -- proxy approvers -----------------------------------------------------------------------

def _name(placement: Placement, proxy: str = PROXY.id, actor: Actor = COORDINATOR,
          reason: str = "Supervisor on leave") -> None:
    placement.name_proxy_approver(actor=actor, proxy_id=proxy, reason=reason, named_on=TODAY,
                                  today=TODAY)


def test_a_coordinator_names_a_proxy_who_then_approves_and_rejects() -> None:
    placement = active()
    first, second = log(placement), log(placement, work_date=date(2024, 1, 10))
    _name(placement)
    (named,) = _events(placement, "ProxyApproverNamed")
    assert (named.actor_id, named.actor_role, named.proxy_id, named.reason,
            named.business_date) == (COORDINATOR.id, "coordinator", PROXY.id,
                                     "Supervisor on leave", TODAY)
    assert placement.approvers == (SUPERVISOR.id, PROXY.id)
    placement.approve_hours(actor=PROXY, entry_id=first, approved_on=TODAY, today=TODAY,
                            link_id="lnk-p")
    placement.reject_hours(actor=PROXY, entry_id=second, reason="Not rota",
                           rejected_on=TODAY, today=TODAY)
    assert placement.entries[first].status is EntryStatus.APPROVED
    assert placement.entries[second].status is EntryStatus.REJECTED
    assert _events(placement, "HoursApproved")[0].actor_id == PROXY.id
    assert replayed(placement).proxy_approver_id == PROXY.id


def test_the_supervisor_still_approves_and_other_supervisors_still_may_not() -> None:
    placement = active()
    first, second = log(placement), log(placement, work_date=date(2024, 1, 10))
    _name(placement)
    placement.approve_hours(actor=SUPERVISOR, entry_id=first, approved_on=TODAY, today=TODAY)
    with refused(placement, NotPermitted, "not-supervisor"):
        placement.approve_hours(actor=OTHER_SUPERVISOR, entry_id=second, approved_on=TODAY,
                                today=TODAY)


def test_naming_another_proxy_replaces_the_first() -> None:
    placement = active()
    entry = log(placement)
    _name(placement)
    _name(placement, proxy="proxy-2", reason="First proxy left too")
    assert placement.approvers == (SUPERVISOR.id, "proxy-2")
    with refused(placement, NotPermitted, "not-supervisor"):
        placement.approve_hours(actor=PROXY, entry_id=entry, approved_on=TODAY, today=TODAY)


@pytest.mark.parametrize(("proxy", "actor", "reason", "error", "code"), [
    (LEARNER.id, COORDINATOR, "x", RuleViolated, "proxy-is-learner"),
    (SUPERVISOR.id, COORDINATOR, "x", RuleViolated, "proxy-is-supervisor"),
    (COORDINATOR.id, COORDINATOR, "x", RuleViolated, "proxy-is-self"),
    ("  ", COORDINATOR, "x", RuleViolated, "proxy-required"),
    (PROXY.id, COORDINATOR, "  ", RuleViolated, "reason-required"),
    (PROXY.id, OTHER_COORDINATOR, "x", NotPermitted, "other-organisation"),
    (PROXY.id, SUPERVISOR, "x", NotPermitted, "coordinator-required"),
    (PROXY.id, LEARNER, "x", NotPermitted, "coordinator-required"),
])
def test_naming_a_proxy_is_refused_before_any_event(proxy: str, actor: Actor, reason: str,
                                                    error: type[Exception], code: str) -> None:
    placement = active()
    with refused(placement, error, code):  # type: ignore[arg-type]
        _name(placement, proxy=proxy, actor=actor, reason=reason)


def test_the_same_proxy_twice_a_future_date_or_an_ended_placement_are_refused() -> None:
    placement = active()
    _name(placement)
    with refused(placement, WrongState, "proxy-already-named"):
        _name(placement)
    with refused(placement, RuleViolated, "in-future"):
        placement.name_proxy_approver(actor=COORDINATOR, proxy_id="proxy-3", reason="x",
                                      named_on=TODAY + timedelta(days=1), today=TODAY)
    placement.withdraw(actor=COORDINATOR, reason="moved", during_probation=False,
                       withdrawn_on=TODAY, today=TODAY)
    with refused(placement, WrongState, "placement-withdrawn"):
        _name(placement, proxy="proxy-3")


def test_a_proxy_never_reviews_hours_they_logged() -> None:
    placement = active()
    _name(placement, proxy=COORDINATOR.id, actor=Actor("coord-2", Role.COORDINATOR, "org-1"))
    entry = log(placement, actor=COORDINATOR)
    with refused(placement, NotPermitted, "own-hours"):
        placement.approve_hours(actor=COORDINATOR, entry_id=entry, approved_on=TODAY,
                                today=TODAY)
