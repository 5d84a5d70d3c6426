"""State reports for auditors, and pseudonymised exports for researchers.

Both are computed from the event log as of a cut-off (default: everything recorded), like
their CLI twins `wbl report state` and `wbl research export` (docs/reporting.md).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, func, select

from infra.database import personal_data_vault
from infra.personal_data import PersonalDataVault
from projections.state_report import (
    HierarchyUnresolved,
    ReportingPeriod,
    difference,
    to_csv_rows,
)
from services.api.deps import EngineDep, LedgerDep, SettingsDep
from services.api.errors import ProblemError
from services.api.models import PROBLEM_RESPONSES, IdempotencyKey, UtcDateTime
from services.jobs.rapids_export import (
    RAPIDS_EVENTS,
    rapids_export,
    status_fields,
    to_csv,
    upload_fields,
)
from services.jobs.reporting import (
    CutoffError,
    compute_state_report,
    envelopes_until,
    reporting_metadata,
    resolve_cutoff,
    save_report,
    state_reports,
)
from services.jobs.research import load_or_create_key, research_tables

router = APIRouter(tags=["reports"])


class Figure(BaseModel):
    organisation_id: str
    measure: str
    dimension: str
    group: str
    value: int | str | None
    suppressed: bool


class Perkins5S3(BaseModel):
    organisation_id: str
    dimension: str
    group: str
    percent: str | None
    suppressed: bool


class StateReport(BaseModel):
    report: str
    format_version: int
    period: dict[str, str]
    cutoff: dict[str, int | str]
    suppression: dict[str, Any]
    measures: dict[str, str]
    dimensions: list[str]
    organisations: list[dict[str, str | None]]
    figures: list[Figure]
    perkins_5s3: list[Perkins5S3]
    content_hash: str


def _vault(request: Request) -> PersonalDataVault:
    vault: PersonalDataVault | None = getattr(request.app.state, "vault", None)
    if vault is None:
        vault = personal_data_vault(request.app.state.runtime.settings)
        request.app.state.vault = vault
    return vault


Position = Annotated[int | None, Query(ge=1, le=2**53, description="Cut-off position.")]


@router.get("/reports/state", response_model=StateReport, responses={
    **PROBLEM_RESPONSES, 200: {"content": {"text/csv": {}}}})
def state_report(
    request: Request, ledger: LedgerDep, engine: EngineDep, settings: SettingsDep,
    period: Annotated[str, Query(min_length=1, max_length=50, examples=["2025-26"])],
    starts_on: date, ends_on: date, position: Position = None,
    min_cell: Annotated[int, Query(ge=1, le=1000)] = 10,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Any:
    """The state feed for a reporting period, as of a cut-off, rolled up the organisation
    hierarchy as it stood then, small cells suppressed so that every suppressed figure keeps
    a range at least `min_cell` wide (audit it with `wbl report audit`)."""
    if ends_on < starts_on:
        raise ProblemError(422, "dates-reversed", "The period ends before it starts",
                           f"{ends_on} is before {starts_on}.", field="ends_on")
    try:
        report = compute_state_report(ledger, engine, _vault(request), settings,
                                      ReportingPeriod(period, starts_on, ends_on),
                                      position=position, min_cell=min_cell)
    except CutoffError as error:
        raise ProblemError(422, "cutoff-beyond-log", "No such position", str(error),
                           field="position") from None
    except HierarchyUnresolved as error:
        raise ProblemError(422, "hierarchy-unresolved",
                           "The organisation hierarchy at the cut-off is incomplete",
                           str(error)) from None
    if format == "csv":
        out = io.StringIO()
        csv.writer(out).writerows(to_csv_rows(report))
        return Response(out.getvalue(), media_type="text/csv")
    return report


class ReportRunOut(BaseModel):
    """One kept run of the state report (``wbl report state`` or ``POST
    /reports/state/runs``): what was sent, as of which cut-off, with its content hash."""

    id: int
    period: str
    starts_on: str
    ends_on: str
    cutoff_position: int
    cutoff_recorded_at: str
    content_hash: str
    min_cell: int
    created_at: UtcDateTime


class ReportRunsOut(BaseModel):
    total: int
    runs: list[ReportRunOut]


class KeepReportRun(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "period": "2025-26", "starts_on": "2025-07-01", "ends_on": "2026-06-30"}]})
    period: str = Field(min_length=1, max_length=50, description="The reporting period's name.")
    starts_on: date = Field(description="First day of the period.")
    ends_on: date = Field(description="Last day of the period.")
    position: int | None = Field(None, ge=1, le=2**53, description=(
        "Cut-off position; the end of the log when absent."))
    min_cell: int = Field(10, ge=1, le=1000, description="Suppress cells under this size.")


class ReportDifferenceOut(BaseModel):
    run_id: int
    previous_run_id: int | None
    changes: list[dict[str, Any]]


def _run_out(row: Any) -> ReportRunOut:
    body = json.loads(row.body)
    return ReportRunOut(
        id=row.id, period=row.period, starts_on=str(body["period"].get("starts_on", "")),
        ends_on=str(body["period"].get("ends_on", "")), cutoff_position=row.cutoff_position,
        cutoff_recorded_at=str(body["cutoff"].get("recorded_at", "")),
        content_hash=row.content_hash,
        min_cell=int(body.get("suppression", {}).get("min_cell", 0)), created_at=row.created_at)


def _kept(engine: Engine, run_id: int) -> Any:
    reporting_metadata.create_all(engine)
    with engine.connect() as conn:
        row = conn.execute(select(state_reports).where(state_reports.c.id == run_id)).first()
    if row is None:
        raise ProblemError(404, "unknown-report-run", "Unknown id",
                           f"No report run {run_id} is kept.", field="run_id")
    return row


@router.get("/reports/state/runs", response_model=ReportRunsOut, responses=PROBLEM_RESPONSES)
def report_runs(
    engine: EngineDep,
    period: Annotated[str | None, Query(max_length=50)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ReportRunsOut:
    """The kept runs of the state report, newest first: period, cut-off, content hash."""
    reporting_metadata.create_all(engine)
    query = select(state_reports)
    counted = select(func.count()).select_from(state_reports)
    if period:
        query = query.where(state_reports.c.period == period)
        counted = counted.where(state_reports.c.period == period)
    with engine.connect() as conn:
        total = conn.execute(counted).scalar_one()
        rows = conn.execute(query.order_by(state_reports.c.id.desc())
                            .limit(limit).offset(offset)).all()
    return ReportRunsOut(total=total, runs=[_run_out(r) for r in rows])


@router.post("/reports/state/runs", status_code=201, response_model=ReportRunOut,
             responses=PROBLEM_RESPONSES)
def keep_report_run(request: Request, body: KeepReportRun, ledger: LedgerDep,
                    engine: EngineDep, settings: SettingsDep,
                    idempotency_key: IdempotencyKey = None) -> ReportRunOut:
    """Compute the state report as of the cut-off and keep it as a run (as `wbl report
    state` does), so it can be downloaded and compared with the next run."""
    report = state_report(request, ledger, engine, settings, period=body.period,
                          starts_on=body.starts_on, ends_on=body.ends_on,
                          position=body.position, min_cell=body.min_cell)
    save_report(engine, report)
    with engine.connect() as conn:
        row = conn.execute(select(state_reports).order_by(state_reports.c.id.desc())
                           .where(state_reports.c.content_hash == report["content_hash"])
                           .limit(1)).first()
    return _run_out(row)


@router.get("/reports/state/runs/{run_id}", response_model=StateReport, responses={
    **PROBLEM_RESPONSES, 200: {"content": {"text/csv": {}}}})
def report_run(engine: EngineDep, run_id: Annotated[int, Path(ge=1, le=2**53)],
               format: Annotated[str, Query(pattern="^(json|csv)$")] = "json") -> Any:
    """A kept run, exactly as it was kept (JSON), or its figures as CSV."""
    report = json.loads(_kept(engine, run_id).body)
    if format == "csv":
        out = io.StringIO()
        csv.writer(out).writerows(to_csv_rows(report))
        return Response(out.getvalue(), media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="state-report-run-{run_id}.csv"'})
    return report


@router.get("/reports/state/runs/{run_id}/difference", response_model=ReportDifferenceOut,
            responses=PROBLEM_RESPONSES)
def report_run_difference(engine: EngineDep, run_id: Annotated[int, Path(ge=1, le=2**53)]
                          ) -> ReportDifferenceOut:
    """What changed since the run kept before this one for the same period (late
    corrections, late registrations): every published cell whose value changed."""
    row = _kept(engine, run_id)
    with engine.connect() as conn:
        previous = conn.execute(
            select(state_reports).where(state_reports.c.period == row.period,
                                        state_reports.c.id < run_id)
            .order_by(state_reports.c.id.desc()).limit(1)).first()
    if previous is None:
        return ReportDifferenceOut(run_id=run_id, previous_run_id=None, changes=[])
    return ReportDifferenceOut(run_id=run_id, previous_run_id=previous.id,
                               changes=difference(json.loads(previous.body),
                                                  json.loads(row.body)))


class ResearchRows(BaseModel):
    cutoff_position: int
    rows: list[dict[str, Any]]


def _research(request: Request, ledger: LedgerDep, settings: SettingsDep,
              position: int | None) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
    try:
        cutoff, _ = resolve_cutoff(ledger, position=position)
    except CutoffError as error:
        raise ProblemError(422, "cutoff-beyond-log", "No such position", str(error),
                           field="position") from None
    key = load_or_create_key(settings.research_key, settings.data_dir /
                             "research-pseudonym.key")
    placements, learners = research_tables(
        envelopes_until(ledger, cutoff, settings.event_source), _vault(request), key)
    return cutoff, placements, learners


@router.get("/research/placements", response_model=ResearchRows,
            responses=PROBLEM_RESPONSES)
def research_placements(request: Request, ledger: LedgerDep, settings: SettingsDep,
                        position: Position = None) -> ResearchRows:
    """Per-placement facts, learners and supervisors as keyed-hash pseudonyms."""
    cutoff, placements, _ = _research(request, ledger, settings, position)
    return ResearchRows(cutoff_position=cutoff, rows=placements)


@router.get("/research/learners", response_model=ResearchRows, responses=PROBLEM_RESPONSES)
def research_learners(request: Request, ledger: LedgerDep, settings: SettingsDep,
                      position: Position = None) -> ResearchRows:
    """Per-learner facts (groups coarsened, no names or dates of birth), pseudonymised."""
    cutoff, _, learners = _research(request, ledger, settings, position)
    return ResearchRows(cutoff_position=cutoff, rows=learners)


class RapidsRows(BaseModel):
    cutoff_position: int
    table: str
    rows: list[dict[str, str]]
    missing: list[dict[str, str]]


@router.get("/exports/rapids", response_model=RapidsRows, responses={
    **PROBLEM_RESPONSES, 200: {"content": {"text/csv": {}}}})
def rapids(
    request: Request, ledger: LedgerDep, settings: SettingsDep,
    sponsor_id: Annotated[str | None, Query(max_length=100, description=(
        "Only this sponsor's programs (a sponsor must name itself)."))] = None,
    table: Annotated[str, Query(pattern="^(registrations|status-changes)$")] =
        "registrations",
    position: Position = None,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Any:
    """Registered apprentices (the RAPIDS bulk-upload layout) or their status changes
    (credit granted, completion, suspension, reinstatement, cancellation with cause), as
    of a cut-off. Fields the ledger does not keep are empty and listed in `missing`; `wbl
    export rapids --details` fills them from the sponsor's own file."""
    try:
        cutoff, recorded = resolve_cutoff(ledger, position=position)
    except CutoffError as error:
        raise ProblemError(422, "cutoff-beyond-log", "No such position", str(error),
                           field="position") from None
    export = rapids_export(envelopes_until(ledger, cutoff, settings.event_source, RAPIDS_EVENTS),
                           _vault(request).profiles_as_of(None, recorded),
                           sponsor_id=sponsor_id)
    rows = export.registrations if table == "registrations" else export.status_changes
    if format == "csv":
        fields = upload_fields() if table == "registrations" else status_fields()
        return Response(to_csv(rows, fields), media_type="text/csv")
    return RapidsRows(cutoff_position=cutoff, table=table, rows=rows,
                      missing=export.missing if table == "registrations" else [])
