"""The projections' pure folds, with no I/O: exact totals over a generated history,
corrections and rejections, transcript notations and exports, Open Badges / CLR shapes,
and the audit trail's chains and verification."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import jsonschema
import pytest

from domain.contract.envelope import Envelope
from projections import apprenticeship_hours as hours_fold
from projections import audit_trail as audit
from projections import transcript
from projections.common import hours
from tests.unit.projections.history import generate


def fold(fn: Any, events: Iterable[Envelope]) -> dict[str, Any]:
    states: dict[str, Any] = {}
    for e in events:
        after = fn(states.get(e.aggregate_id), e)
        if after is not None:
            states[e.aggregate_id] = after
    return states


def env(event_type: str, data: dict[str, Any], version: int, position: int,
        aggregate_id: str = "p-1", aggregate_type: str = "Placement") -> Envelope:
    return Envelope(f"{aggregate_id}/{version}", event_type, aggregate_type, aggregate_id,
                    version, position, 1, datetime(2026, 1, 1, tzinfo=UTC) , data)


MATCHED = {
    "actor_id": "coord-1", "actor_role": "coordinator", "business_date": "2026-01-09",
    "organisation_id": "org-1", "opportunity_id": "o-1", "learner_id": "ana",
    "supervisor_id": "sam", "wbl_type": "PaidInternship", "pre_apprenticeship": False,
    "starts_on": "2026-01-12", "ends_on": "2026-05-22", "minor_during_placement": False,
    "program_id": None, "approach": None, "ojl_minutes_required": 0,
    "work_processes": [], "competencies": [], "pre_apprenticeship_hours_count": False,
}


def logged(entry_id: str, minutes: int, day: str = "2026-01-12",
           kind: str = "on_the_job") -> dict[str, Any]:
    return {"actor_id": "ana", "actor_role": "learner", "business_date": day,
            "entry_id": entry_id, "minutes": minutes, "kind": kind, "start_time": None,
            "end_time": None, "allocations": {}, "school_day": False, "school_week": False,
            "child_labour_flags": []}


def internship_story() -> list[Envelope]:
    sup = {"actor_id": "sam", "actor_role": "supervisor", "business_date": "2026-01-13"}
    steps: list[tuple[str, dict[str, Any]]] = [
        ("LearnerMatched", MATCHED),
        ("PlacementStarted", {"actor_id": "coord-1", "actor_role": "coordinator",
                              "business_date": "2026-01-12"}),
        ("HoursLogged", logged("a", 3600)),
        ("HoursApproved", {**sup, "entry_id": "a"}),
        ("HoursLogged", logged("b", 600, "2026-01-13")),
        ("HoursRejected", {**sup, "entry_id": "b", "reason": "Not scheduled"}),
        ("HoursLogged", logged("c", 3000, "2026-01-14")),
        ("HoursCorrected", {**logged("c2", 3600, "2026-01-14"), "supersedes": "c",
                            "reason": "Typo"}),
        ("HoursApproved", {**sup, "entry_id": "c2"}),
        ("PlacementEvaluated", {**sup, "business_date": "2026-05-20", "evaluation_id": "ev1",
                                "stage": "final", "evaluator_role": "supervisor",
                                "scores": {"safety": 4, "teamwork": 3}, "comments": ""}),
        ("CredentialIssued", {"actor_id": "coord-1", "actor_role": "coordinator",
                              "business_date": "2026-05-22", "credential_id":
                              "9b2f8f0e-5a7c-4c59-9f53-43a9a3f1d6e1", "kind": "Fieldwork",
                              "issuer": "OSHA-10", "expires_on": None}),
        ("PlacementCompleted", {"actor_id": "coord-1", "actor_role": "coordinator",
                                "business_date": "2026-05-22"}),
    ]
    return [env(t, d, v, v + 1) for v, (t, d) in enumerate(steps, start=1)]


def test_hours_are_exact_over_a_generated_history() -> None:
    history = generate(400, seed=11)
    states = fold(hours_fold.evolve, history.envelopes)
    assert len(states) == len(history.expected)
    for placement_id, want in history.expected.items():
        row = hours_fold._to_row(states[placement_id])
        got = progress = hours_fold.progress(row, None)
        assert (got.approved_ojl_minutes, got.pending_ojl_minutes, got.rejected_ojl_minutes,
                got.approved_ri_minutes, got.pending_ri_minutes, got.rejected_ri_minutes,
                got.prior_learning_credit_minutes, got.status) == (
            want.approved_ojl, want.pending_ojl, want.rejected_ojl, want.approved_ri,
            want.pending_ri, want.rejected_ri, want.credited, want.status), placement_id
        approved_by_wp = {w.name: w.approved_minutes for w in progress.work_processes
                          if w.approved_minutes}
        assert approved_by_wp == want.by_work_process


def test_corrections_replace_and_rejections_never_count() -> None:
    state = fold(transcript.evolve, internship_story())["p-1"]
    row = transcript._to_row(state)
    assert row["approved_minutes"] == 3600 + 3600  # a, and c2 which replaced c
    assert row["rejected_minutes"] == 600
    assert row["pending_minutes"] == 0
    assert state.entries["c"].status == "superseded"


def test_notation_line_and_exports() -> None:
    state = fold(transcript.evolve, internship_story())["p-1"]
    row = {**transcript._to_row(state), "title": "Robotics technician intern",
           "employer_name": "Acme Robotics", "occupation_code": "17-3024.01"}
    exp = transcript.experience_of(row)
    assert exp.notation() == ("WBL-INTERN | Acme Robotics | 2026-01-12..2026-05-22 | 120.0 h | "
                              "Completed | Credential: Fieldwork (OSHA-10)")
    assert exp.approved_hours == Decimal("120.00")
    assert exp.evaluation_summary and "3.50/4 across 2 competencies" in exp.evaluation_summary
    config = transcript.TranscriptConfig(course_code="22151", credits=Decimal("1.0"))
    csv_text = transcript.to_csv([exp], config)
    header, line = csv_text.splitlines()[:2]
    assert header.startswith("learner_id,course_code,credits,notation")
    assert line.startswith("ana,22151,1.0,WBL-INTERN | Acme Robotics")


# The 1EdTech data model's required properties (OB 3.0 section B, CLR 2.0 section B), as a
# JSON Schema: enough to catch a missing or misspelt member without network access.
_PROFILE = {"type": "object", "required": ["id", "type"],
            "properties": {"type": {"type": "array", "contains": {"const": "Profile"}}}}
_ACHIEVEMENT = {"type": "object", "required": ["id", "type", "name", "description", "criteria"],
                "properties": {"type": {"type": "array", "contains": {"const": "Achievement"}},
                               "criteria": {"type": "object", "minProperties": 1},
                               "achievementType": {"enum": [
                                   "Achievement", "ApprenticeshipCertificate", "Assessment",
                                   "Assignment", "AssociateDegree", "Award", "Badge",
                                   "BachelorDegree", "Certificate", "CertificateOfCompletion",
                                   "Certification", "CommunityService", "Competency", "Course",
                                   "CoCurricular", "Degree", "Diploma", "DoctoralDegree",
                                   "Fieldwork", "GeneralEducationDevelopment",
                                   "JourneymanCertificate", "LearningProgram", "License",
                                   "Membership", "ProfessionalDoctorate",
                                   "QualityAssuranceCredential", "MasterCertificate",
                                   "MasterDegree", "MicroCredential", "ResearchDoctorate",
                                   "SecondarySchoolDiploma"]}}}
OB3_SCHEMA = {
    "type": "object",
    "required": ["@context", "id", "type", "issuer", "validFrom", "name", "credentialSubject"],
    "properties": {
        "@context": {"type": "array", "prefixItems": [
            {"const": "https://www.w3.org/ns/credentials/v2"}],
            "contains": {"pattern": "^https://purl.imsglobal.org/spec/ob/v3p0/context-3"}},
        "id": {"type": "string", "format": "uri", "pattern": "^[a-z]+:"},
        "type": {"type": "array", "allOf": [
            {"contains": {"const": "VerifiableCredential"}},
            {"contains": {"const": "OpenBadgeCredential"}}]},
        "issuer": _PROFILE,
        "validFrom": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T.*Z$"},
        "credentialSubject": {
            "type": "object", "required": ["type", "achievement"],
            "properties": {"type": {"type": "array",
                                    "contains": {"const": "AchievementSubject"}},
                           "achievement": _ACHIEVEMENT}},
    },
}
CLR_SCHEMA = {
    "type": "object",
    "required": ["@context", "id", "type", "issuer", "validFrom", "name", "credentialSubject"],
    "properties": {
        "@context": {"type": "array", "allOf": [
            {"contains": {"pattern": "^https://purl.imsglobal.org/spec/clr/v2p0/context-2"}},
            {"contains": {"pattern": "^https://purl.imsglobal.org/spec/ob/v3p0/context-3"}}]},
        "type": {"type": "array", "allOf": [
            {"contains": {"const": "VerifiableCredential"}},
            {"contains": {"const": "ClrCredential"}}]},
        "issuer": _PROFILE,
        "credentialSubject": {
            "type": "object", "required": ["type", "verifiableCredential"],
            "properties": {"type": {"type": "array", "contains": {"const": "ClrSubject"}},
                           "verifiableCredential": {"type": "array", "minItems": 1,
                                                    "items": OB3_SCHEMA},
                           "achievement": {"type": "array", "items": _ACHIEVEMENT}}},
    },
}


def test_open_badge_and_clr_have_the_1edtech_shape() -> None:
    state = fold(transcript.evolve, internship_story())["p-1"]
    exp = transcript.experience_of({**transcript._to_row(state), "title": "Intern",
                                    "employer_name": "Acme Robotics",
                                    "occupation_code": "17-3024.01"})
    issuing = transcript.Issuing("https://wbl.example.org")
    badge = transcript.open_badge(exp, exp.credentials[0], issuing)
    jsonschema.validate(badge, OB3_SCHEMA)
    assert badge["credentialSubject"]["achievement"]["achievementType"] == "Fieldwork"
    assert "proof" not in badge  # signed by services.credentials, not by the fold
    record = transcript.clr("ana", [exp], [badge], issuing, issuer="District 42",
                            issued_at="2026-06-01T10:00:00+00:00",
                            clr_id="urn:uuid:0f0e0d0c-0b0a-4090-8070-605040302010")
    jsonschema.validate(record, CLR_SCHEMA)


def test_progress_says_what_is_missing() -> None:
    program = generate(1, seed=3).envelopes[0]
    program_row = hours_fold.program_row(program)
    assert program_row is not None
    matched = {**MATCHED, "wbl_type": "Apprenticeship", "program_id": program.aggregate_id,
               "approach": "time_based", "ojl_minutes_required": 120000,
               "work_processes": ["Machine setup", "Quality control", "Safety and tools"],
               "pre_apprenticeship_hours_count": True}
    sup = {"actor_id": "sam", "actor_role": "supervisor", "business_date": "2026-01-13"}
    events = [
        env("LearnerMatched", matched, 1, 10),
        env("PlacementStarted", {**sup, "business_date": "2026-01-12"}, 2, 11),
        env("HoursLogged", {**logged("a", 30000), "allocations": {"Machine setup": 30000}},
            3, 12),
        env("HoursApproved", {**sup, "entry_id": "a"}, 4, 13),
        env("HoursLogged", logged("r", 600, kind="related_instruction"), 5, 14),
        env("HoursApproved", {**sup, "entry_id": "r"}, 6, 15),
        env("PriorLearningCreditGranted", {**sup, "minutes": 6000, "basis": "pre_apprenticeship",
                                           "work_process": None,
                                           "source_placement_id": "p-0"}, 7, 16),
    ]
    state = fold(hours_fold.evolve, events)["p-1"]
    got = hours_fold.progress(hours_fold._to_row(state), program_row)
    assert got.counted_ojl_minutes == 36000
    assert got.pre_apprenticeship_credit_minutes == 6000
    assert got.percent_complete == Decimal("30.0")
    assert got.missing[0] == "on-the-job learning: 1400.00 h"
    assert "related instruction, program year 1: 134.00 h" in got.missing
    setup = next(w for w in got.work_processes if w.name == "Machine setup")
    assert (setup.target_minutes, setup.approved_minutes, setup.missing_minutes) == (
        60000, 30000, 30000)


def test_hours_are_decimal_and_quantized() -> None:
    assert hours(7) == Decimal("0.12")
    assert hours(7, "0.1") == Decimal("0.1")
    assert hours(90) == Decimal("1.50")


# -- the audit trail's chains -----------------------------------------------------------------


def trail(events: list[Envelope], arrival_seed: int | None = None) -> list[dict[str, Any]]:
    """Entries as the projection would store them, from events in ``arrival`` order."""
    heads: dict[str, audit.ChainHead] = {}
    rows: dict[int, dict[str, Any]] = {}
    order = list(events)
    if arrival_seed is not None:  # partitions interleave: keep per-aggregate order only
        rng = random.Random(arrival_seed)
        by_agg: dict[str, list[Envelope]] = {}
        for e in events:
            by_agg.setdefault(e.aggregate_id, []).append(e)
        queues = list(by_agg.values())
        order = []
        while queues:
            q = rng.choice(queues)
            order.append(q.pop(0))
            if not q:
                queues.remove(q)
    for e in order:
        row, heads[e.aggregate_id] = audit.derive(e, heads.get(e.aggregate_id))
        rows[e.position] = row
    previous = audit.GENESIS
    for position in sorted(rows):
        previous = audit.chain(previous, rows[position]["event"].encode())
        rows[position]["global_hash"] = previous
    return [rows[p] for p in sorted(rows)]


def heads_of(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    last: dict[str, dict[str, Any]] = {}
    for r in rows:
        last[r["aggregate_id"]] = {"aggregate_id": r["aggregate_id"],
                                   "version": r["aggregate_version"], "hash": r["chain_hash"]}
    return {"position": rows[-1]["position"], "hash": rows[-1]["global_hash"]}, list(
        last.values())


def test_audit_chain_does_not_depend_on_arrival_order() -> None:
    events = generate(30, seed=2).envelopes
    assert trail(events) == trail(events, arrival_seed=7)
    rows = trail(events)
    report = audit.verify_rows(rows, *heads_of(rows))
    assert report.ok and report.chained == len(events)


def test_audit_entries_read_well() -> None:
    rows = trail(internship_story())
    corrected = next(r for r in rows if r["event_type"] == "HoursCorrected")
    assert corrected["summary"] == ("Corrected hour entry c: replaced by entry c2, 60.00 h of "
                                    "on_the_job on 2026-01-14")
    assert corrected["reason"] == "Typo"
    assert corrected["learner_id"] == "ana" and corrected["actor_role"] == "learner"


@pytest.mark.parametrize("seed", range(12))
def test_verify_reports_any_altered_dropped_or_swapped_entry(seed: int) -> None:
    rng = random.Random(seed)
    rows = trail(generate(20, seed=seed).envelopes)
    head, chain_heads = heads_of(rows)
    victim = rng.randrange(len(rows))
    tampered = [dict(r) for r in rows]
    action = ["alter", "drop", "swap"][seed % 3]
    if action == "alter":
        column = rng.choice([c for c in tampered[victim] if tampered[victim][c] is not None])
        value = tampered[victim][column]
        if isinstance(value, int):
            tampered[victim][column] = value + 1
        else:
            i = rng.randrange(len(value))
            tampered[victim][column] = value[:i] + chr(ord(value[i]) ^ 1) + value[i + 1:]
        expected = rows[victim]["position"]
    elif action == "drop":
        del tampered[victim]
        expected = rows[victim]["position"]
    else:
        other = (victim + 1 + rng.randrange(len(rows) - 1)) % len(rows)
        a, b = sorted((victim, other))
        keep_a, keep_b = tampered[a]["position"], tampered[b]["position"]
        tampered[a], tampered[b] = tampered[b], tampered[a]
        tampered[a]["position"], tampered[b]["position"] = keep_a, keep_b
        expected = keep_a
    report = audit.verify_rows(tampered, head, chain_heads)
    assert report.problem is not None, action
    assert report.problem.position in (expected, None) or action == "drop", report.problem
    if report.problem.position is not None:
        assert report.problem.position <= expected + (1 if action == "drop" else 0)
