"""The state auditor's pages: the kept runs of the state report (cut-off, content hash,
download, difference from the previous run), running and keeping a new one, and whether
the audit trail verifies against its signed checkpoints."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from domain.actor import Role
from services.api.authz import PAGES_TAG
from services.web.api_client import Refused
from services.web.deps import (
    PAGE_SIZE,
    ApiDep,
    FormDep,
    paging,
    redirect,
    render,
    role_page,
)
from services.web.sessions import Session

router = APIRouter(include_in_schema=False, tags=[PAGES_TAG])
Auditor = Annotated[Session, role_page(Role.STATE_AUDITOR)]
RunId = Annotated[int, Path(ge=1, le=2**53)]


async def _runs_page(request: Request, api: Any, *, period: str, offset: int,
                     errors: dict[str, tuple[str, str]] | None = None,
                     values: dict[str, str] | None = None, problem: Any = None,
                     status_code: int = 200) -> HTMLResponse:
    found: dict[str, Any] = {"total": 0, "runs": []}
    try:
        found = await api.get("/reports/state/runs", period=period, limit=PAGE_SIZE,
                              offset=offset)
    except Refused as refused:
        problem = problem or (refused.code, refused.detail)
    return render(request, "auditor/runs.html", {
        "runs": found["runs"], "period": period, "errors": errors or {},
        "values": values or {}, "problem": problem,
        "page": paging(request, offset=offset, shown=len(found["runs"]),
                       total=found["total"])}, status_code=status_code)


@router.get("/auditor", response_class=HTMLResponse)
async def runs(request: Request, session: Auditor, api: ApiDep,
               period: Annotated[str, Query(max_length=50)] = "",
               offset: Annotated[int, Query(ge=0)] = 0) -> HTMLResponse:
    return await _runs_page(request, api, period=period, offset=offset)


@router.post("/auditor/runs", response_class=HTMLResponse)
async def keep_run(request: Request, session: Auditor, api: ApiDep,
                   form: FormDep) -> Response:
    values = {k: str(form.get(k, "")).strip() for k in
              ("period", "starts_on", "ends_on", "position", "min_cell")}
    body: dict[str, Any] = {"period": values["period"], "starts_on": values["starts_on"],
                            "ends_on": values["ends_on"],
                            "min_cell": values["min_cell"] or 10}
    if values["position"]:
        body["position"] = values["position"]
    try:
        run = await api.post("/reports/state/runs", body, key=form.get("form_id"))
    except Refused as refused:
        errors = refused.by_field()
        return await _runs_page(request, api, period="", offset=0, errors=errors,
                                values=values,
                                problem=None if errors else (refused.code, refused.detail),
                                status_code=422)
    return redirect(f"/auditor/runs/{run['id']}")


@router.get("/auditor/runs/{run_id}", response_class=HTMLResponse)
async def run(request: Request, run_id: RunId, session: Auditor, api: ApiDep) -> HTMLResponse:
    try:
        report = await api.get(f"/reports/state/runs/{run_id}")
        changes = await api.get(f"/reports/state/runs/{run_id}/difference")
    except Refused as refused:
        return render(request, "error.html", {"code": refused.code,
                                              "message": refused.detail},
                      status_code=refused.status)
    suppressed = sum(1 for f in report["figures"] if f["suppressed"])
    return render(request, "auditor/run.html", {
        "run_id": run_id, "report": report, "changes": changes,
        "suppressed": suppressed})


@router.get("/auditor/runs/{run_id}/download")
async def download(run_id: RunId, session: Auditor, api: ApiDep,
                   format: Annotated[str, Query(pattern="^(json|csv)$")] = "json") -> Response:
    answer = await api.raw(f"/reports/state/runs/{run_id}", format=format)
    media = "text/csv" if format == "csv" else "application/json"
    return Response(answer.content, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="state-report-run-{run_id}.{format}"'})


@router.get("/auditor/audit-trail", response_class=HTMLResponse)
async def audit_trail(request: Request, session: Auditor, api: ApiDep,
                      verify: bool = False) -> HTMLResponse:
    """Verification recomputes every hash chain of the whole history and reads the signed
    checkpoints back from the broker: seconds on a state's history, so it runs when the
    auditor asks (``?verify=1``), not on every visit."""
    verdict = None
    if verify:
        try:
            verdict = await api.get("/audit-trail/verify")
        except Refused as refused:
            return render(request, "error.html", {"code": refused.code,
                                                  "message": refused.detail},
                          status_code=refused.status)
    return render(request, "auditor/audit_trail.html", {"verdict": verdict})
