"""Transcript notations: a learner's work-based-learning experiences, for a student
information system (JSON, CSV) and as Open Badges 3.0 / CLR 2.0 documents.

Authorisation (to be enforced by the central policy): a learner reads their own transcript
only; a supervisor only the experiences of their own placements; a coordinator those of
their own organisation; a sponsor those of their own programs' apprentices; a state
auditor none (the audit trail is theirs); a researcher none.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from projections.apprenticeship_hours import ApprenticeshipHoursProjection
from projections.transcript import (
    Experience,
    TranscriptConfig,
    TranscriptProjection,
    export_rows,
    to_csv,
)
from services.api.deps import ActorDep, EngineDep, RuntimeDep, SettingsDep
from services.api.errors import ProblemError
from services.api.models import PROBLEM_RESPONSES
from services.api.read_your_writes import read_your_writes as wait
from services.api.routes.credentials import credentials_service

router = APIRouter(tags=["transcripts"])

MAX_POSITION = 2**62  # within SQLite's and PostgreSQL's 64-bit integers

MinPosition = Annotated[
    int | None,
    Query(ge=1, le=MAX_POSITION,
          description="Wait (briefly) until the read models include this position, as "
                      "answered by a command: read your own writes."),
]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=MAX_POSITION)]
LearnerId = Annotated[str, Path(min_length=1, max_length=100)]


def read_your_writes(runtime: Any, settings: Any, min_position: int | None,
                     aggregate_id: str | None = None) -> None:
    """Wait for ``min_position`` (of ``aggregate_id`` when the query is about one), or
    answer 503; see ``services.api.read_your_writes``."""
    wait(runtime.engine, runtime.ledger.recorder, settings.read_wait_timeout_s, min_position,
         aggregate_id)


class EvaluationOut(BaseModel):
    evaluation_id: str
    stage: str
    evaluator_role: str
    evaluated_on: date
    scores: dict[str, int]


class CredentialOut(BaseModel):
    credential_id: str
    kind: str = Field(description="Open Badges 3.0 achievementType")
    issuer: str
    issued_on: date
    expires_on: date | None = None
    status: str = Field("in force", description="`in force`, `revoked` or `reissued`")
    status_changed_on: date | None = Field(None, description="When it was revoked or "
                                                             "reissued")
    status_reason: str | None = Field(None, description="Why it was revoked or reissued")
    replaced_by: str | None = Field(None, description="The credential reissued in its place")
    replaces: str | None = Field(None, description="The credential this one replaced")


class ExperienceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    placement_id: str
    learner_id: str
    organisation_id: str
    opportunity_id: str
    program_id: str | None
    wbl_type: str = Field(description="CEDS 001499 option")
    wbl_type_label: str
    notation_code: str
    title: str | None = Field(description="null until the opportunity's event is read")
    employer_name: str | None
    first_day: date
    last_day: date
    approved_hours: Decimal
    approved_minutes: int
    pending_minutes: int
    rejected_minutes: int
    status: str
    status_label: str
    evaluation_summary: str | None
    evaluations: list[EvaluationOut]
    credentials: list[CredentialOut]
    competencies_signed_off: list[str]
    notation: str = Field(examples=["WBL-INTERN | Acme Robotics | 2026-01-12..2026-05-22 | "
                                    "120.0 h | Completed | Credential: Fieldwork (OSHA-10)"])
    course_code: str
    credits: Decimal
    version: int
    position: int

    @classmethod
    def of(cls, e: Experience, config: TranscriptConfig) -> ExperienceOut:
        first, last = e.dates
        return cls(
            placement_id=e.placement_id, learner_id=e.learner_id,
            organisation_id=e.organisation_id, opportunity_id=e.opportunity_id,
            program_id=e.program_id, wbl_type=e.wbl_type, wbl_type_label=e.wbl_type_label,
            notation_code=e.notation_code, title=e.title, employer_name=e.employer_name,
            first_day=date.fromisoformat(first), last_day=date.fromisoformat(last),
            approved_hours=e.approved_hours, approved_minutes=e.approved_minutes,
            pending_minutes=e.pending_minutes, rejected_minutes=e.rejected_minutes,
            status=e.status, status_label=e.status_label,
            evaluation_summary=e.evaluation_summary,
            evaluations=[EvaluationOut(**v) for v in e.evaluations],
            credentials=[CredentialOut(**{k: v for k, v in c.items()
                                          if k in CredentialOut.model_fields})
                         for c in e.credentials],
            competencies_signed_off=e.competencies_signed_off, notation=e.notation(),
            course_code=config.course_code, credits=e.credits(config), version=e.version,
            position=e.position,
        )


class TranscriptOut(BaseModel):
    learner_id: str
    course_code: str
    experiences: list[ExperienceOut]
    limit: int
    offset: int


def _config(course_code: str | None, credits: Decimal | None) -> TranscriptConfig:
    base = TranscriptConfig()
    return TranscriptConfig(course_code=course_code or base.course_code,
                            credits=credits if credits is not None else base.credits)


CourseCode = Annotated[str | None, Query(max_length=40, description="State course code "
                                                                    "(default WBL)")]
Credits = Annotated[Decimal | None, Query(ge=0, le=100, max_digits=6, decimal_places=2,
                                          description="Credits per completed experience")]


@router.get("/learners/{learner_id}/transcript", response_model=TranscriptOut,
            responses=PROBLEM_RESPONSES)
def learner_transcript(
    learner_id: LearnerId, runtime: RuntimeDep, engine: EngineDep, settings: SettingsDep,
    actor: ActorDep, status: str | None = None, wbl_type: str | None = None,
    course_code: CourseCode = None, credits: Credits = None, limit: Limit = 100,
    offset: Offset = 0, min_position: MinPosition = None,
    placement_id: Annotated[str | None, Query(description="Only this placement; with "
                                                          "min_position, the one to wait for")
                            ] = None,
) -> TranscriptOut:
    """Every experience of one learner, oldest first, with its notation line."""
    read_your_writes(runtime, settings, min_position, placement_id)
    config = _config(course_code, credits)
    with engine.connect() as conn:
        found = TranscriptProjection().experiences(
            conn, learner_id=learner_id, placement_id=placement_id, status=status,
            wbl_type=wbl_type, limit=limit, offset=offset)
    return TranscriptOut(learner_id=learner_id, course_code=config.course_code,
                         experiences=[ExperienceOut.of(e, config) for e in found],
                         limit=limit, offset=offset)


@router.get("/learners/{learner_id}/transcript/export", responses={
    200: {"content": {"text/csv": {}, "application/json": {}}}, **PROBLEM_RESPONSES})
def export_transcript(
    learner_id: LearnerId, runtime: RuntimeDep, engine: EngineDep, settings: SettingsDep,
    actor: ActorDep, format: Literal["csv", "json"] = "csv", course_code: CourseCode = None,
    credits: Credits = None, min_position: MinPosition = None,
) -> Response:
    """The notation lines a student information system imports (CSV or JSON)."""
    read_your_writes(runtime, settings, min_position)
    config = _config(course_code, credits)
    with engine.connect() as conn:
        found = TranscriptProjection().experiences(conn, learner_id=learner_id, limit=10_000)
    if format == "csv":
        # RFC 6266: an ASCII fallback name, and the learner's id percent-encoded as UTF-8
        name = quote(f"transcript-{learner_id}.csv", safe="")
        return Response(to_csv(found, config), media_type="text/csv", headers={
            "Content-Disposition": f"attachment; filename=\"transcript.csv\"; "
                                   f"filename*=UTF-8''{name}"})
    import json

    return Response(json.dumps(export_rows(found, config)), media_type="application/json")


@router.get("/transcripts/experiences", response_model=list[ExperienceOut],
            responses=PROBLEM_RESPONSES)
def list_experiences(
    runtime: RuntimeDep, engine: EngineDep, settings: SettingsDep, actor: ActorDep,
    organisation_id: str | None = None, supervisor_id: str | None = None,
    learner_id: str | None = None, status: str | None = None, wbl_type: str | None = None,
    sponsor_id: Annotated[str | None, Query(max_length=100, description=(
        "Only the placements in this sponsor's programs (a sponsor names itself)."))] = None,
    placement_id: Annotated[list[str] | None, Query(max_length=100, description=(
        "Only these placements (repeat the parameter; within the caller's scope)."))] = None,
    course_code: CourseCode = None, credits: Credits = None, limit: Limit = 100,
    offset: Offset = 0, min_position: MinPosition = None,
) -> list[ExperienceOut]:
    """Experiences across learners: a coordinator's organisation, a supervisor's placements,
    a sponsor's apprentices."""
    read_your_writes(runtime, settings, min_position)
    config = _config(course_code, credits)
    with engine.connect() as conn:
        programs = None
        if sponsor_id is not None:
            programs = ApprenticeshipHoursProjection().program_ids_of(conn, sponsor_id)
        found = TranscriptProjection().experiences(
            conn, organisation_id=organisation_id, supervisor_id=supervisor_id,
            learner_id=learner_id, status=status, wbl_type=wbl_type, limit=limit,
            offset=offset, program_ids=programs, placement_ids=placement_id)
    return [ExperienceOut.of(e, config) for e in found]


class PendingEntryOut(BaseModel):
    placement_id: str
    entry_id: str
    learner_id: str
    organisation_id: str
    work_date: str
    minutes: int
    kind: str


class PendingHoursOut(BaseModel):
    total: int = Field(description="Entries awaiting review in all (not only this page).")
    entries: list[PendingEntryOut]


@router.get("/pending-hours", response_model=PendingHoursOut, responses=PROBLEM_RESPONSES)
def pending_hours(
    runtime: RuntimeDep, engine: EngineDep, settings: SettingsDep, actor: ActorDep,
    supervisor_id: Annotated[str, Query(min_length=1, max_length=200, description=(
        "Whose review the entries await (a supervisor names themself)."))],
    learner_id: Annotated[str | None, Query(max_length=200)] = None,
    kind: Annotated[Literal["on_the_job", "related_instruction"] | None, Query()] = None,
    limit: Limit = 100, offset: Offset = 0, min_position: MinPosition = None,
) -> PendingHoursOut:
    """Hour entries awaiting a supervisor's review across all their placements, oldest work
    date first, from the read models (one query however many placements): the supervisor's
    approval queue. ``GET /placements/{id}/hours`` has an entry's every detail."""
    read_your_writes(runtime, settings, min_position)
    with engine.connect() as conn:
        total, rows = TranscriptProjection().pending_entries(
            conn, supervisor_id=supervisor_id, learner_id=learner_id, kind=kind, limit=limit,
            offset=offset)
    return PendingHoursOut(total=total, entries=[PendingEntryOut(**r) for r in rows])


@router.get("/learners/{learner_id}/credentials/{credential_id}/open-badge",
            responses=PROBLEM_RESPONSES)
def credential_open_badge(
    learner_id: LearnerId, credential_id: Annotated[str, Path(max_length=200)],
    runtime: RuntimeDep, engine: EngineDep, request: Request,
    settings: SettingsDep, actor: ActorDep, min_position: MinPosition = None,
) -> dict[str, Any]:
    """The credential as a signed Open Badges 3.0 ``OpenBadgeCredential`` (Data Integrity
    proof, eddsa-rdfc-2022). A revoked or reissued credential is still served, signed as
    issued: its status entry is what tells a verifier it no longer stands."""
    read_your_writes(runtime, settings, min_position)
    with engine.connect() as conn:
        found = TranscriptProjection().experiences(conn, learner_id=learner_id, limit=10_000)
    for experience in found:
        for credential in experience.credentials:
            if credential["credential_id"] == credential_id:
                return credentials_service(request).signed_badge(experience, credential)
    raise ProblemError(404, "unknown-credential", "Unknown id",
                       f"No credential {credential_id} is recorded for this learner.",
                       field="credential_id")


@router.get("/learners/{learner_id}/clr", responses=PROBLEM_RESPONSES)
def learner_clr(
    learner_id: LearnerId, runtime: RuntimeDep, engine: EngineDep, settings: SettingsDep,
    actor: ActorDep, request: Request, min_position: MinPosition = None,
) -> dict[str, Any]:
    """The learner's record as a signed CLR 2.0 ``ClrCredential``, issued now by the
    deployment (``WBL_CLR_ISSUER_NAME``): every experience as an achievement, every
    credential in force embedded with its own proof."""
    read_your_writes(runtime, settings, min_position)
    with engine.connect() as conn:
        found = TranscriptProjection().experiences(conn, learner_id=learner_id, limit=10_000)
    record = credentials_service(request).signed_clr(learner_id, found)
    if record is None:
        raise ProblemError(404, "no-credentials", "Nothing to put in a CLR",
                           "This learner holds no credential in force; a CLR embeds at "
                           "least one.")
    return record
