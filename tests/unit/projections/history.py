"""A generated history of placements (as published envelopes) and the totals it must give,
computed here independently of the projections' code.

Events follow docs/events.md; placements' events interleave at random as concurrent
commands would, each placement's in version order after its opportunity and program.
Used by the fold unit tests, the exactness and crash tests, and the replay benchmark.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from domain.contract.envelope import Envelope

WORK_PROCESSES = {"Safety and tools": 500, "Machine setup": 1000, "Quality control": 500}
COMPETENCIES = ["blueprints", "cnc-setup", "inspection"]


@dataclass
class Expected:
    """The totals one placement must show (minutes)."""

    learner_id: str
    program_id: str | None
    approved_ojl: int = 0
    pending_ojl: int = 0
    rejected_ojl: int = 0
    approved_ri: int = 0
    pending_ri: int = 0
    rejected_ri: int = 0
    credited: int = 0
    by_work_process: dict[str, int] = field(default_factory=dict)
    status: str = "matched"
    credentials: int = 0
    events: int = 0


@dataclass
class History:
    envelopes: list[Envelope]
    expected: dict[str, Expected]
    programs: dict[str, dict[str, Any]]

    def learner_totals(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for e in self.expected.values():
            t = out.setdefault(e.learner_id, {"approved_ojl": 0, "rejected_ojl": 0})
            t["approved_ojl"] += e.approved_ojl
            t["rejected_ojl"] += e.rejected_ojl
        return out


class _Clock:
    def __init__(self) -> None:
        self.position = 0
        self.start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _actor(role: str, ident: str) -> dict[str, str]:
    return {"actor_id": ident, "actor_role": role}


def _placement_story(rng: random.Random, placement_id: str, opportunity: dict[str, Any],
                     program: dict[str, Any] | None, learner: str,
                     expected: Expected) -> list[tuple[str, str, dict[str, Any]]]:
    """(aggregate type, event type, data) of one placement, in version order."""
    coordinator = _actor("coordinator", "coord-1")
    supervisor_id = f"super-{rng.randrange(50)}"
    supervisor = _actor("supervisor", supervisor_id)
    day0 = date.fromisoformat(opportunity["starts_on"])
    events: list[tuple[str, str, dict[str, Any]]] = []

    def add(event_type: str, data: dict[str, Any]) -> None:
        events.append(("Placement", event_type, data))

    add("LearnerMatched", {
        **coordinator, "business_date": (day0 - timedelta(3)).isoformat(),
        "organisation_id": opportunity["organisation_id"], "opportunity_id": opportunity["id"],
        "learner_id": learner, "supervisor_id": supervisor_id,
        "wbl_type": opportunity["wbl_type"], "pre_apprenticeship": False,
        "starts_on": opportunity["starts_on"], "ends_on": opportunity["ends_on"],
        "minor_during_placement": False,
        "program_id": program["id"] if program else None,
        "approach": program["approach"] if program else None,
        "ojl_minutes_required": program["ojl_hours"] * 60 if program else 0,
        "work_processes": sorted(WORK_PROCESSES) if program else [],
        "competencies": list(COMPETENCIES) if program else [],
        "pre_apprenticeship_hours_count": bool(program),
    })
    for party, actor in (("learner", _actor("learner", learner)),
                         ("employer", _actor("employer", "employer-1")),
                         ("coordinator", coordinator)):
        add("AgreementSigned", {**actor, "business_date": (day0 - timedelta(1)).isoformat(),
                                "party": party})
    if rng.random() < 0.05:  # some never start
        add("PlacementWithdrawn", {**coordinator, "business_date": day0.isoformat(),
                                   "reason": "Moved away", "during_probation": True})
        expected.status = "withdrawn"
        return events
    add("PlacementStarted", {**coordinator, "business_date": day0.isoformat()})
    expected.status = "active"
    # status per entry id: (minutes, kind, allocations, status)
    entries: dict[str, list[Any]] = {}
    for n in range(rng.randint(3, 12)):
        work_date = (day0 + timedelta(n)).isoformat()
        minutes = rng.choice([30, 45, 60, 90, 120, 240, 480, 7])
        kind = "related_instruction" if program and rng.random() < 0.2 else "on_the_job"
        allocations = ({rng.choice(sorted(WORK_PROCESSES)): minutes}
                       if program and kind == "on_the_job" else {})
        entry_id = f"e-{placement_id[:8]}-{n}"
        add("HoursLogged", {**_actor("learner", learner), "business_date": work_date,
                            "entry_id": entry_id, "minutes": minutes, "kind": kind,
                            "start_time": None, "end_time": None, "allocations": allocations,
                            "school_day": False, "school_week": False,
                            "child_labour_flags": []})
        entries[entry_id] = [minutes, kind, allocations, "logged"]
        fate = rng.random()
        reviewed_on = (day0 + timedelta(n + 1)).isoformat()
        if fate < 0.6:
            add("HoursApproved", {**supervisor, "business_date": reviewed_on,
                                  "entry_id": entry_id, "replaces": None})
            entries[entry_id][3] = "approved"
        elif fate < 0.72:
            add("HoursRejected", {**supervisor, "business_date": reviewed_on,
                                  "entry_id": entry_id, "reason": "Not on the rota"})
            entries[entry_id][3] = "rejected"
        if rng.random() < 0.2:  # a correction replaces it, whatever its state
            new_id = f"{entry_id}-c"
            new_minutes = max(minutes + rng.choice([-15, 15, 30, 60]), 5)
            new_alloc = {k: new_minutes for k in allocations}
            was = entries[entry_id][3]
            # An approved entry stands until its correction is approved (pending_over); a
            # pending one is superseded at once; a rejected one stays rejected in history.
            pending_over = entry_id if was == "approved" else None
            add("HoursCorrected", {**coordinator, "business_date": work_date,
                                   "entry_id": new_id, "supersedes": entry_id,
                                   "reason": "Clock-in error", "minutes": new_minutes,
                                   "kind": kind, "start_time": None, "end_time": None,
                                   "allocations": new_alloc, "school_day": False,
                                   "school_week": False, "child_labour_flags": [],
                                   "pending_over": pending_over})
            if was == "logged":
                entries[entry_id][3] = "superseded"
            entries[new_id] = [new_minutes, kind, new_alloc, "logged"]
            second = rng.random()
            if second < 0.6:
                add("HoursApproved", {**supervisor, "business_date": reviewed_on,
                                      "entry_id": new_id, "replaces": pending_over})
                entries[new_id][3] = "approved"
                if pending_over is not None:
                    entries[entry_id][3] = "superseded"
            elif second < 0.75:
                add("HoursRejected", {**supervisor, "business_date": reviewed_on,
                                      "entry_id": new_id, "reason": "Still wrong"})
                entries[new_id][3] = "rejected"
    if program and rng.random() < 0.3:
        credit = rng.choice([60, 600, 6000])
        add("PriorLearningCreditGranted", {**_actor("sponsor", "sponsor-1"),
                                           "business_date": day0.isoformat(), "minutes": credit,
                                           "basis": "prior_experience", "work_process": None,
                                           "source_placement_id": None})
        expected.credited += credit
    for minutes, kind, allocations, status in entries.values():
        prefix = "ojl" if kind == "on_the_job" else "ri"
        if status in ("approved", "logged", "rejected"):
            name = {"approved": "approved", "logged": "pending", "rejected": "rejected"}[status]
            attr = f"{name}_{prefix}"
            setattr(expected, attr, getattr(expected, attr) + minutes)
        if status == "approved":
            for wp, m in allocations.items():
                expected.by_work_process[wp] = expected.by_work_process.get(wp, 0) + m
    end = (day0 + timedelta(20)).isoformat()
    if rng.random() < 0.5:
        add("PlacementEvaluated", {**supervisor, "business_date": end,
                                   "evaluation_id": _uuid(rng), "stage": "final",
                                   "evaluator_role": "supervisor",
                                   "scores": {c: rng.randint(1, 4) for c in COMPETENCIES},
                                   "comments": "Reliable and careful."})
        if rng.random() < 0.6:
            add("CredentialIssued", {**coordinator, "business_date": end,
                                     "credential_id": _uuid(rng), "kind": "Fieldwork"
                                     if not program else "ApprenticeshipCertificate",
                                     "issuer": "District 42", "expires_on": None})
            expected.credentials += 1
        if rng.random() < 0.7:
            add("PlacementCompleted", {**coordinator, "business_date": end})
            expected.status = "completed"
    elif rng.random() < 0.1:
        add("PlacementWithdrawn", {**_actor("learner", learner), "business_date": end,
                                   "reason": "Found a job", "during_probation": False})
        expected.status = "withdrawn"
    return events


def generate(placements: int, seed: int = 5, learners: int | None = None,
             first_position: int = 1) -> History:
    """A history of ``placements`` placements over a few programs and opportunities; the
    store positions start at ``first_position`` (to chain several histories in one topic)."""
    rng = random.Random(seed)
    learners = learners or max(placements // 2, 1)
    clock = _Clock()
    clock.position = first_position - 1
    envelopes: list[Envelope] = []
    versions: dict[str, int] = {}

    def emit(aggregate_type: str, aggregate_id: str, event_type: str,
             data: dict[str, Any]) -> None:
        clock.position += 1
        version = versions.get(aggregate_id, 0) + 1
        versions[aggregate_id] = version
        envelopes.append(Envelope(
            event_id=f"{aggregate_id}/{version}", event_type=event_type,
            aggregate_type=aggregate_type, aggregate_id=aggregate_id,
            aggregate_version=version, position=clock.position,
            schema_version=2 if event_type in ("HoursLogged",) else 1,
            recorded_at=clock.start + timedelta(seconds=clock.position),
            data=data,
        ))

    programs: dict[str, dict[str, Any]] = {}
    for n in range(3):
        pid = _uuid(rng)
        program = {"id": pid, "approach": ["time_based", "hybrid", "time_based"][n],
                   "ojl_hours": sum(WORK_PROCESSES.values())}
        programs[pid] = program
        emit("ApprenticeshipProgram", pid, "ApprenticeshipProgramDefined", {
            **_actor("sponsor", "sponsor-1"), "business_date": "2025-12-01",
            "sponsor_id": "sponsor-1", "sponsor_name": "Acme Apprenticeships",
            "title": f"CNC machinist {n}", "rapids_code": "0296CB", "onet_code": "51-4011.00",
            "approach": program["approach"], "ojl_hours": program["ojl_hours"],
            "related_instruction_hours_per_year": 144, "work_processes": dict(WORK_PROCESSES),
            "competencies": list(COMPETENCIES), "wage_schedule": [],
            "pre_apprenticeship_hours_count": True,
        })
    stories: list[Iterator[tuple[str, str, str, dict[str, Any]]]] = []
    expected: dict[str, Expected] = {}
    opportunity: dict[str, Any] = {}
    for n in range(placements):
        if n % 10 == 0:
            apprenticeship = rng.random() < 0.3
            opportunity = {
                "id": _uuid(rng), "organisation_id": f"org-{rng.randrange(3)}",
                "wbl_type": "Apprenticeship" if apprenticeship else rng.choice(
                    ["PaidInternship", "JobShadowing", "CooperativeEducation"]),
                "starts_on": "2026-01-12", "ends_on": "2026-05-22",
            }
            emit("Opportunity", opportunity["id"], "OpportunityPosted", {
                **_actor("coordinator", "coord-1"), "business_date": "2026-01-02",
                "organisation_id": opportunity["organisation_id"],
                "title": "Machinist intern", "employer_name": "Acme Robotics",
                "worksite": "12 Foundry Rd", "wbl_type": opportunity["wbl_type"],
                "pre_apprenticeship": False, "occupation_code": "51-4011.00",
                "career_pathway": "Manufacturing", "paid": True, "hourly_wage": "16.50",
                "capacity": 10, "starts_on": opportunity["starts_on"],
                "ends_on": opportunity["ends_on"], "minimum_age": 16, "hazardous": False,
            })
        program = (programs[rng.choice(sorted(programs))]
                   if opportunity["wbl_type"] == "Apprenticeship" else None)
        placement_id = _uuid(rng)
        learner = f"learner-{rng.randrange(learners)}"
        exp = Expected(learner_id=learner, program_id=program["id"] if program else None)
        story = _placement_story(rng, placement_id, opportunity, program, learner, exp)
        exp.events = len(story)
        expected[placement_id] = exp
        stories.append(iter([(a, placement_id, t, d) for a, t, d in story]))
        # the new placement's first event is stored now; the rest interleave with others
        aggregate_type, aggregate_id, event_type, data = next(stories[-1])
        emit(aggregate_type, aggregate_id, event_type, data)
        while len(stories) > 20 or (n == placements - 1 and stories):
            i = rng.randrange(len(stories))
            step = next(stories[i], None)
            if step is None:
                stories.pop(i)
                continue
            emit(step[0], step[1], step[2], step[3])
    return History(envelopes, expected, programs)
