"""A placement: one learner in one opportunity, from the match to completion or withdrawal.

The placement holds its hour entries, so every rule that compares entries (overlaps, the
FLSA limits per employer, approval by the named supervisor, corrections) is checked
against one consistent version of the record; the store's version check refuses a
second writer that read the same version. The one rule that spans placements, at most
24 hours a day per learner, is kept by :class:`domain.learner_day.LearnerDay`.

States: ``matched`` -> (agreement signed by every party) -> ``active`` <-> ``suspended``
-> ``completed``; ``withdrawn`` from any state before completion. A command refused
because of the state raises :class:`WrongState` with the code ``placement-<state>``
(``placement-not-started``, ``placement-active``, ``placement-suspended``,
``placement-completed``, ``placement-withdrawn``), naming the state that blocked it.
"""

from __future__ import annotations

from collections.abc import Mapping
from copy import deepcopy
from dataclasses import replace
from datetime import date
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event

from domain.actor import Actor, Role
from domain.errors import NotPermitted, RuleViolated, UnknownAggregate, WrongState
from domain.learner_week import LearnerWeek
from domain.opportunity import Opportunity, WBLType
from domain.placement import minors as child_labour
from domain.placement.hours import (
    EntryStatus,
    HourEntry,
    HourKind,
    check_entry_shape,
    clock_text,
    overlaps,
    parse_clock,
    parse_kind,
)
from domain.placement.minors import ChildLabourPolicy
from domain.placement.values import (
    _STATE_CODES,
    COORDINATING_ROLES,
    RUBRIC_MAX,
    RUBRIC_MIN,
    AgreementParty,
    Credential,
    CredentialKind,
    Credit,
    CreditBasis,
    Evaluation,
    EvaluationStage,
    EvaluatorRole,
    PlacementStatus,
    age_on,
    birthday,
)
from domain.program import ApprenticeshipProgram, Approach


class Placement(Aggregate):
    """One learner's placement in one opportunity.

    Learner personal data: the match takes the birth date but records only the 16th and
    18th birthdays, and only when they fall after the opportunity starts (the learner is
    under 16 or under 18 during it); see docs/decisions/011-learner-age-in-events.md.
    """

    id: UUID  # lets an import give the id (stable across re-runs); otherwise a new uuid4

    # -- the match ------------------------------------------------------------------

    @classmethod
    def match(
        cls,
        *,
        actor: Actor,
        opportunity: Opportunity,
        program: ApprenticeshipProgram | None,
        learner_id: str,
        supervisor_id: str,
        learner_born_on: date,
        matched_on: date,
        id: UUID | None = None,
    ) -> Placement:
        """A coordinator matches a learner to an open opportunity, naming the supervisor."""
        _require_coordinator(actor, opportunity.organisation_id)
        if opportunity.closed:
            raise WrongState("The opportunity is closed to new matches.",
                             code="opportunity-closed")
        if not learner_id.strip():
            raise RuleViolated("Name the learner.", code="learner-required", field="learner_id")
        if not supervisor_id.strip():
            raise RuleViolated("Name the worksite supervisor.", code="supervisor-required",
                               field="supervisor_id")
        if supervisor_id == learner_id:
            raise RuleViolated(
                "A learner cannot supervise their own placement: nobody approves their own "
                "hours.", code="supervisor-is-learner", field="supervisor_id",
            )
        age = age_on(learner_born_on, opportunity.starts_on)
        if opportunity.minimum_age is not None and age < opportunity.minimum_age:
            raise RuleViolated(
                f"The learner is {age} when the opportunity starts; it requires "
                f"{opportunity.minimum_age}.",
                code="learner-under-minimum-age", field="learner_born_on",
            )
        is_apprenticeship = opportunity.wbl_type is WBLType.APPRENTICESHIP
        if is_apprenticeship and program is None:
            raise RuleViolated("An apprenticeship placement names its registered program.",
                               code="program-required", field="program_id")
        if program is not None and not (is_apprenticeship or opportunity.pre_apprenticeship):
            raise RuleViolated(
                "Only apprenticeship and pre-apprenticeship placements follow a program.",
                code="program-not-allowed", field="program_id",
            )
        return cls(
            id=id or uuid4(),  # type: ignore[call-arg]  # accepted by the metaclass (id: UUID)
            actor_id=actor.id,
            actor_role=str(actor.role),
            business_date=matched_on,
            organisation_id=opportunity.organisation_id,
            opportunity_id=str(opportunity.id),
            learner_id=learner_id,
            supervisor_id=supervisor_id,
            wbl_type=opportunity.wbl_type.value,
            pre_apprenticeship=opportunity.pre_apprenticeship,
            starts_on=opportunity.starts_on,
            ends_on=opportunity.ends_on,
            minor_during_placement=birthday(learner_born_on, 18) > opportunity.starts_on,
            program_id=None if program is None else str(program.id),
            approach=None if program is None else program.approach.value,
            ojl_minutes_required=0 if program is None else program.ojl_minutes_required,
            work_processes=[] if program is None else sorted(program.work_processes),
            competencies=[] if program is None else list(program.competencies),
            pre_apprenticeship_hours_count=(
                False if program is None else program.pre_apprenticeship_hours_count
            ),
        )

    class LearnerMatched(Aggregate.Created):
        """A coordinator matched a learner to an opportunity and named the worksite
        supervisor. The opportunity's dates and the program's requirements are copied so
        the placement's rules never depend on a later revision of either. Whether the
        learner is under 18 on some day of the placement is recorded; their birth date, or
        any date derived from it, is not (version 1 held the dates a minor turns 16 and 18,
        which give the birth date away; decision 038)."""

        class_version = 2
        actor_id: str
        actor_role: str
        business_date: date
        organisation_id: str
        opportunity_id: str
        learner_id: str
        supervisor_id: str
        wbl_type: str
        pre_apprenticeship: bool
        starts_on: date
        ends_on: date
        minor_during_placement: bool
        program_id: str | None
        approach: str | None
        ojl_minutes_required: int
        work_processes: list[str]
        competencies: list[str]
        pre_apprenticeship_hours_count: bool

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Read a version-1 event without its birthdays: they reach no reader, no topic
            and no replay; only "a minor during the placement" is kept."""
            state["minor_during_placement"] = state.pop("turns_18_on", None) is not None
            state.pop("turns_16_on", None)

    @event(LearnerMatched)
    def __init__(
        self,
        *,
        actor_id: str,
        actor_role: str,
        business_date: date,
        organisation_id: str,
        opportunity_id: str,
        learner_id: str,
        supervisor_id: str,
        wbl_type: str,
        pre_apprenticeship: bool,
        starts_on: date,
        ends_on: date,
        minor_during_placement: bool,
        program_id: str | None,
        approach: str | None,
        ojl_minutes_required: int,
        work_processes: list[str],
        competencies: list[str],
        pre_apprenticeship_hours_count: bool,
    ) -> None:
        """A coordinator matched a learner to an opportunity and named the worksite
        supervisor. The opportunity's dates and the program's requirements are copied so
        the placement's rules never depend on a later revision of either."""
        self.organisation_id = organisation_id
        self.opportunity_id = opportunity_id
        self.learner_id = learner_id
        self.supervisor_id = supervisor_id
        self.wbl_type = WBLType(wbl_type)
        self.pre_apprenticeship = pre_apprenticeship
        self.starts_on = starts_on
        self.ends_on = ends_on
        self.minor = minor_during_placement
        self.program_id = program_id
        self.approach = None if approach is None else Approach(approach)
        self.ojl_minutes_required = ojl_minutes_required
        self.work_processes = list(work_processes)
        self.competencies = list(competencies)
        self.pre_apprenticeship_hours_count = pre_apprenticeship_hours_count
        self.matched_on = business_date
        self.status = PlacementStatus.MATCHED
        self.signatures: dict[str, str] = {}
        self.started_on: date | None = None
        self.entries: dict[str, HourEntry] = {}
        self.evaluations: list[Evaluation] = []
        self.signed_off: dict[str, date] = {}
        self.credentials: list[Credential] = []
        self.credits: list[Credit] = []
        self.status_reason: str | None = None
        self.withdrawn_during_probation: bool | None = None
        self.completed_on: date | None = None

    work_experience_agreement_on: date | None = None
    """Set when a WECEP training agreement (29 CFR 570.36) is recorded on the placement;
    a class default so placements matched before the event existed read as without one."""

    # -- agreement and start ----------------------------------------------------------

    @property
    def required_parties(self) -> list[str]:
        parties = [AgreementParty.LEARNER, AgreementParty.EMPLOYER, AgreementParty.COORDINATOR]
        if self.minor:
            parties.insert(1, AgreementParty.GUARDIAN)
        return [p.value for p in parties]

    @property
    def agreement_complete(self) -> bool:
        return all(p in self.signatures for p in self.required_parties)

    def sign_agreement(self, *, actor: Actor, party: AgreementParty | str, signed_on: date,
                       today: date) -> None:
        """Each party signs the training agreement in their own name."""
        self._require({PlacementStatus.MATCHED}, "sign the agreement")
        try:
            parsed = AgreementParty(party)
        except ValueError:
            raise RuleViolated(f"{party!r} is not a party to the agreement.",
                               code="unknown-party", field="party") from None
        _not_in_future(signed_on, today, "signed_on")
        if parsed.value not in self.required_parties:
            raise RuleViolated(
                "The learner is an adult at the start; no guardian signs.",
                code="guardian-not-required", field="party",
            )
        allowed = {
            AgreementParty.LEARNER: actor.id == self.learner_id,
            AgreementParty.GUARDIAN: actor.role is Role.GUARDIAN,
            AgreementParty.EMPLOYER: actor.role in (Role.EMPLOYER, Role.SUPERVISOR),
            AgreementParty.COORDINATOR: actor.role in COORDINATING_ROLES,
        }[parsed]
        if not allowed:
            raise NotPermitted(f"You cannot sign as the {parsed.value}.",
                               code="not-signing-party", field="party")
        if parsed.value in self.signatures:
            raise WrongState(f"The {parsed.value} has already signed.", code="already-signed",
                             field="party")
        self._agreement_signed(actor_id=actor.id, actor_role=str(actor.role),
                               business_date=signed_on, party=parsed.value)

    @event("AgreementSigned")
    def _agreement_signed(self, *, actor_id: str, actor_role: str, business_date: date,
                          party: str) -> None:
        """One party (learner, guardian, employer or coordinator) signed the training
        agreement; the placement can start once every required party has."""
        self.signatures[party] = actor_id

    def start(self, *, actor: Actor, started_on: date, today: date) -> None:
        """The placement starts on a day within the opportunity, once the agreement is signed."""
        self._require({PlacementStatus.MATCHED}, "start")
        self._require_coordinator_or_supervisor(actor)
        if not self.agreement_complete:
            missing = [p for p in self.required_parties if p not in self.signatures]
            raise WrongState(
                f"The agreement still needs: {', '.join(missing)}.", code="agreement-incomplete"
            )
        _not_in_future(started_on, today, "started_on")
        if not self.starts_on <= started_on <= self.ends_on:
            raise RuleViolated(
                f"The placement starts within the opportunity ({self.starts_on} to "
                f"{self.ends_on}).", code="start-outside-opportunity", field="started_on",
            )
        self._started(actor_id=actor.id, actor_role=str(actor.role), business_date=started_on)

    @event("PlacementStarted")
    def _started(self, *, actor_id: str, actor_role: str, business_date: date) -> None:
        """The learner's first day at the worksite; no hours may be dated before it."""
        self.status = PlacementStatus.ACTIVE
        self.started_on = business_date

    # -- hours ------------------------------------------------------------------------

    class HoursLogged(Aggregate.Event):
        """Minutes worked or trained on one work date (``business_date``), with optional
        clock times, their allocation to the program's work processes, whether it was a
        school day / school week, and (since version 2) the FLSA 14-15 limits it breached
        when the organisation flags rather than refuses."""

        actor_id: str
        actor_role: str
        business_date: date
        entry_id: str
        minutes: int
        kind: str
        start_time: str | None
        end_time: str | None
        allocations: dict[str, int]
        school_day: bool
        school_week: bool
        child_labour_flags: list[str]

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1 predates flagging: none of its entries were flagged."""
            state["child_labour_flags"] = []

        def apply(self, aggregate: Any) -> None:
            """After the decorated method: the entry waits for review from this event's
            recording time (``HourEntry.logged_at``)."""
            aggregate._change_entry(self.entry_id, logged_at=self.timestamp)

    def log_hours(
        self,
        *,
        actor: Actor,
        work_date: date,
        minutes: int,
        kind: HourKind | str = HourKind.ON_THE_JOB,
        start_time: str | None = None,
        end_time: str | None = None,
        allocations: Mapping[str, int] | None = None,
        school_day: bool = False,
        school_week: bool | None = None,
        calendar_missing: bool = False,
        today: date,
        learner_born_on: date | None,
        policy: ChildLabourPolicy = ChildLabourPolicy.REFUSE,
        learner_week: LearnerWeek | None = None,
        entry_id: str | None = None,
    ) -> str:
        """Check a new entry against every rule within this placement; return its id.

        ``learner_born_on`` comes from the personal-data vault, for the child-labour rules
        only; it is never recorded (the events know only that the learner is a minor).
        ``school_day``/``school_week``/``calendar_missing`` are the school calendar's answer
        for the work date (the ledger asks ``domain.calendar.SchoolCalendar``; never the
        client). ``learner_week`` holds the learner's other placements' minutes that week.

        The 24-hours-a-day limit across all of the learner's placements is not checked
        here: see :class:`domain.learner_day.LearnerDay`.
        """
        self._require({PlacementStatus.ACTIVE}, "log hours")
        self._require_party(actor)
        entry = self._new_entry(
            actor=actor, work_date=work_date, minutes=minutes, kind=kind, start_time=start_time,
            end_time=end_time, allocations=allocations, school_day=school_day,
            school_week=school_week, today=today, entry_id=entry_id, replacing=(),
        )
        flags = self._child_labour_flags(entry, policy, learner_born_on, replacing=(),
                                         learner_week=learner_week,
                                         calendar_missing=calendar_missing)
        self._hours_logged(
            actor_id=actor.id, actor_role=str(actor.role), business_date=entry.work_date,
            entry_id=entry.entry_id, minutes=entry.minutes, kind=entry.kind.value,
            start_time=clock_text(entry.start_time), end_time=clock_text(entry.end_time),
            allocations=dict(entry.allocations), school_day=entry.school_day,
            school_week=entry.school_week, child_labour_flags=flags,
        )
        return entry.entry_id

    @event(HoursLogged)
    def _hours_logged(self, *, actor_id: str, actor_role: str, business_date: date,
                      entry_id: str, minutes: int, kind: str, start_time: str | None,
                      end_time: str | None,
                      allocations: dict[str, int], school_day: bool, school_week: bool,
                      child_labour_flags: list[str]) -> None:
        self.entries[entry_id] = HourEntry(
            entry_id=entry_id, work_date=business_date, minutes=minutes, kind=HourKind(kind),
            start_time=parse_clock(start_time, "start_time"),
            end_time=parse_clock(end_time, "end_time"), allocations=dict(allocations),
            logged_by=actor_id, school_day=school_day, school_week=school_week,
            child_labour_flags=tuple(child_labour_flags),
        )

    def approve_hours(self, *, actor: Actor, entry_id: str, approved_on: date, today: date,
                      link_id: str | None = None) -> None:
        """The placement's named supervisor (or the proxy a coordinator named) approves a
        pending entry of someone else's. ``link_id`` names the emailed approval link the
        supervisor followed, when they approved through one (decision 055)."""
        entry = self._pending_entry_for_review(actor, entry_id, "approve")
        _not_in_future(approved_on, today, "approved_on")
        self._hours_approved(actor_id=actor.id, actor_role=str(actor.role),
                             business_date=approved_on, entry_id=entry.entry_id,
                             replaces=entry.pending_over, link_id=_link_id(link_id))

    class HoursApproved(Aggregate.Event):
        """The supervisor confirmed an entry; since version 2, ``replaces`` names the
        approved entry this confirmed correction takes the place of (it stops counting now,
        not when the correction was logged); since version 3, ``link_id`` names the signed,
        single-use emailed link the supervisor approved through (null when they approved
        signed in or over the API)."""

        actor_id: str
        actor_role: str
        business_date: date
        entry_id: str
        replaces: str | None
        link_id: str | None

        class_version = 3

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1 predates corrections that wait for approval: none replaced one."""
            state["replaces"] = None

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            """Version 2 predates approval links: none was approved through one."""
            state["link_id"] = None

    @event(HoursApproved)
    def _hours_approved(self, *, actor_id: str, actor_role: str, business_date: date,
                        entry_id: str, replaces: str | None, link_id: str | None) -> None:
        """The worksite supervisor confirmed an entry; its minutes now count toward the
        learner's approved hours (29 CFR 29.5(b)(6) records of hours of work). When it
        corrects an approved entry, that one is superseded now."""
        self._change_entry(entry_id, status=EntryStatus.APPROVED)
        if replaces is not None:
            self._change_entry(replaces, status=EntryStatus.SUPERSEDED)

    def entry_replaced_on_approval(self, entry_id: str) -> str | None:
        """The approved entry that approving ``entry_id`` would supersede, if any."""
        return self.entry(entry_id).pending_over

    def reject_hours(self, *, actor: Actor, entry_id: str, reason: str, rejected_on: date,
                     today: date, link_id: str | None = None) -> None:
        """The supervisor (or the named proxy) refuses an entry and says why, so it can be
        corrected; ``link_id`` as for ``approve_hours``."""
        entry = self._pending_entry_for_review(actor, entry_id, "reject")
        reason = _reason(reason)
        _not_in_future(rejected_on, today, "rejected_on")
        self._hours_rejected(actor_id=actor.id, actor_role=str(actor.role),
                             business_date=rejected_on, entry_id=entry.entry_id, reason=reason,
                             link_id=_link_id(link_id))

    class HoursRejected(Aggregate.Event):
        """The worksite supervisor refused an entry, with the reason; the minutes no longer
        count anywhere, and a correction may replace the entry. A rejected correction of an
        approved entry leaves that entry standing (and correctable again). Since version 2,
        ``link_id`` names the signed, single-use emailed link the supervisor rejected
        through (null when they rejected signed in or over the API)."""

        actor_id: str
        actor_role: str
        business_date: date
        entry_id: str
        reason: str
        link_id: str | None

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1 predates approval links: none was rejected through one."""
            state["link_id"] = None

    @event(HoursRejected)
    def _hours_rejected(self, *, actor_id: str, actor_role: str, business_date: date,
                        entry_id: str, reason: str, link_id: str | None) -> None:
        """The worksite supervisor refused an entry, with the reason; the minutes no longer
        count anywhere, and a correction may replace the entry. A rejected correction of an
        approved entry leaves that entry standing (and correctable again)."""
        entry = self._change_entry(entry_id, status=EntryStatus.REJECTED,
                                   rejection_reason=reason)
        if entry.pending_over is not None:
            self._change_entry(entry.pending_over, superseded_by=None)

    def correct_hours(
        self,
        *,
        actor: Actor,
        entry_id: str,
        reason: str,
        work_date: date,
        minutes: int,
        kind: HourKind | str = HourKind.ON_THE_JOB,
        start_time: str | None = None,
        end_time: str | None = None,
        allocations: Mapping[str, int] | None = None,
        school_day: bool = False,
        school_week: bool | None = None,
        calendar_missing: bool = False,
        today: date,
        learner_born_on: date | None,
        policy: ChildLabourPolicy = ChildLabourPolicy.REFUSE,
        learner_week: LearnerWeek | None = None,
        new_entry_id: str | None = None,
    ) -> str:
        """Replace an entry by a new one that refers to it; return the new entry's id.

        The old entry is never edited. An approved hour never silently changes: correcting
        an approved entry leaves it approved and counted until a supervisor approves the
        correction (then it is superseded) or rejects it (then it stands). A logged entry is
        superseded at once; a rejected one stays rejected, in the history of rejected
        minutes. An entry is corrected at most once at a time; two concurrent corrections
        of the same entry both read the same version and the store refuses the second.
        """
        self._require({PlacementStatus.ACTIVE, PlacementStatus.SUSPENDED}, "correct hours")
        self._require_party(actor)
        old = self.entry(entry_id)
        if old.status is EntryStatus.SUPERSEDED or old.superseded_by is not None:
            raise WrongState(
                f"Entry {entry_id} was already corrected by {old.superseded_by}; correct that "
                "one instead.", code="entry-superseded", field="entry_id",
            )
        reason = _reason(reason)
        pending_over = old.entry_id if old.status is EntryStatus.APPROVED else (
            old.pending_over if old.status is EntryStatus.LOGGED else None)
        replacing = (old,) if pending_over in (None, old.entry_id) else (
            old, self.entries[pending_over])
        entry = self._new_entry(
            actor=actor, work_date=work_date, minutes=minutes, kind=kind, start_time=start_time,
            end_time=end_time, allocations=allocations, school_day=school_day,
            school_week=school_week, today=today, entry_id=new_entry_id, replacing=replacing,
        )
        flags = self._child_labour_flags(entry, policy, learner_born_on, replacing=replacing,
                                         learner_week=learner_week,
                                         calendar_missing=calendar_missing)
        self._hours_corrected(
            actor_id=actor.id, actor_role=str(actor.role), business_date=entry.work_date,
            entry_id=entry.entry_id, supersedes=old.entry_id, reason=reason,
            minutes=entry.minutes, kind=entry.kind.value,
            start_time=clock_text(entry.start_time), end_time=clock_text(entry.end_time),
            allocations=dict(entry.allocations), school_day=entry.school_day,
            school_week=entry.school_week, child_labour_flags=flags, pending_over=pending_over,
        )
        return entry.entry_id

    class HoursCorrected(Aggregate.Event):
        """A new entry replaces an earlier one (``supersedes``), with the reason. Since
        version 2, ``pending_over`` names the approved entry that stays counted until this
        correction is approved; version 1 corrections replaced entries at once."""

        actor_id: str
        actor_role: str
        business_date: date
        entry_id: str
        supersedes: str
        reason: str
        minutes: int
        kind: str
        start_time: str | None
        end_time: str | None
        allocations: dict[str, int]
        school_day: bool
        school_week: bool
        child_labour_flags: list[str]
        pending_over: str | None

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1 replaced the corrected entry at once: nothing stood pending."""
            state["pending_over"] = None

        def apply(self, aggregate: Any) -> None:
            """After the decorated method: the new entry waits for review from this event's
            recording time (``HourEntry.logged_at``)."""
            aggregate._change_entry(self.entry_id, logged_at=self.timestamp)

    @event(HoursCorrected)
    def _hours_corrected(self, *, actor_id: str, actor_role: str, business_date: date,
                         entry_id: str, supersedes: str, reason: str, minutes: int, kind: str,
                         start_time: str | None, end_time: str | None,
                         allocations: dict[str, int], school_day: bool, school_week: bool,
                         child_labour_flags: list[str], pending_over: str | None) -> None:
        """A new entry replaced an earlier one (``supersedes``), with the reason. The new
        entry is pending approval. An approved entry it corrects (``pending_over``) still
        counts until then; a logged one is superseded now; a rejected one stays rejected.
        Every earlier entry stays in history unchanged."""
        old = self.entries[supersedes]
        superseded_now = old.entry_id != pending_over and old.status is not EntryStatus.REJECTED
        self._change_entry(supersedes, superseded_by=entry_id, **(
            {"status": EntryStatus.SUPERSEDED} if superseded_now else {}))
        if pending_over is not None:
            self._change_entry(pending_over, superseded_by=entry_id)
        self.entries[entry_id] = HourEntry(
            entry_id=entry_id, work_date=business_date, minutes=minutes, kind=HourKind(kind),
            start_time=parse_clock(start_time, "start_time"),
            end_time=parse_clock(end_time, "end_time"), allocations=dict(allocations),
            logged_by=actor_id, school_day=school_day, school_week=school_week,
            supersedes=supersedes, child_labour_flags=tuple(child_labour_flags),
            pending_over=pending_over, correction_reason=reason,
        )

    # -- who reviews: the supervisor, or a proxy approver -----------------------------

    proxy_approver_id: str | None = None
    """The person a coordinator named to approve or reject hours in the supervisor's place
    (``ProxyApproverNamed``); a class default so placements from before the event read as
    having none."""

    @property
    def approvers(self) -> tuple[str, ...]:
        """Who may approve or reject this placement's hours: the supervisor, and the proxy
        approver when one was named."""
        if self.proxy_approver_id is None:
            return (self.supervisor_id,)
        return (self.supervisor_id, self.proxy_approver_id)

    def pending_entries(self) -> list[HourEntry]:
        """Entries awaiting a supervisor's decision, oldest logged first."""
        pending = [e for e in self.entries.values() if e.status is EntryStatus.LOGGED]
        return sorted(pending, key=lambda e: (e.logged_at is None, e.logged_at, e.entry_id))

    def name_proxy_approver(self, *, actor: Actor, proxy_id: str, reason: str, named_on: date,
                            today: date) -> None:
        """A coordinator of the placement's organisation names someone to approve or reject
        its hours while the supervisor cannot (away, left the employer): approvals that wait
        too long are what learners' hour records suffer from most. The proxy reviews under
        the same separation of duties as the supervisor (never hours they logged or worked);
        the learner is never their own proxy, and a coordinator does not name themself."""
        _require_coordinator(actor, self.organisation_id)
        self._require({PlacementStatus.MATCHED, PlacementStatus.ACTIVE,
                       PlacementStatus.SUSPENDED}, "name a proxy approver")
        proxy_id = proxy_id.strip() if proxy_id else ""
        if not proxy_id:
            raise RuleViolated("Name the proxy approver.", code="proxy-required",
                               field="proxy_id")
        if proxy_id == self.learner_id:
            raise RuleViolated("A learner never approves their own hours.",
                               code="proxy-is-learner", field="proxy_id")
        if proxy_id == self.supervisor_id:
            raise RuleViolated("That is the placement's supervisor, who approves already.",
                               code="proxy-is-supervisor", field="proxy_id")
        if proxy_id == actor.id:
            raise RuleViolated("Name someone else: whoever names the proxy does not approve "
                               "in their own name.", code="proxy-is-self", field="proxy_id")
        if proxy_id == self.proxy_approver_id:
            raise WrongState(f"{proxy_id} is already the proxy approver.",
                             code="proxy-already-named", field="proxy_id")
        reason = _reason(reason)
        _not_in_future(named_on, today, "named_on")
        self._proxy_approver_named(actor_id=actor.id, actor_role=str(actor.role),
                                   business_date=named_on, proxy_id=proxy_id, reason=reason)

    @event("ProxyApproverNamed")
    def _proxy_approver_named(self, *, actor_id: str, actor_role: str, business_date: date,
                              proxy_id: str, reason: str) -> None:
        """A coordinator named ``proxy_id`` to approve or reject the placement's hours
        besides the supervisor, with the reason; it replaces any proxy named before. The
        supervisor still approves too."""
        self.proxy_approver_id = proxy_id

    # -- work experience and career exploration (29 CFR 570.36) -----------------------

    def record_work_experience_agreement(self, *, actor: Actor, signed_on: date,
                                         reason: str, today: date) -> None:
        """A coordinator records that the placement is part of a Work Experience and Career
        Exploration Program with its written training agreement: the learner may then work
        up to 23 hours in a school week, and during school hours (570.36)."""
        _require_coordinator(actor, self.organisation_id)
        self._require({PlacementStatus.MATCHED, PlacementStatus.ACTIVE,
                       PlacementStatus.SUSPENDED}, "record a WECEP agreement")
        if self.work_experience_agreement_on is not None:
            raise WrongState("A WECEP training agreement is already recorded.",
                             code="agreement-already-recorded")
        _not_in_future(signed_on, today, "signed_on")
        self._work_experience_agreed(actor_id=actor.id, actor_role=str(actor.role),
                                     business_date=signed_on, reason=_reason(reason))

    @event("WorkExperienceAgreementRecorded")
    def _work_experience_agreed(self, *, actor_id: str, actor_role: str, business_date: date,
                                reason: str) -> None:
        """The placement runs under a WECEP training agreement (29 CFR 570.36), signed on
        ``business_date``: its minors' school-week limit is 23 hours."""
        self.work_experience_agreement_on = business_date

    # -- evaluation, competencies, credentials -----------------------------------------

    def evaluate(
        self,
        *,
        actor: Actor,
        scores: Mapping[str, int],
        evaluator_role: EvaluatorRole | str,
        stage: EvaluationStage | str = EvaluationStage.FINAL,
        comments: str = "",
        evaluated_on: date,
        today: date,
        evaluation_id: str | None = None,
    ) -> str:
        """Record rubric scores per competency; a final evaluation completes the evaluation
        that a credential requires."""
        self._require({PlacementStatus.ACTIVE, PlacementStatus.SUSPENDED,
                       PlacementStatus.COMPLETED}, "evaluate")
        self._require_party(actor, sponsor_too=True)
        try:
            role = EvaluatorRole(evaluator_role)
        except ValueError:
            raise RuleViolated(f"{evaluator_role!r} is not an evaluator role.",
                               code="unknown-evaluator-role", field="evaluator_role") from None
        try:
            parsed_stage = EvaluationStage(stage)
        except ValueError:
            raise RuleViolated(f"{stage!r} is not an evaluation stage (interim, final).",
                               code="unknown-evaluation-stage", field="stage") from None
        if not scores:
            raise RuleViolated("An evaluation scores at least one competency.",
                               code="scores-required", field="scores")
        for competency, score in scores.items():
            if self.competencies and competency not in self.competencies:
                raise RuleViolated(f"{competency!r} is not a competency of this program.",
                                   code="unknown-competency", field="scores")
            if isinstance(score, bool) or not isinstance(score, int) or not (
                RUBRIC_MIN <= score <= RUBRIC_MAX
            ):
                raise RuleViolated(
                    f"Scores are whole numbers from {RUBRIC_MIN} to {RUBRIC_MAX}; "
                    f"{competency!r} got {score!r}.", code="score-out-of-range", field="scores",
                )
        _not_in_future(evaluated_on, today, "evaluated_on")
        new_id = evaluation_id or str(uuid4())
        self._evaluated(actor_id=actor.id, actor_role=str(actor.role), business_date=evaluated_on,
                        evaluation_id=new_id, stage=parsed_stage.value,
                        evaluator_role=role.value, scores=dict(scores), comments=comments)
        return new_id

    @event("PlacementEvaluated")
    def _evaluated(self, *, actor_id: str, actor_role: str, business_date: date,
                   evaluation_id: str, stage: str, evaluator_role: str,
                   scores: dict[str, int], comments: str) -> None:
        """An evaluator scored the learner on a rubric (1-4) per competency, in a stated
        role (supervisor, mentor, coordinator, instructor, self), interim or final."""
        self.evaluations.append(Evaluation(
            evaluation_id=evaluation_id, stage=EvaluationStage(stage), evaluator_id=actor_id,
            evaluator_role=EvaluatorRole(evaluator_role), scores=dict(scores),
            comments=comments, evaluated_on=business_date,
        ))

    def sign_off_competency(self, *, actor: Actor, competency: str, signed_off_on: date,
                            today: date) -> None:
        """The supervisor (the journeyworker) or the sponsor attests a competency."""
        self._require({PlacementStatus.ACTIVE, PlacementStatus.SUSPENDED}, "sign off")
        if actor.id != self.supervisor_id and actor.role is not Role.SPONSOR:
            raise NotPermitted("Only the placement's supervisor or the sponsor signs off "
                               "competencies.", code="not-supervisor")
        if competency not in self.competencies:
            raise RuleViolated(f"{competency!r} is not a competency of this program.",
                               code="unknown-competency", field="competency")
        if competency in self.signed_off:
            raise WrongState(f"{competency!r} was already signed off.",
                             code="competency-already-signed-off", field="competency")
        _not_in_future(signed_off_on, today, "signed_off_on")
        self._competency_signed_off(actor_id=actor.id, actor_role=str(actor.role),
                                    business_date=signed_off_on, competency=competency)

    @event("CompetencySignedOff")
    def _competency_signed_off(self, *, actor_id: str, actor_role: str, business_date: date,
                               competency: str) -> None:
        """A supervisor or sponsor attested that the learner demonstrated a competency of the
        program (29 CFR 29.5(b)(2)(ii), competency-based progression)."""
        self.signed_off[competency] = business_date

    @property
    def evaluation_completed(self) -> bool:
        return any(e.stage is EvaluationStage.FINAL for e in self.evaluations)

    def issue_credential(
        self,
        *,
        actor: Actor,
        kind: CredentialKind | str,
        issuer: str,
        issued_on: date,
        expires_on: date | None = None,
        today: date,
        credential_id: str | None = None,
    ) -> str:
        """A credential attests an evaluated experience, so it needs a final evaluation."""
        self._require({PlacementStatus.ACTIVE, PlacementStatus.COMPLETED}, "issue a credential")
        if actor.role not in (*COORDINATING_ROLES, Role.SPONSOR):
            raise NotPermitted("Coordinators and sponsors issue credentials.",
                               code="coordinator-required")
        if actor.role is Role.SPONSOR:
            # A sponsor belongs to its own organisation (a JATC, an employer), not the
            # school's; which sponsor may act is the program's business, checked by the
            # service against the program (only its sponsor reaches this placement).
            if self.program_id is None:
                raise NotPermitted("A sponsor issues credentials for its apprenticeship "
                                   "placements only.", code="not-the-sponsor")
        else:
            self._require_same_organisation(actor)
        try:
            parsed_kind = CredentialKind(kind)
        except ValueError:
            options = ", ".join(k.value for k in CredentialKind)
            raise RuleViolated(f"{kind!r} is not a credential kind; use one of: {options}.",
                               code="unknown-credential-kind", field="kind") from None
        if not issuer.strip():
            raise RuleViolated("Name the issuer.", code="issuer-required", field="issuer")
        if expires_on is not None and expires_on <= issued_on:
            raise RuleViolated("The credential expires before it is issued.",
                               code="dates-reversed", field="expires_on")
        _not_in_future(issued_on, today, "issued_on")
        if not self.evaluation_completed:
            raise RuleViolated(
                "A credential needs a completed (final) evaluation of the placement first.",
                code="evaluation-required",
            )
        new_id = credential_id or str(uuid4())
        self._credentialed(actor_id=actor.id, actor_role=str(actor.role), business_date=issued_on,
                           credential_id=new_id, kind=parsed_kind.value, issuer=issuer.strip(),
                           expires_on=expires_on)
        return new_id

    @event("CredentialIssued")
    def _credentialed(self, *, actor_id: str, actor_role: str, business_date: date,
                      credential_id: str, kind: str, issuer: str,
                      expires_on: date | None) -> None:
        """A credential (an Open Badges 3.0 achievement type) was issued for the placement
        on ``business_date``, by the named issuer, valid until ``expires_on`` if set."""
        self.credentials.append(Credential(
            credential_id=credential_id, kind=CredentialKind(kind), issuer=issuer,
            issued_on=business_date, expires_on=expires_on,
        ))

    def credential(self, credential_id: str) -> Credential:
        for credential in self.credentials:
            if credential.credential_id == credential_id:
                return credential
        raise UnknownAggregate(f"No credential {credential_id} on this placement.",
                               code="unknown-credential", field="credential_id")

    def _require_credential_authority(self, actor: Actor) -> None:
        """Who may issue may also revoke and reissue: the organisation's coordinators, the
        program's sponsor (for an apprenticeship placement), admins."""
        if actor.role not in (*COORDINATING_ROLES, Role.SPONSOR):
            raise NotPermitted("Coordinators and sponsors revoke and reissue credentials.",
                               code="coordinator-required")
        if actor.role is Role.SPONSOR:
            if self.program_id is None:
                raise NotPermitted("A sponsor acts on credentials of its apprenticeship "
                                   "placements only.", code="not-the-sponsor")
        else:
            self._require_same_organisation(actor)

    def _credential_in_force(self, credential_id: str, verb: str) -> Credential:
        credential = self.credential(credential_id)
        if credential.revoked_on is not None:
            raise WrongState(f"Cannot {verb} credential {credential_id}: it was revoked on "
                             f"{credential.revoked_on}.", code="credential-revoked")
        if credential.replaced_by is not None:
            raise WrongState(f"Cannot {verb} credential {credential_id}: it was reissued as "
                             f"{credential.replaced_by}.", code="credential-reissued")
        return credential

    def revoke_credential(self, *, actor: Actor, credential_id: str, reason: str,
                          revoked_on: date, today: date) -> None:
        """Withdraw a credential issued in error or no longer deserved. Nothing is deleted:
        the revocation is a new fact with its reason, the credential's status entry turns
        to revoked, and every verifier checking its status from then on refuses it."""
        self._require_credential_authority(actor)
        credential = self._credential_in_force(credential_id, "revoke")
        reason = _reason(reason)
        _not_in_future(revoked_on, today, "revoked_on")
        if revoked_on < credential.issued_on:
            raise RuleViolated("A credential is revoked on or after the day it was issued.",
                               code="dates-reversed", field="revoked_on")
        self._credential_revoked(actor_id=actor.id, actor_role=str(actor.role),
                                 business_date=revoked_on, credential_id=credential_id,
                                 reason=reason)

    @event("CredentialRevoked")
    def _credential_revoked(self, *, actor_id: str, actor_role: str, business_date: date,
                            credential_id: str, reason: str) -> None:
        """A credential was revoked on ``business_date``, with the reason; it no longer
        verifies (its bit in the issuer's status list is set)."""
        self.credentials = [
            replace(c, revoked_on=business_date, revocation_reason=reason)
            if c.credential_id == credential_id else c for c in self.credentials]

    def reissue_credential(self, *, actor: Actor, credential_id: str, reason: str,
                           reissued_on: date, today: date, expires_on: date | None = None,
                           new_credential_id: str | None = None) -> str:
        """Replace a credential in force by a new one of the same kind and issuer (a
        corrected name, a new expiry): the old one stops verifying, the new one has its own
        id and status entry. Returns the new credential's id."""
        self._require({PlacementStatus.ACTIVE, PlacementStatus.COMPLETED},
                      "reissue a credential")
        self._require_credential_authority(actor)
        old = self._credential_in_force(credential_id, "reissue")
        reason = _reason(reason)
        _not_in_future(reissued_on, today, "reissued_on")
        if reissued_on < old.issued_on:
            raise RuleViolated("A credential is reissued on or after the day it was issued.",
                               code="dates-reversed", field="reissued_on")
        until = expires_on if expires_on is not None else old.expires_on
        if until is not None and until <= reissued_on:
            raise RuleViolated("The reissued credential expires before it is issued.",
                               code="dates-reversed", field="expires_on")
        new_id = new_credential_id or str(uuid4())
        self._credential_reissued(actor_id=actor.id, actor_role=str(actor.role),
                                  business_date=reissued_on, credential_id=credential_id,
                                  new_credential_id=new_id, kind=old.kind.value,
                                  issuer=old.issuer, expires_on=until, reason=reason)
        return new_id

    @event("CredentialReissued")
    def _credential_reissued(self, *, actor_id: str, actor_role: str, business_date: date,
                             credential_id: str, new_credential_id: str, kind: str, issuer: str,
                             expires_on: date | None, reason: str) -> None:
        """A credential was replaced by ``new_credential_id`` (same kind and issuer), issued
        on ``business_date``, with the reason; the old one no longer verifies."""
        self.credentials = [
            replace(c, replaced_by=new_credential_id) if c.credential_id == credential_id
            else c for c in self.credentials]
        self.credentials.append(Credential(
            credential_id=new_credential_id, kind=CredentialKind(kind), issuer=issuer,
            issued_on=business_date, expires_on=expires_on))

    # -- status changes ---------------------------------------------------------------

    def suspend(self, *, actor: Actor, reason: str, suspended_on: date, today: date) -> None:
        self._require({PlacementStatus.ACTIVE}, "suspend")
        _require_coordinator(actor, self.organisation_id)
        reason = _reason(reason)
        _not_in_future(suspended_on, today, "suspended_on")
        self._suspended(actor_id=actor.id, actor_role=str(actor.role),
                        business_date=suspended_on, reason=reason)

    @event("PlacementSuspended")
    def _suspended(self, *, actor_id: str, actor_role: str, business_date: date,
                   reason: str) -> None:
        """The placement was paused, with the reason (29 CFR 29.7: sponsors record
        suspensions); no hours are logged until it is reinstated."""
        self.status = PlacementStatus.SUSPENDED
        self.status_reason = reason

    def reinstate(self, *, actor: Actor, reason: str, reinstated_on: date, today: date) -> None:
        self._require({PlacementStatus.SUSPENDED}, "reinstate")
        _require_coordinator(actor, self.organisation_id)
        reason = _reason(reason)
        _not_in_future(reinstated_on, today, "reinstated_on")
        self._reinstated(actor_id=actor.id, actor_role=str(actor.role),
                         business_date=reinstated_on, reason=reason)

    @event("PlacementReinstated")
    def _reinstated(self, *, actor_id: str, actor_role: str, business_date: date,
                    reason: str) -> None:
        """A suspended placement resumed, with the reason."""
        self.status = PlacementStatus.ACTIVE
        self.status_reason = reason

    def withdraw(self, *, actor: Actor, reason: str, during_probation: bool,
                 withdrawn_on: date, today: date) -> None:
        """The learner leaves before completing; the coordinator or the learner records it."""
        self._require({PlacementStatus.MATCHED, PlacementStatus.ACTIVE,
                       PlacementStatus.SUSPENDED}, "withdraw")
        if actor.id != self.learner_id:
            _require_coordinator(actor, self.organisation_id)
        reason = _reason(reason)
        _not_in_future(withdrawn_on, today, "withdrawn_on")
        self._withdrawn(actor_id=actor.id, actor_role=str(actor.role),
                        business_date=withdrawn_on, reason=reason,
                        during_probation=during_probation)

    @event("PlacementWithdrawn")
    def _withdrawn(self, *, actor_id: str, actor_role: str, business_date: date, reason: str,
                   during_probation: bool) -> None:
        """The learner left before completing, with the reason and whether it was during the
        probationary period (29 CFR 29.5(b)(8): cancellation during probation is not held
        against the sponsor's completion rate)."""
        self.status = PlacementStatus.WITHDRAWN
        self.status_reason = reason
        self.withdrawn_during_probation = during_probation

    def complete(self, *, actor: Actor, completed_on: date, today: date) -> None:
        """An apprenticeship completes only when its requirement is met (29 CFR 29.5(b)(2)):
        time-based on approved hours, competency-based on every competency signed off,
        hybrid on both."""
        self._require({PlacementStatus.ACTIVE}, "complete")
        if actor.role is not Role.SPONSOR:
            _require_coordinator(actor, self.organisation_id)
        _not_in_future(completed_on, today, "completed_on")
        if self.approach in (Approach.COMPETENCY_BASED, Approach.HYBRID):
            missing = [c for c in self.competencies if c not in self.signed_off]
            if missing:
                raise RuleViolated(
                    f"Competencies not yet signed off: {', '.join(missing)}.",
                    code="competencies-incomplete",
                )
        if self.approach in (Approach.TIME_BASED, Approach.HYBRID):
            pending = [e.entry_id for e in self.entries.values()
                       if e.status is EntryStatus.LOGGED and e.pending_over is not None]
            if pending:
                raise WrongState(
                    f"A correction of approved hours awaits the supervisor ({pending[0]}); "
                    "the total is not final until it is approved or rejected.",
                    code="correction-pending")
            counted = self.ojl_minutes_toward_requirement
            if counted < self.ojl_minutes_required:
                raise RuleViolated(
                    f"{counted} approved or credited on-the-job minutes; the program requires "
                    f"{self.ojl_minutes_required}.", code="approved-hours-short",
                )
        self._completed(actor_id=actor.id, actor_role=str(actor.role),
                        business_date=completed_on)

    @event("PlacementCompleted")
    def _completed(self, *, actor_id: str, actor_role: str, business_date: date) -> None:
        """The placement was completed; for an apprenticeship, its requirement was met."""
        self.status = PlacementStatus.COMPLETED
        self.completed_on = business_date

    # -- prior learning ---------------------------------------------------------------

    def grant_prior_learning_credit(
        self,
        *,
        actor: Actor,
        minutes: int,
        basis: CreditBasis | str,
        work_process: str | None = None,
        source_placement_id: str | None = None,
        granted_on: date,
        today: date,
    ) -> None:
        """Credit on-the-job hours learned elsewhere toward the apprenticeship
        (29 CFR 29.5(b)(12)). Credit from a pre-apprenticeship is allowed only when the
        program says such hours count; the service checks the source placement."""
        self._require({PlacementStatus.MATCHED, PlacementStatus.ACTIVE,
                       PlacementStatus.SUSPENDED}, "credit prior learning")
        if actor.role not in (Role.SPONSOR, *COORDINATING_ROLES):
            raise NotPermitted("Sponsors and coordinators grant credit for prior learning.",
                               code="sponsor-required")
        if self.wbl_type is not WBLType.APPRENTICESHIP:
            raise RuleViolated("Prior-learning credit applies to apprenticeships only.",
                               code="not-an-apprenticeship")
        try:
            parsed_basis = CreditBasis(basis)
        except ValueError:
            raise RuleViolated(f"{basis!r} is not a basis for credit.",
                               code="unknown-credit-basis", field="basis") from None
        if parsed_basis is CreditBasis.PRE_APPRENTICESHIP:
            if not self.pre_apprenticeship_hours_count:
                raise RuleViolated(
                    "This program does not count hours from a pre-apprenticeship.",
                    code="pre-apprenticeship-credit-not-allowed", field="basis",
                )
            if source_placement_id is None:
                raise RuleViolated("Name the pre-apprenticeship placement credited.",
                                   code="source-required", field="source_placement_id")
            if any(c.source_placement_id == source_placement_id for c in self.credits):
                raise WrongState("Hours of that placement were already credited.",
                                 code="already-credited", field="source_placement_id")
        if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes <= 0:
            raise RuleViolated("Credit is a whole number of minutes above zero.",
                               code="credit-not-positive", field="minutes")
        if work_process is not None and work_process not in self.work_processes:
            raise RuleViolated(f"{work_process!r} is not a work process of this program.",
                               code="unknown-work-process", field="work_process")
        credited = sum(c.minutes for c in self.credits)
        if self.ojl_minutes_required and credited + minutes > self.ojl_minutes_required:
            raise RuleViolated(
                f"Credit would total {credited + minutes} minutes, more than the "
                f"{self.ojl_minutes_required} the program requires.",
                code="credit-exceeds-requirement", field="minutes",
            )
        _not_in_future(granted_on, today, "granted_on")
        self._credit_granted(actor_id=actor.id, actor_role=str(actor.role),
                             business_date=granted_on, minutes=minutes, basis=parsed_basis.value,
                             work_process=work_process, source_placement_id=source_placement_id)

    def credit_pre_apprenticeship(self, *, actor: Actor, source: Placement, granted_on: date,
                                  today: date) -> int:
        """Count the approved on-the-job minutes of the learner's completed pre-apprenticeship
        toward this apprenticeship, up to what the requirement still lacks; return them.

        Pre-apprenticeships exist to lead into registered apprenticeships, and a program may
        say their hours count (the program's ``pre_apprenticeship_hours_count``).
        """
        if not source.pre_apprenticeship:
            raise RuleViolated("That placement is not a pre-apprenticeship.",
                               code="not-a-pre-apprenticeship", field="source_placement_id")
        if source.learner_id != self.learner_id:
            raise RuleViolated("That pre-apprenticeship was another learner's.",
                               code="different-learner", field="source_placement_id")
        if source.status is not PlacementStatus.COMPLETED:
            raise RuleViolated("Only a completed pre-apprenticeship's hours are credited.",
                               code="source-not-completed", field="source_placement_id")
        minutes = source.approved_minutes(HourKind.ON_THE_JOB)
        if self.ojl_minutes_required:
            minutes = min(minutes, self.ojl_minutes_required - self.credited_minutes)
        self.grant_prior_learning_credit(
            actor=actor, minutes=minutes, basis=CreditBasis.PRE_APPRENTICESHIP,
            source_placement_id=str(source.id), granted_on=granted_on, today=today,
        )
        return minutes

    @event("PriorLearningCreditGranted")
    def _credit_granted(self, *, actor_id: str, actor_role: str, business_date: date,
                        minutes: int, basis: str, work_process: str | None,
                        source_placement_id: str | None) -> None:
        """On-the-job minutes learned elsewhere (prior experience, prior training, or a linked
        pre-apprenticeship named by ``source_placement_id``) were credited toward the
        apprenticeship's requirement."""
        self.credits.append(Credit(minutes=minutes, basis=CreditBasis(basis),
                                   work_process=work_process,
                                   source_placement_id=source_placement_id,
                                   granted_on=business_date))

    # -- totals -----------------------------------------------------------------------

    def approved_minutes(self, kind: HourKind | None = None) -> int:
        """Minutes of entries approved and not superseded (a superseded entry is no longer
        approved), optionally of one kind."""
        return sum(
            e.minutes for e in self.entries.values()
            if e.status is EntryStatus.APPROVED and (kind is None or e.kind is kind)
        )

    def approved_minutes_by_work_process(self) -> dict[str, int]:
        totals = dict.fromkeys(self.work_processes, 0)
        for e in self.entries.values():
            if e.status is EntryStatus.APPROVED:
                for work_process, minutes in e.allocations.items():
                    totals[work_process] = totals.get(work_process, 0) + minutes
        return totals

    @property
    def credited_minutes(self) -> int:
        return sum(c.minutes for c in self.credits)

    @property
    def ojl_minutes_toward_requirement(self) -> int:
        return self.approved_minutes(HourKind.ON_THE_JOB) + self.credited_minutes

    def active_minutes_on(self, work_date: date) -> int:
        return sum(e.minutes for e in self.entries.values()
                   if e.active and e.work_date == work_date)

    # -- helpers ----------------------------------------------------------------------

    def _change_entry(self, entry_id: str, **changes: Any) -> HourEntry:
        """Put a changed entry in place of ``entry_id``'s: entries are immutable and may be
        shared with other copies of this placement (``__deepcopy__``); only the mapping
        ``entries`` is this copy's own. Called from the ``@event`` methods only."""
        changed = replace(self.entries[entry_id], **changes)
        self.entries[entry_id] = changed
        return changed

    def __deepcopy__(self, memo: dict[int, Any]) -> Placement:
        """The copy a command works on (the repository copies the cached placement for each
        command, so that a refused one leaves the cache untouched): everything deep-copied
        as ``copy.deepcopy`` would, except the hour entries, which are immutable and shared;
        the ``entries`` mapping itself is the copy's own. A placement's cost to copy no
        longer grows with its history (decision 064)."""
        copied = object.__new__(type(self))
        memo[id(self)] = copied
        for name, value in self.__dict__.items():
            copied.__dict__[name] = dict(value) if name == "entries" else deepcopy(value, memo)
        return copied

    def _require(self, allowed: set[PlacementStatus], action: str) -> None:
        if self.status not in allowed:
            raise WrongState(
                f"Cannot {action}: the placement is {self.status.value}.",
                code=_STATE_CODES[self.status],
            )

    def _require_party(self, actor: Actor, *, sponsor_too: bool = False) -> None:
        if actor.id in (self.learner_id, self.supervisor_id):
            return
        if sponsor_too and actor.role is Role.SPONSOR:
            return
        if actor.role in COORDINATING_ROLES:
            self._require_same_organisation(actor)
            return
        raise NotPermitted("Only the learner, the supervisor or a coordinator of the "
                           "organisation act on this placement.", code="not-a-party")

    def _require_coordinator_or_supervisor(self, actor: Actor) -> None:
        if actor.id != self.supervisor_id:
            _require_coordinator(actor, self.organisation_id)

    def _require_same_organisation(self, actor: Actor) -> None:
        if actor.organisation_id is not None and actor.organisation_id != self.organisation_id:
            raise NotPermitted("The placement belongs to another organisation.",
                               code="other-organisation")

    def entry(self, entry_id: str) -> HourEntry:
        try:
            return self.entries[entry_id]
        except KeyError:
            raise UnknownAggregate(f"No hour entry {entry_id} on this placement.",
                                   code="unknown-entry", field="entry_id") from None

    def _pending_entry_for_review(self, actor: Actor, entry_id: str, verb: str) -> HourEntry:
        """Separation of duties: nobody reviews hours they logged or worked, and only the
        supervisor the coordinator named (or the proxy approver a coordinator named in their
        place) reviews a placement's hours."""
        self._require({PlacementStatus.ACTIVE, PlacementStatus.SUSPENDED}, f"{verb} hours")
        entry = self.entry(entry_id)
        if actor.id in (self.learner_id, entry.logged_by):
            raise NotPermitted(f"You cannot {verb} hours you logged or worked yourself.",
                               code="own-hours")
        if actor.id not in self.approvers:
            raise NotPermitted(f"Only this placement's supervisor (or the proxy approver a "
                               f"coordinator named) may {verb} its hours.",
                               code="not-supervisor")
        if entry.status is not EntryStatus.LOGGED:
            raise WrongState(f"Entry {entry_id} is {entry.status.value}, not awaiting review.",
                             code="entry-not-pending", field="entry_id")
        return entry

    def _new_entry(
        self,
        *,
        actor: Actor,
        work_date: date,
        minutes: int,
        kind: HourKind | str,
        start_time: str | None,
        end_time: str | None,
        allocations: Mapping[str, int] | None,
        school_day: bool,
        school_week: bool | None,
        today: date,
        entry_id: str | None,
        replacing: tuple[HourEntry, ...],
    ) -> HourEntry:
        parsed_kind = parse_kind(kind)
        start = parse_clock(start_time, "start_time")
        end = parse_clock(end_time, "end_time")
        allocated = dict(allocations or {})
        check_entry_shape(minutes=minutes, kind=parsed_kind, start_time=start, end_time=end,
                          allocations=allocated, work_processes=frozenset(self.work_processes))
        assert self.started_on is not None
        if work_date > today:
            raise RuleViolated(f"{work_date} is in the future; log hours once worked.",
                               code="in-future", field="work_date")
        if work_date < self.started_on:
            raise RuleViolated(f"{work_date} is before the placement started "
                               f"({self.started_on}).", code="before-start", field="work_date")
        if work_date > self.ends_on:
            raise RuleViolated(f"{work_date} is after the placement ends ({self.ends_on}).",
                               code="after-end", field="work_date")
        new_id = entry_id or str(uuid4())
        if new_id in self.entries:
            raise WrongState(f"Entry {new_id} already exists.", code="duplicate-entry-id",
                             field="entry_id")
        entry = HourEntry(
            entry_id=new_id, work_date=work_date, minutes=minutes, kind=parsed_kind,
            start_time=start, end_time=end, allocations=allocated, logged_by=actor.id,
            school_day=school_day,
            school_week=school_day if school_week is None else school_week,
        )
        for other in self.entries.values():
            if other.active and other not in replacing and overlaps(entry, other):
                raise RuleViolated(
                    f"This entry overlaps entry {other.entry_id} on {work_date}.",
                    code="overlapping-entry", field="start_time",
                )
        return entry

    def child_labour_applies(self, work_date: date, kind: HourKind | str,
                             learner_born_on: date | None) -> bool:
        """Whether 29 CFR 570.35 binds an entry: on-the-job minutes of a learner still
        under 16 on the work date (an unknown minor's birth date is refused later)."""
        return (self.minor and learner_born_on is not None and kind == HourKind.ON_THE_JOB
                and child_labour.limits_apply(birthday(learner_born_on, 16), work_date))

    def _child_labour_flags(self, entry: HourEntry, policy: ChildLabourPolicy,
                            learner_born_on: date | None, replacing: tuple[HourEntry, ...],
                            learner_week: LearnerWeek | None, calendar_missing: bool
                            ) -> list[str]:
        """Apply 29 CFR 570.35 to on-the-job minutes of a learner under 16 on the work date,
        counting the learner's minutes in every placement: this one's entries, plus the
        other placements' from ``learner_week`` (the ledger always passes it)."""
        if entry.kind is not HourKind.ON_THE_JOB or not self.minor:
            return []
        if learner_born_on is None:
            raise RuleViolated(
                "The learner is a minor and their birth date is not on record (never given, "
                "or erased): their hours cannot be checked against the child-labour rules.",
                code="birth-date-unknown", field="work_date")
        if not child_labour.limits_apply(birthday(learner_born_on, 16), entry.work_date):
            return []
        monday, sunday = child_labour.week_of(entry.work_date)
        others = [e for e in self.entries.values()
                  if e.active and e not in replacing and e.kind is HourKind.ON_THE_JOB]
        own_id = str(self.id)
        elsewhere_day = 0 if learner_week is None else learner_week.minutes(
            on=entry.work_date, other_than_placement=own_id)
        elsewhere_week = 0 if learner_week is None else learner_week.minutes(
            other_than_placement=own_id)
        wecep = self.work_experience_agreement_on is not None
        found = child_labour.breaches(
            work_date=entry.work_date, minutes=entry.minutes, start_time=entry.start_time,
            end_time=entry.end_time, school_day=entry.school_day, school_week=entry.school_week,
            other_minutes_that_day=elsewhere_day + sum(
                e.minutes for e in others if e.work_date == entry.work_date),
            other_minutes_that_week=elsewhere_week + sum(
                e.minutes for e in others if monday <= e.work_date <= sunday),
            school_week_limit=(child_labour.WECEP_SCHOOL_WEEK_LIMIT if wecep
                               else child_labour.SCHOOL_WEEK_LIMIT),
        )
        if found and policy is ChildLabourPolicy.REFUSE:
            raise RuleViolated(
                "The learner is under 16 on that day (FLSA, 29 CFR 570.35): "
                + " ".join(b.detail for b in found),
                code=found[0].code, field="minutes",
            )
        flags = [b.code for b in found]
        return [*flags, "calendar-missing"] if calendar_missing else flags


def _require_coordinator(actor: Actor, organisation_id: str) -> None:
    if actor.role not in COORDINATING_ROLES:
        raise NotPermitted("Only a work-based-learning coordinator may do this.",
                           code="coordinator-required")
    if actor.organisation_id is not None and actor.organisation_id != organisation_id:
        raise NotPermitted("The record belongs to another organisation.",
                           code="other-organisation")


def _reason(reason: str) -> str:
    if not reason or not reason.strip():
        raise RuleViolated("Say why: a correction or status change carries a reason.",
                           code="reason-required", field="reason")
    return reason.strip()


def _link_id(link_id: str | None) -> str | None:
    if link_id is not None and not (0 < len(link_id) <= 64 and link_id.strip() == link_id):
        raise RuleViolated("An approval link's id is 1 to 64 characters.",
                           code="link-id-invalid", field="link_id")
    return link_id


def _not_in_future(day: date, today: date, field: str) -> None:
    if day > today:
        raise RuleViolated(f"{day} is in the future.", code="in-future", field=field)


def summary(placement: Placement) -> dict[str, Any]:
    """The placement's current state as plain values, for the service layer."""
    return {
        "id": str(placement.id),
        "version": placement.version,
        "organisation_id": placement.organisation_id,
        "opportunity_id": placement.opportunity_id,
        "learner_id": placement.learner_id,
        "supervisor_id": placement.supervisor_id,
        "status": placement.status.value,
        "program_id": placement.program_id,
        "approved_minutes": placement.approved_minutes(),
        "approved_on_the_job_minutes": placement.approved_minutes(HourKind.ON_THE_JOB),
        "approved_related_instruction_minutes": placement.approved_minutes(
            HourKind.RELATED_INSTRUCTION
        ),
        "credited_minutes": placement.credited_minutes,
        "ojl_minutes_required": placement.ojl_minutes_required,
        "competencies_signed_off": sorted(placement.signed_off),
    }


__all__ = [
    "COORDINATING_ROLES",
    "RUBRIC_MAX",
    "RUBRIC_MIN",
    "AgreementParty",
    "Credential",
    "CredentialKind",
    "Credit",
    "CreditBasis",
    "Evaluation",
    "EvaluationStage",
    "EvaluatorRole",
    "Placement",
    "PlacementStatus",
    "age_on",
    "birthday",
    "summary",
]
