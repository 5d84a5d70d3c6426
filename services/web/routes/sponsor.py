"""The sponsor's pages: the apprentices of my programs (hours, completion, credentials) and
the RAPIDS export. Everything through the API as the signed-in sponsor, whose organisation
is its sponsor id (decision 054)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from domain.actor import Role
from services.api.authz import PAGES_TAG
from services.web.api_client import Refused
from services.web.deps import PAGE_SIZE, ApiDep, paging, render, role_page
from services.web.sessions import Session

router = APIRouter(include_in_schema=False, tags=[PAGES_TAG])
Sponsor = Annotated[Session, role_page(Role.SPONSOR)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]

STATUSES = [("", "Any status"), ("active", "Active"), ("completed", "Completed"),
            ("suspended", "Suspended"), ("withdrawn", "Withdrawn"), ("matched", "Matched"),
            ("agreed", "Agreed")]


def hours(minutes: int | None) -> str:
    """Minutes as h:mm (exact: integer arithmetic, never a float)."""
    if minutes is None:
        return "-"
    sign = "-" if minutes < 0 else ""
    whole, rest = divmod(abs(minutes), 60)
    return f"{sign}{whole}:{rest:02d}"


@router.get("/sponsor", response_class=HTMLResponse)
async def apprentices(request: Request, session: Sponsor, api: ApiDep,
                      program_id: Annotated[str, Query(max_length=100)] = "",
                      status: Annotated[str, Query(max_length=20)] = "",
                      offset: Offset = 0) -> HTMLResponse:
    sponsor = session.organisation_id
    problem = None
    rows: list[dict[str, Any]] = []
    credentials: dict[str, list[dict[str, Any]]] = {}
    try:
        rows = await api.get("/apprenticeship-hours", sponsor_id=sponsor,
                             program_id=program_id, status=status, limit=PAGE_SIZE,
                             offset=offset)
        if rows:
            wanted = {r["placement_id"] for r in rows}
            experiences = await api.get("/transcripts/experiences", sponsor_id=sponsor,
                                        placement_id=sorted(wanted), limit=len(wanted))
            credentials = {e["placement_id"]: e.get("credentials", []) for e in experiences
                           if e["placement_id"] in wanted}
    except Refused as refused:
        problem = (refused.code, refused.detail)
    return render(request, "sponsor/apprentices.html", {
        "rows": rows, "credentials": credentials, "hours": hours, "problem": problem,
        "filters": {"program_id": program_id, "status": status}, "statuses": STATUSES,
        "page": paging(request, offset=offset, shown=len(rows))})


TABLES = [("registrations", "Registrations (bulk upload)"),
          ("status-changes", "Status changes")]


@router.get("/sponsor/rapids", response_class=HTMLResponse)
async def rapids(request: Request, session: Sponsor, api: ApiDep,
                 table: Annotated[str, Query(pattern="^(registrations|status-changes)$")] =
                 "registrations", show: bool = False, offset: Offset = 0) -> HTMLResponse:
    """The export is computed from the whole event log as of now (reproducible at that
    cut-off), which takes a while on a large history: it is shown when asked for."""
    problem = None
    export: dict[str, Any] = {"rows": [], "missing": [], "cutoff_position": None}
    if show:
        try:
            export = await api.get("/exports/rapids", sponsor_id=session.organisation_id,
                                   table=table)
        except Refused as refused:
            problem = (refused.code, refused.detail)
    rows = export["rows"]
    shown = rows[offset:offset + PAGE_SIZE]
    columns = list(shown[0]) if shown else []
    return render(request, "sponsor/rapids.html", {
        "table": table, "tables": TABLES, "rows": shown, "columns": columns, "show": show,
        "missing": export.get("missing", []), "cutoff": export.get("cutoff_position"),
        "problem": problem, "page": paging(request, offset=offset, shown=len(shown),
                                           total=len(rows))})


@router.get("/sponsor/rapids.csv")
async def rapids_csv(session: Sponsor, api: ApiDep,
                     table: Annotated[str, Query(pattern="^(registrations|status-changes)$")]
                     = "registrations") -> Response:
    answer = await api.raw("/exports/rapids", sponsor_id=session.organisation_id,
                           table=table, format="csv")
    return Response(answer.content, media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="rapids-{table}.csv"'})
