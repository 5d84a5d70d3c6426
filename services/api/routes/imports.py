"""Imports over HTTP: the same CSV import as ``wbl import`` (``services/importing``), for a
coordinator's own organisation, answering its validation report.

Every row goes through the ledger's own commands, so the domain's rules judge it as they
judge a live command; rows naming another organisation are refused (``confined``), since a
coordinator acts only within their own. ``all-or-nothing`` records the whole file or
nothing; ``valid-rows`` records the rows that pass. Importing the same file again records
nothing (``FileImported`` is keyed by the file's SHA-256, the bytes of ``content`` as UTF-8,
as the CLI hashes the file). See docs/import.md.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from infra.database import personal_data_vault
from infra.personal_data import PersonalDataVault
from services.api.deps import ActorDep, LedgerDep
from services.api.errors import problem
from services.api.models import PROBLEM_RESPONSES, IdempotencyKey, Ident
from services.importing import ImportKind, ImportMode, ImportOptions, ImportReport, import_file

router = APIRouter(tags=["imports"], responses=PROBLEM_RESPONSES)


class RunImport(BaseModel):
    """A CSV file to import into the caller's organisation."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "kind": "timesheets", "organisation_id": "district-042",
        "file_name": "timesheets-2027-02.csv",
        "content": "placement_ref,work_date,minutes,decision\nP-17,2027-02-03,240,approved\n",
        "mode": "valid-rows"}]})

    kind: ImportKind = Field(description=(
        "What the file holds: `placements` (a school's tracker), `timesheets` or `rapids` "
        "(apprentice registrations); columns in docs/import.md."))
    organisation_id: str = Field(min_length=1, max_length=100, description=(
        "Your organisation: the default of rows that name none; rows naming another are "
        "refused (`not-your-organisation`)."))
    file_name: str = Field(min_length=1, max_length=255, description=(
        "The file's name, kept with the import's record."))
    content: str = Field(min_length=1, description=(
        "The file itself, as UTF-8 text (the request body limit bounds its size; larger "
        "files go through `wbl import`)."))
    mode: ImportMode = Field(ImportMode.ALL_OR_NOTHING, description=(
        "`all-or-nothing` records every row or none; `valid-rows` records the rows that "
        "pass and reports the others."))
    program_id: UUID | None = Field(None, description="RAPIDS: the registered program.")
    supervisor_id: Ident | None = Field(None, description=(
        "RAPIDS: the journeyworker who supervises the apprentices."))


class RowRefusal(BaseModel):
    row: int = Field(description="Line in the file (the header is line 1).")
    rule: str = Field(description="The rule that refused it, as in problem types.")
    field: str | None = Field(description="The column at fault, when one is.")
    reason: str


class ImportReportOut(BaseModel):
    """The validation report: what was recorded, and each refused row with its rule."""

    file_name: str
    file_hash: str = Field(description="SHA-256 of the content: the import's identity.")
    kind: str
    mode: str
    rows_total: int
    rows_recorded: int
    rows_unchanged: int = Field(description="Rows already in the ledger, left as they are.")
    rejected: list[RowRefusal]
    recorded: bool = Field(description="Whether anything was recorded.")
    already_imported: bool = Field(description="This file was imported before: nothing new.")
    position: int = Field(description="Position of the import's last event (0 if none).")

    @classmethod
    def of(cls, report: ImportReport) -> ImportReportOut:
        return cls(file_name=report.file_name, file_hash=report.file_hash, kind=report.kind,
                   mode=report.mode, rows_total=report.rows_total,
                   rows_recorded=report.rows_recorded, rows_unchanged=report.rows_unchanged,
                   rejected=[RowRefusal(row=r.row, rule=r.code, field=r.field,
                                        reason=r.detail) for r in report.rejected],
                   recorded=report.recorded, already_imported=report.already_imported,
                   position=report.position)


def _vault(request: Request) -> PersonalDataVault:
    vault: PersonalDataVault | None = getattr(request.app.state, "vault", None)
    if vault is None:
        vault = request.app.state.vault = personal_data_vault(request.app.state.runtime.settings)
    return vault


@router.post("/imports", status_code=201, response_model=ImportReportOut, responses={
    200: {"description": "This file was imported before: nothing recorded",
          "model": ImportReportOut}})
async def run_import(body: RunImport, request: Request, ledger: LedgerDep, actor: ActorDep,
                     response: Response, idempotency_key: IdempotencyKey = None
                     ) -> ImportReportOut | JSONResponse:
    """Record ``FileImported`` with the events of every row recorded. When rows were
    refused and nothing was recorded: 422 ``import-refused``, each refused row in
    ``errors`` and the whole report in ``report``."""
    options = ImportOptions(organisation_id=body.organisation_id, program_id=body.program_id,
                            supervisor_id=body.supervisor_id, confined=True)
    vault = _vault(request)
    report = await run_in_threadpool(
        lambda: import_file(ledger, vault, actor, kind=body.kind,
                            data=body.content.encode("utf-8"), file_name=body.file_name,
                            mode=body.mode, options=options))
    out = ImportReportOut.of(report)
    if report.already_imported:
        response.status_code = 200
    elif not report.recorded and report.rejected:
        first = report.rejected[0]
        issues = [{"field": f"row {r.row}" + (f": {r.field}" if r.field else ""),
                   "kind": r.code, "message": r.detail} for r in report.rejected]
        return problem(request, 422, "import-refused", "The import was refused",
                       f"{len(report.rejected)} row(s) refused and nothing recorded; the "
                       f"first, line {first.row}: {first.detail}", field="content",
                       errors=issues, report=out.model_dump(mode="json"))
    return out
