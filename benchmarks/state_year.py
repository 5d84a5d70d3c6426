"""A state-year of work-based learning, generated: the history the state-scale benchmarks
replay, import beside, report over and serve (issue 18; decision 058).

    python -m benchmarks.state_year --events 1000000 [--seed 2026] [--summary]

**What it makes.** One state agency; districts (one per ~150 placements, at most 1,000), each
with three schools; employers and apprenticeship sponsors, all as ``OrganisationRegistered``
events in the hierarchy the state report rolls up (a few schools renamed or moved to another
district during the year, as the ledger records them); each sponsor's registered programs
(``ApprenticeshipProgramDefined``, time-based, competency-based or hybrid, with work
processes and competencies); schools' opportunities (posted, closed when full); and learners
(16-19, a quarter of them minors at the start, who need a guardian's signature), each with a
profile in the personal-data vault carrying the groups state reports disaggregate by (sex,
race/ethnicity, economically disadvantaged, disability, English learner, CTE concentrator,
graduation). Placements follow the continuum, each with its own lifecycle:

- job shadowing, 20%: 1-3 days logged, evaluated, completed;
- paid / unpaid internship, 25%: 6-14 weekly entries, interim and final evaluation,
  Fieldwork badge;
- cooperative education, 15%: 8-16 weekly entries, final evaluation, credential;
- service learning, 5%: 2-5 entries, completed;
- pre-apprenticeship, 10%: 8-14 weekly entries, most on a program's work processes;
- registered apprenticeship, 25%: 10-24 weekly entries (on-the-job allocated to work
  processes, related instruction), prior-learning credit, competency sign-offs, suspensions
  and reinstatements, an ApprenticeshipCertificate for the few that finish within the year.

Every entry is approved (about 80%), rejected (8%) or left pending; one in eight is
corrected (a correction of an approved entry waits for approval, decision 045), and some
placements are withdrawn (in probation or later). Each logged entry also opens and claims the
learner's day (``LearnerDayOpened``, ``DayMinutesClaimed``; rejections and corrections
release it), as ``Ledger.log_hours`` stores them. The events come out in business-date order
(a heap of placements' timelines, so the positions interleave as concurrent commands do), each
recorded a little after it happened. A placement makes about 41 events: some 24 of its own
(the issue's "about 30" counts these) and 17 learner-day events beside them.

**Envelopes, not commands (why).** The generator writes the published form of each event
(``domain.contract.envelope.Envelope``, as ``tests/unit/projections/history.py`` does) rather
than calling the ledger's commands in-process. Commands check every rule but run at about
2,000 a second on this machine (a state-year of 15 M events would take over two hours to
write, a 5 M history 45 minutes, before anything is measured); envelopes come out at about
39,000 a second (stored and published too: about 3,400 on the loaded machine). What keeps
them honest: each body is built field for field as
``docs/events.md`` lists it at the current version, and ``write_store`` turns every envelope
into the domain's own event class (the class's constructor refuses a missing or extra field)
and stores it through the ``eventsourcing`` mapper and recorder, so the store holds exactly
what commands would have stored and the relay, the state report and ``GET /placements/{id}``
read it as theirs; ``tests/unit/test_state_year.py`` checks a sample against the published
JSON Schemas, reads it back from the store as the relay publishes it (the same bodies), loads
stored placements through the ``Placement`` aggregate, and folds it with every projection.
What it does not do: run the rules that need the ledger's other aggregates at command time
(school calendars, minors' weekly limits: learners are 16 or older, so no ``LearnerWeek``
events).

Memory: the generator holds the active placements' timelines and the last weeks of learner
days (days older than 60 days are dropped, as no entry is corrected that late), so it stays
well under 1 GB up to a 5 M-event year.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import random
import sys
import time
import typing
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from types import UnionType
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic
from sqlalchemy import insert

from domain.contract.catalogue import AGGREGATES
from domain.contract.envelope import Envelope
from domain.learner import LearnerProfile, RaceEthnicity, Sex
from domain.learner_day import LearnerDay
from domain.organisation import Organisation
from domain.placement.values import birthday
from infra import personal_data
from infra.personal_data import PersonalDataVault

YEAR_STARTS = date(2025, 8, 18)
YEAR_ENDS = date(2026, 6, 26)
MEAN_EVENTS_PER_PLACEMENT = 41.0
"""Measured mean of the mix below (``--summary`` prints it); sizes a run from its events."""

STATE = "state-agency"
ADMIN = {"actor_id": "admin-state", "actor_role": "admin"}
WORK_PROCESSES = {
    "electrical": {"Safety and codes": 500, "Residential wiring": 2000, "Commercial wiring": 2500,
                   "Motors and controls": 1000, "Blueprints": 500, "Troubleshooting": 1500},
    "machinist": {"Safety and tools": 500, "Machine setup": 1000, "CNC programming": 1500,
                  "Quality control": 500, "Blueprints": 500},
    "medical": {"Patient care": 1000, "Clinical procedures": 800, "Records": 200},
    "it": {"Help desk": 600, "Networking": 800, "Security": 600},
}
COMPETENCIES = {
    "electrical": ["conduit-bending", "panel-install", "code-compliance", "motor-control"],
    "machinist": ["blueprints", "cnc-setup", "inspection", "tool-offsets"],
    "medical": ["vitals", "charting", "infection-control"],
    "it": ["ticket-triage", "network-config", "incident-response"],
}
OCCUPATIONS = {"electrical": ("0159", "47-2111.00"), "machinist": ("0296CB", "51-4011.00"),
               "medical": ("1034", "31-9092.00"), "it": ("2040", "15-1232.00")}
PATHWAYS = ["Manufacturing", "Health Science", "Information Technology", "Construction",
            "Business", "Hospitality", "Agriculture"]
KINDS: list[tuple[str, float]] = [
    ("JobShadowing", 0.20), ("PaidInternship", 0.17), ("UnpaidInternship", 0.08),
    ("CooperativeEducation", 0.15), ("ServiceLearning", 0.05), ("pre-apprenticeship", 0.10),
    ("Apprenticeship", 0.25),
]
RACES = [RaceEthnicity.WHITE, RaceEthnicity.HISPANIC_OR_LATINO,
         RaceEthnicity.BLACK_OR_AFRICAN_AMERICAN, RaceEthnicity.ASIAN,
         RaceEthnicity.TWO_OR_MORE_RACES, RaceEthnicity.AMERICAN_INDIAN_OR_ALASKA_NATIVE,
         RaceEthnicity.NATIVE_HAWAIIAN_OR_OTHER_PACIFIC_ISLANDER]
RACE_WEIGHTS = [0.47, 0.27, 0.14, 0.05, 0.04, 0.02, 0.01]
EVENT_CLASSES: dict[str, type] = {
    name: value for aggregate in AGGREGATES for name, value in vars(aggregate).items()
    if isinstance(value, type) and name not in ("Event", "Created")}
CREATED_TOPICS: dict[str, str] = {
    name: get_topic(aggregate) for aggregate in AGGREGATES
    for name, value in vars(aggregate).items()
    if isinstance(value, type) and name != "Created" and issubclass(value, Aggregate.Created)}


def _actor(role: str, ident: str) -> dict[str, str]:
    return {"actor_id": ident, "actor_role": role}


@dataclass(frozen=True)
class Scale:
    """How many of each thing a history of ``events`` events holds."""

    events: int
    placements: int
    districts: int
    schools: int
    employers: int
    sponsors: int
    learners: int

    @classmethod
    def for_events(cls, events: int) -> Scale:
        placements = max(int(events / MEAN_EVENTS_PER_PLACEMENT) + 1, 10)
        districts = max(min(placements // 150, 1000), 2)
        return cls(events=events, placements=placements, districts=districts,
                   schools=districts * 3, employers=max(placements // 25, 5),
                   sponsors=max(min(placements // 400, 600), 2),
                   learners=max(int(placements / 1.3), 5))


@dataclass
class _Learner:
    id: str
    school: str
    born_on: date


@dataclass
class _Opportunity:
    id: str
    school: str
    kind: str
    wbl_type: str
    pre_apprenticeship: bool
    employer: str
    employer_name: str
    starts_on: date
    ends_on: date
    capacity: int
    matched: int = 0


Step = tuple[date, str, str, str, dict[str, Any]]
"""(business date, aggregate type, aggregate id, event type, body)."""


@dataclass
class _Program:
    id: str
    trade: str
    approach: str
    sponsor: str
    ojl_hours: int


@dataclass
class StateYear:
    """The generator: ``envelopes()`` streams the history in store order (positions from 1),
    ``profiles()`` the learners' vault profiles. The same seed gives the same history."""

    events: int
    seed: int = 2026
    scale: Scale = field(init=False)
    counts: Counter[str] = field(default_factory=Counter, init=False)

    def __post_init__(self) -> None:
        self.scale = Scale.for_events(self.events)
        rng = random.Random(self.seed)
        self._rng = rng
        s = self.scale
        self.districts = [f"district-{n:04d}" for n in range(s.districts)]
        self.schools = [f"school-{n:05d}" for n in range(s.schools)]
        self.employers = [f"employer-{n:05d}" for n in range(s.employers)]
        self.sponsors = [f"sponsor-{n:04d}" for n in range(s.sponsors)]
        self.learners = [
            _Learner(self._uuid(), self.schools[rng.randrange(s.schools)],
                     YEAR_STARTS - timedelta(days=rng.randint(16 * 365 + 4, 19 * 365)))
            for _ in range(s.learners)]
        self._day_dates: dict[str, str] = {}
        self._opened: set[str] = set()
        self.programs: list[_Program] = []
        for sponsor in self.sponsors:
            for _ in range(rng.randint(1, 3)):
                trade = rng.choice(sorted(WORK_PROCESSES))
                self.programs.append(_Program(
                    self._uuid(), trade, rng.choice(["time_based", "time_based", "hybrid",
                                                     "competency_based"]),
                    sponsor, sum(WORK_PROCESSES[trade].values())))

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    # -- the vault ------------------------------------------------------------------

    def profiles(self) -> Iterator[tuple[str, LearnerProfile]]:
        rng = random.Random(self.seed + 1)
        for n, learner in enumerate(self.learners):
            yield learner.id, LearnerProfile(
                organisation_id=learner.school, given_name=f"Learner{n}",
                family_name=f"Family{n % 997}", born_on=learner.born_on,
                student_number=f"S{n:08d}",
                sex=rng.choices([Sex.FEMALE, Sex.MALE, Sex.NOT_REPORTED], [0.49, 0.49, 0.02])[0],
                race_ethnicity=rng.choices(RACES, RACE_WEIGHTS)[0],
                economically_disadvantaged=rng.random() < 0.42,
                disability=rng.random() < 0.14, english_learner=rng.random() < 0.10,
                cte_concentrator=rng.random() < 0.55,
                graduated_on=date(2026, 6, 5) if learner.born_on < date(2008, 9, 1) else None,
                other_groups={"homeless": "yes" if rng.random() < 0.03 else "no"})

    # -- the events -------------------------------------------------------------------

    def envelopes(self) -> Iterator[Envelope]:
        """Exactly ``events`` envelopes (a history cut off mid-year leaves placements open,
        as a cut-off does)."""
        for emitted, envelope in enumerate(self._all()):
            if emitted >= self.events:
                return
            self.counts[envelope.event_type] += 1
            yield envelope

    def _all(self) -> Iterator[Envelope]:
        rng = self._rng
        versions: dict[str, int] = {}
        position = 0
        recorded = datetime.combine(YEAR_STARTS - timedelta(days=30), clock(8), UTC)

        def emit(day: date, aggregate_type: str, aggregate_id: str, event_type: str,
                 data: dict[str, Any]) -> Envelope:
            nonlocal position, recorded
            position += 1
            version = versions.get(aggregate_id, 0) + 1
            versions[aggregate_id] = version
            # recorded the evening of the business day, or just after the previous event
            recorded = max(recorded + timedelta(milliseconds=3),
                           datetime.combine(day, clock(17), UTC))
            cls = EVENT_CLASSES[event_type]
            return Envelope(
                event_id=f"{aggregate_id}/{version}", event_type=event_type,
                aggregate_type=aggregate_type, aggregate_id=aggregate_id,
                aggregate_version=version, position=position,
                schema_version=int(getattr(cls, "class_version", 1)),
                recorded_at=recorded, data={"business_date": day.isoformat(), **data})

        before = YEAR_STARTS - timedelta(days=20)
        for step in self._organisations(before):
            yield emit(*step)
        for program in self.programs:
            yield emit(*self._program(program, before))
        placements = self.scale.placements
        # placements start through the year, most in the autumn and after the new year
        starts = sorted(YEAR_STARTS + timedelta(days=int(rng.betavariate(1.3, 2.2) * 280))
                        for _ in range(placements))
        heap: list[tuple[date, int, int, list[Step]]] = []
        opportunities: dict[tuple[str, str], _Opportunity] = {}
        sequence = 0
        next_placement = 0
        renames = self._hierarchy_changes(rng)
        pruned_to = YEAR_STARTS
        while next_placement < placements or heap:
            today = heap[0][0] if heap else starts[next_placement]
            while next_placement < placements and starts[next_placement] <= today:
                begin = starts[next_placement]
                next_placement += 1
                opportunity, posted = self._opportunity_for(rng, opportunities, begin)
                for step in posted:
                    yield emit(*step)
                story = self._placement(rng, opportunity, begin)
                sequence += 1
                heapq.heappush(heap, (story[0][0], sequence, 0, story))
                today = min(today, story[0][0])
            while renames and renames[0][0] <= today:
                yield emit(*renames.pop(0))
            if not heap:
                continue
            day, seq, index, story = heapq.heappop(heap)
            yield emit(*story[index])
            if index + 1 < len(story):
                heapq.heappush(heap, (story[index + 1][0], seq, index + 1, story))
            if day - pruned_to > timedelta(days=90):  # learner days no longer touched
                cutoff = f"{(day - timedelta(days=60)).isoformat()}"
                for key in [k for k in self._day_dates if self._day_dates[k] < cutoff]:
                    versions.pop(key, None)
                    del self._day_dates[key]
                    self._opened.discard(key)
                pruned_to = day
        for step in renames:
            yield emit(*step)

    def _organisations(self, day: date) -> Iterator[Step]:
        def register(org_id: str, name: str, kind: str, parent: str | None) -> Step:
            return (day, "Organisation", str(Organisation.create_id(org_id)),
                    "OrganisationRegistered", {**ADMIN, "organisation_id": org_id,
                                               "name": name, "kind": kind,
                                               "parent_id": parent})

        yield register(STATE, "State Department of Education", "state_agency", None)
        for n, district in enumerate(self.districts):
            yield register(district, f"District {n}", "district", STATE)
        for n, school in enumerate(self.schools):
            yield register(school, f"School {n}", "school", self.districts[n // 3])
        for n, employer in enumerate(self.employers):
            yield register(employer, f"Employer {n}", "employer", None)
        for n, sponsor in enumerate(self.sponsors):
            yield register(sponsor, f"Sponsor {n}", "sponsor", STATE)

    def _hierarchy_changes(self, rng: random.Random) -> list[Step]:
        """A few schools renamed, a few moved to another district, through the year."""
        changes: list[Step] = []
        for school in rng.sample(self.schools, max(len(self.schools) // 100, 1)):
            day = YEAR_STARTS + timedelta(days=rng.randint(10, 250))
            aggregate = str(Organisation.create_id(school))
            if rng.random() < 0.5:
                changes.append((day, "Organisation", aggregate, "OrganisationRenamed",
                                {**ADMIN, "name": f"{school} (renamed)"}))
            else:
                old = self.districts[self.schools.index(school) // 3]
                new = rng.choice(self.districts)
                if new != old:
                    changes.append((day, "Organisation", aggregate, "OrganisationMoved",
                                    {**ADMIN, "parent_id": new, "previous_parent_id": old,
                                     "reason": "District boundary change"}))
        return sorted(changes, key=lambda c: c[0])

    def _program(self, program: _Program, day: date) -> Step:
        rapids, onet = OCCUPATIONS[program.trade]
        return (day, "ApprenticeshipProgram", program.id, "ApprenticeshipProgramDefined", {
            **_actor("sponsor", f"{program.sponsor}-officer"), "sponsor_id": program.sponsor,
            "sponsor_name": f"Sponsor {program.sponsor[-4:]}",
            "title": f"{program.trade.title()} apprenticeship", "rapids_code": rapids,
            "onet_code": onet, "approach": program.approach, "ojl_hours": program.ojl_hours,
            "related_instruction_hours_per_year": 144,
            "work_processes": dict(WORK_PROCESSES[program.trade]),
            "competencies": list(COMPETENCIES[program.trade]),
            "wage_schedule": [{"after_hours": 0, "percent": 50}, {"after_hours": 2000,
                                                                  "percent": 65}],
            "pre_apprenticeship_hours_count": True})

    def _opportunity_for(self, rng: random.Random, open_: dict[tuple[str, str], _Opportunity],
                         begin: date) -> tuple[_Opportunity, list[Step]]:
        kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
        school = self.schools[rng.randrange(len(self.schools))]
        steps: list[Step] = []
        current = open_.get((school, kind))
        if (current is not None and current.matched < current.capacity
                and begin <= current.starts_on + timedelta(days=30)):
            return current, steps
        if current is not None:
            steps.append((begin - timedelta(days=7), "Opportunity", current.id,
                          "OpportunityClosed", {**_actor("coordinator", f"{school}-coord"),
                                                "reason": "All places filled"}))
        employer = self.employers[rng.randrange(len(self.employers))]
        long_ = kind in ("Apprenticeship", "pre-apprenticeship", "CooperativeEducation")
        opportunity = _Opportunity(
            id=self._uuid(), school=school, kind=kind,
            wbl_type={"pre-apprenticeship": "OnTheJob"}.get(kind, kind),
            pre_apprenticeship=kind == "pre-apprenticeship", employer=employer,
            employer_name=f"Employer {employer[-5:]}", starts_on=begin - timedelta(days=3),
            ends_on=begin + timedelta(days=364 if kind == "Apprenticeship" else
                                      150 if long_ else 120),
            capacity=rng.randint(2, 12))
        paid = kind not in ("UnpaidInternship", "ServiceLearning", "JobShadowing")
        steps.append((begin - timedelta(days=10), "Opportunity", opportunity.id,
                      "OpportunityPosted", {
                          **_actor("coordinator", f"{school}-coord"), "organisation_id": school,
                          "title": f"{kind} at {opportunity.employer_name}",
                          "employer_name": opportunity.employer_name,
                          "worksite": f"{rng.randint(1, 999)} Main St",
                          "wbl_type": opportunity.wbl_type,
                          "pre_apprenticeship": opportunity.pre_apprenticeship,
                          "occupation_code": rng.choice(list(OCCUPATIONS.values()))[1],
                          "career_pathway": rng.choice(PATHWAYS), "paid": paid,
                          "hourly_wage": f"{rng.randint(1400, 2400) / 100:.2f}" if paid
                          else None, "capacity": opportunity.capacity,
                          "starts_on": opportunity.starts_on.isoformat(),
                          "ends_on": opportunity.ends_on.isoformat(),
                          "minimum_age": 16, "hazardous": False}))
        open_[(school, kind)] = opportunity
        return opportunity, steps

    def _placement(self, rng: random.Random, opportunity: _Opportunity, begin: date
                   ) -> list[Step]:
        """One placement's events (with its learner-day events), in version order."""
        opportunity.matched += 1
        learner = self.learners[rng.randrange(len(self.learners))]
        kind = opportunity.kind
        program = None
        if kind == "Apprenticeship" or (kind == "pre-apprenticeship" and rng.random() < 0.7):
            program = self.programs[rng.randrange(len(self.programs))]
        placement = self._uuid()
        coordinator = _actor("coordinator", f"{opportunity.school}-coord")
        supervisor_id = f"{opportunity.employer}-super-{rng.randrange(4)}"
        supervisor = _actor("supervisor", supervisor_id)
        learner_actor = _actor("learner", learner.id)
        start = max(begin, opportunity.starts_on)
        minor = birthday(learner.born_on, 18) > opportunity.starts_on
        steps: list[Step] = []

        def add(day: date, event_type: str, data: dict[str, Any]) -> None:
            steps.append((day, "Placement", placement, event_type, data))

        trade = program.trade if program else None
        add(start - timedelta(days=5), "LearnerMatched", {
            **coordinator, "organisation_id": opportunity.school,
            "opportunity_id": opportunity.id, "learner_id": learner.id,
            "supervisor_id": supervisor_id, "wbl_type": opportunity.wbl_type,
            "pre_apprenticeship": opportunity.pre_apprenticeship,
            "starts_on": opportunity.starts_on.isoformat(),
            "ends_on": opportunity.ends_on.isoformat(), "minor_during_placement": minor,
            "program_id": program.id if program else None,
            "approach": program.approach if program else None,
            "ojl_minutes_required": program.ojl_hours * 60 if program else 0,
            "work_processes": sorted(WORK_PROCESSES[trade]) if trade else [],
            "competencies": list(COMPETENCIES[trade]) if trade else [],
            "pre_apprenticeship_hours_count": bool(program)})
        parties = ["learner", "guardian", "employer", "coordinator"] if minor else [
            "learner", "employer", "coordinator"]
        signers = {"learner": learner_actor, "guardian": _actor("guardian", f"g-{learner.id}"),
                   "employer": _actor("employer", f"{opportunity.employer}-hr"),
                   "coordinator": coordinator}
        for party in parties:
            add(start - timedelta(days=rng.randint(1, 4)), "AgreementSigned",
                {**signers[party], "party": party})
        steps.sort(key=lambda s: s[0])  # signatures in date order after the match
        if rng.random() < 0.04:
            add(start, "PlacementWithdrawn", {**coordinator, "reason": "Moved away",
                                              "during_probation": True})
            return steps
        add(start, "PlacementStarted", {**coordinator})
        span = {"JobShadowing": (1, 3), "PaidInternship": (6, 14), "UnpaidInternship": (6, 14),
                "CooperativeEducation": (8, 16), "ServiceLearning": (2, 5),
                "pre-apprenticeship": (8, 14), "Apprenticeship": (10, 24)}[kind]
        entries = rng.randint(*span)
        step_days = 1 if kind == "JobShadowing" else 7
        status: dict[str, str] = {}
        day_of: dict[str, date] = {}
        later: list[tuple[date, str, dict[str, Any]]] = []
        suspended_at = rng.randrange(entries) if program and rng.random() < 0.04 else -1
        last = start
        for n in range(entries):
            work = start + timedelta(days=n * step_days + rng.randint(0, 2 if step_days > 1
                                                                       else 0))
            if work > opportunity.ends_on:
                break
            if n == suspended_at:
                add(work, "PlacementSuspended", {**coordinator, "reason": "Injury leave"})
                work += timedelta(days=14)
                add(work, "PlacementReinstated", {**coordinator, "reason": "Cleared to work"})
            minutes = rng.choice([120, 180, 240, 300, 360, 420, 480] if kind != "JobShadowing"
                                 else [180, 240, 360])
            ri = program is not None and rng.random() < 0.15
            kind_ = "related_instruction" if ri else "on_the_job"
            allocations = ({rng.choice(sorted(WORK_PROCESSES[trade])): minutes}
                           if trade and not ri else {})
            entry = f"e-{placement[:8]}-{n}"
            self._log(steps, placement, learner, learner_actor, work, entry, minutes, kind_,
                      allocations, "HoursLogged", {})
            status[entry], day_of[entry] = "logged", work
            review = work + timedelta(days=rng.randint(1, 6))
            fate = rng.random()
            if fate < 0.80:
                add(review, "HoursApproved", {**supervisor, "entry_id": entry, "replaces": None,
                                              "link_id": self._uuid() if rng.random() < 0.3
                                              else None})
                status[entry] = "approved"
            elif fate < 0.88:
                add(review, "HoursRejected", {**supervisor, "entry_id": entry,
                                              "reason": "Not on the rota", "link_id": None})
                self._release(steps, learner, supervisor, review, entry, work, "rejected")
                status[entry] = "rejected"
            if rng.random() < 0.125:  # a correction, whatever the entry's state
                fixed = work + timedelta(days=rng.randint(2, 9))
                new = f"{entry}-c"
                was = status[entry]
                pending_over = entry if was == "approved" else None
                if was == "logged":
                    status[entry] = "superseded"
                new_minutes = max(minutes + rng.choice([-60, -30, 30, 60]), 30)
                self._log(steps, placement, learner, coordinator, work, new, new_minutes,
                          kind_, {k: new_minutes for k in allocations}, "HoursCorrected",
                          {"supersedes": entry, "reason": "Clock-in error",
                           "pending_over": pending_over},
                          released=(entry, fixed) if was == "logged" else None,
                          at=fixed)
                if rng.random() < 0.8:
                    approved = fixed + timedelta(days=2)
                    add(approved, "HoursApproved", {**supervisor, "entry_id": new,
                                                    "replaces": pending_over, "link_id": None})
                    if pending_over is not None:
                        self._release(steps, learner, supervisor, approved, entry, work,
                                      "superseded")
            last = max(last, work)
        end = last + timedelta(days=14)  # after every review and correction
        if program is not None and kind == "Apprenticeship":
            if rng.random() < 0.3:
                later.append((start + timedelta(days=10), "PriorLearningCreditGranted", {
                    **_actor("sponsor", f"{program.sponsor}-officer"),
                    "minutes": rng.choice([600, 3000, 12000]), "basis": "prior_experience",
                    "work_process": None, "source_placement_id": None}))
            for competency in COMPETENCIES[program.trade][:rng.randint(0, 3)]:
                later.append((end - timedelta(days=3), "CompetencySignedOff", {
                    **supervisor, "competency": competency}))
        if kind in ("PaidInternship", "UnpaidInternship") and entries > 6:
            later.append((start + timedelta(days=42), "PlacementEvaluated", self._evaluation(
                rng, supervisor, "interim", trade)))
        for day, event_type, data in later:
            add(day, event_type, data)
        if rng.random() < 0.06:
            add(end, "PlacementWithdrawn", {**learner_actor, "reason": "Found a job",
                                            "during_probation": False})
        elif kind != "Apprenticeship" or rng.random() < 0.15:
            if kind != "ServiceLearning":
                add(end, "PlacementEvaluated", self._evaluation(rng, supervisor, "final",
                                                                trade))
                if kind != "JobShadowing" or rng.random() < 0.3:
                    add(end, "CredentialIssued", {
                        **coordinator, "credential_id": self._uuid(),
                        "kind": "ApprenticeshipCertificate" if kind == "Apprenticeship"
                        else "Fieldwork", "issuer": f"School {opportunity.school[-5:]}",
                        "expires_on": None})
            add(end, "PlacementCompleted", {**coordinator})
        # each placement's events in version order, dated in order (stable on equal dates)
        return _in_date_order(steps)

    def _evaluation(self, rng: random.Random, supervisor: dict[str, str], stage: str,
                    trade: str | None) -> dict[str, Any]:
        competencies = COMPETENCIES[trade] if trade else ["communication", "punctuality",
                                                          "teamwork"]
        return {**supervisor, "evaluation_id": self._uuid(), "stage": stage,
                "evaluator_role": "supervisor",
                "scores": {c: rng.randint(1, 4) for c in competencies},
                "comments": "Reliable and careful."}

    def _day_id(self, learner: _Learner, work: date) -> str:
        day_id = str(LearnerDay.create_id(learner.id, work))
        self._day_dates[day_id] = work.isoformat()
        return day_id

    def _log(self, steps: list[Step], placement: str, learner: _Learner,
             actor: dict[str, str], work: date, entry: str, minutes: int, kind: str,
             allocations: dict[str, int], event_type: str, extra: dict[str, Any], *,
             released: tuple[str, date] | None = None, at: date | None = None) -> None:
        """HoursLogged or HoursCorrected, and the learner-day events Ledger.log_hours /
        correct_hours store with it (LearnerDayOpened the first time, on the first use of
        that day id by this generator; the ledger's day would also be open already if
        another placement of the learner logged that day: the same here)."""
        when = at or work
        body: dict[str, Any] = {
            **actor, "entry_id": entry, "minutes": minutes, "kind": kind, "start_time": None,
            "end_time": None, "allocations": allocations, "school_day": False,
            "school_week": False, "child_labour_flags": []}
        if event_type == "HoursCorrected":
            body = {
                **actor, "entry_id": entry, "supersedes": extra["supersedes"],
                "reason": extra["reason"], "minutes": minutes, "kind": kind,
                "start_time": None, "end_time": None, "allocations": allocations,
                "school_day": False, "school_week": False, "child_labour_flags": [],
                "pending_over": extra["pending_over"]}
        steps.append((when, "Placement", placement, event_type, body | {"business_date":
                                                                         work.isoformat()}))
        if released is not None:
            self._release(steps, learner, actor, when, released[0], released[1], "superseded")
        day_id = self._day_id(learner, work)
        if day_id not in self._opened:
            self._opened.add(day_id)
            steps.append((when, "LearnerDay", day_id, "LearnerDayOpened", {
                **actor, "learner_id": learner.id, "business_date": work.isoformat()}))
        steps.append((when, "LearnerDay", day_id, "DayMinutesClaimed", {
            **actor, "business_date": work.isoformat(), "placement_id": placement,
            "entry_id": entry, "minutes": minutes}))

    def _release(self, steps: list[Step], learner: _Learner, actor: dict[str, str],
                 when: date, entry: str, work: date, reason: str) -> None:
        steps.append((when, "LearnerDay", self._day_id(learner, work), "DayMinutesReleased", {
            **actor,
            "business_date": work.isoformat(), "entry_id": entry, "reason": reason}))


def _in_date_order(steps: list[Step]) -> list[Step]:
    """Steps sorted by date, stable; a step's body keeps its own business date (the day
    worked), the sort key is when it was recorded. Dates never go backwards within one
    aggregate, so every aggregate's events stay in version order."""
    indexed = sorted(enumerate(steps), key=lambda p: (p[1][0], p[0]))
    return [s for _, s in indexed]


# -- writing the history where the system reads it ---------------------------------------


def _converter(hint: Any) -> Any:
    """str -> the event class's field type (dates, decimals); others pass as they are."""
    args = typing.get_args(hint) if isinstance(hint, UnionType) or typing.get_origin(
        hint) is typing.Union else (hint,)
    if date in args:
        return lambda v: None if v is None else date.fromisoformat(v)
    if Decimal in args:
        return lambda v: None if v is None else Decimal(v)
    return None


_CONVERTERS: dict[str, dict[str, Any]] = {}


def domain_event(envelope: Envelope) -> Any:
    """The domain's own event object for an envelope: the class's constructor takes exactly
    its fields (a missing or unknown one raises TypeError)."""
    cls = EVENT_CLASSES[envelope.event_type]
    converters = _CONVERTERS.get(envelope.event_type)
    if converters is None:
        hints = typing.get_type_hints(cls)
        converters = {name: c for name, hint in hints.items()
                      if (c := _converter(hint)) is not None and name != "timestamp"}
        _CONVERTERS[envelope.event_type] = converters
    data = {k: (converters[k](v) if k in converters else v) for k, v in envelope.data.items()}
    if envelope.event_type in CREATED_TOPICS:
        data["originator_topic"] = CREATED_TOPICS[envelope.event_type]
    return cls(originator_id=UUID(envelope.aggregate_id),
               originator_version=envelope.aggregate_version,
               timestamp=envelope.recorded_at, **data)


def write_store(ledger: Any, envelopes: Iterable[Envelope], batch: int = 5000) -> int:
    """Store the envelopes as the ledger stores events (mapper, then the recorder's insert,
    in batches); the store must be empty, so positions come out as generated. Returns how
    many were stored."""
    mapper, recorder = ledger.mapper, ledger.recorder
    if recorder.max_notification_id():
        raise ValueError("write_store needs an empty event store")
    pending: list[Any] = []
    stored = 0
    for envelope in envelopes:
        pending.append(mapper.to_stored_event(domain_event(envelope)))
        if len(pending) >= batch:
            recorder.insert_events(pending)
            stored += len(pending)
            pending = []
    if pending:
        recorder.insert_events(pending)
        stored += len(pending)
    return stored


def write_profiles(vault: PersonalDataVault, profiles: Iterable[tuple[str, LearnerProfile]],
                   valid_from: datetime | None = None, batch: int = 2000) -> int:
    """Put each learner's profile in the vault under the generated id, as
    ``PersonalDataVault.register`` does (a data key per learner, wrapped by the master key;
    the profile sealed under it), many learners a transaction."""
    when = valid_from or datetime.combine(YEAR_STARTS - timedelta(days=60), clock(0), UTC)
    keys: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    versions: list[dict[str, Any]] = []
    count = 0

    def flush() -> None:
        with vault.engine.begin() as conn:
            conn.execute(insert(personal_data.learner_keys), keys)
            conn.execute(insert(personal_data.learner_profiles), rows)
            conn.execute(insert(personal_data.learner_profile_versions), versions)
        keys.clear()
        rows.clear()
        versions.clear()

    for learner_id, profile in profiles:
        data_key = AESGCM.generate_key(bit_length=256)
        sealed = personal_data._seal(data_key, personal_data._to_json(profile), learner_id)
        keys.append({"learner_id": learner_id, "created_at": when,
                     "wrapped_key": personal_data._seal(vault._master, data_key, learner_id)})
        rows.append({"learner_id": learner_id, "ciphertext": sealed, "updated_at": when,
                     "student_index": vault._student_index(profile.organisation_id,
                                                           profile.student_number)})
        versions.append({"learner_id": learner_id, "valid_from": when, "ciphertext": sealed})
        count += 1
        if len(keys) >= batch:
            flush()
    if keys:
        flush()
    return count


def checksum(envelopes: Iterable[Envelope]) -> str:
    """SHA-256 over the envelopes' ids and bodies: the same seed and size, the same sum."""
    digest = hashlib.sha256()
    for e in envelopes:
        digest.update(e.event_id.encode())
        digest.update(json.dumps(e.data, sort_keys=True).encode())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    year = StateYear(args.events, seed=args.seed)
    started = time.perf_counter()
    placements = 0
    for envelope in year.envelopes():
        placements += envelope.event_type == "LearnerMatched"
    elapsed = time.perf_counter() - started
    json.dump({"events": args.events, "seconds": round(elapsed, 1),
               "events_per_s": round(args.events / elapsed), "placements": placements,
               "events_per_placement": round(args.events / max(placements, 1), 1),
               "scale": year.scale.__dict__, "event_types": dict(year.counts.most_common())},
              sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
