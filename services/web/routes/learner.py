"""The learner's pages: my placements, the week timesheet, my entries (pending, approved,
rejected with the reason) and their corrections, progress toward the apprenticeship with a
chart of hours per week, and my transcript and credentials to download.

Every read and every command goes through the API as the signed-in learner (decision 054);
the API's refusals are shown beside the field they concern. How the week timesheet maps to
commands, and the PDF: decision 056.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from domain.actor import Role
from services.api.authz import PAGES_TAG
from services.web.api_client import Api, Refused
from services.web.deps import PAGE_SIZE, ApiDep, FormDep, paging, redirect, render, role_page
from services.web.hours_view import (
    KINDS,
    STATUS_FILTER,
    STATUS_LABEL,
    entry_body,
    entry_values,
    monday_of,
    parse_day,
    read_timesheet,
    refusal_fields,
    timesheet_days,
    today,
)
from services.web.placement_pages import (
    download,
    entry_of,
    every_page,
    offset_of,
    opportunity_of,
    placement_of,
    progress_context,
)
from services.web.sessions import Session
from services.web.transcript_pdf import transcript_pdf

router = APIRouter(include_in_schema=False, tags=[PAGES_TAG])
Learner = role_page(Role.LEARNER)

PLACEMENT_STATUSES = [("", "Any status"), ("active", "In progress"), ("matched", "Matched"),
                      ("suspended", "Suspended"), ("completed", "Completed"),
                      ("withdrawn", "Withdrawn")]
ENTRY_FILTERS = [("", "All entries"), ("pending", "Pending"), ("approved", "Approved"),
                 ("rejected", "Rejected"), ("superseded", "Replaced by a correction")]
KIND_FILTERS = [("", "Both kinds"), *KINDS]
DONE = {"corrected": "Your correction was sent; it waits for your supervisor's approval. "
                     "The entry it corrects stays in the history."}
"""Notices after a command, by the code in ``?done=`` (never text from the address)."""


def _work_processes(placement: dict[str, Any]) -> list[str]:
    return list(placement.get("work_processes") or [])


def _dates(placement: dict[str, Any]) -> tuple[date, date]:
    """The first day hours may be logged (the start, else the planned start) and the last."""
    now = today()
    opens = parse_day(placement.get("started_on") or placement["starts_on"]) or now
    return opens, parse_day(placement["ends_on"]) or now


def _summary(errors: dict[str, tuple[str, str]]) -> tuple[str, str]:
    rule, message = next(iter(errors.values()))
    return rule, message + (" See the fields marked below." if len(errors) > 1 else "")


async def _list(request: Request, api: Api, session: Session) -> dict[str, Any]:
    """A page of my placements (the transcript read model), with its status filter."""
    status = request.query_params.get("status", "")
    offset = offset_of(request)
    found = await api.get(f"/learners/{session.person_id}/transcript",
                          status=status if status in dict(PLACEMENT_STATUSES) else None,
                          limit=PAGE_SIZE + 1, offset=offset,
                          min_position=request.query_params.get("min_position"))
    experiences = found["experiences"]
    shown = experiences[:PAGE_SIZE]
    more = len(experiences) > PAGE_SIZE
    return {"experiences": shown, "status": status, "statuses": PLACEMENT_STATUSES,
            "course_code": found["course_code"],
            "page": paging(request, offset=offset, shown=len(shown),
                           total=None if more else offset + len(shown))}


# -- my placements --------------------------------------------------------------------------


@router.get("/learner", response_class=HTMLResponse)
async def my_placements(request: Request, api: ApiDep, session: Session = Learner
                        ) -> HTMLResponse:
    return render(request, "learner/placements.html", await _list(request, api, session))


# -- one placement: its entries -------------------------------------------------------------


@router.get("/learner/placements/{placement_id}", response_class=HTMLResponse)
async def placement_entries(placement_id: str, request: Request, api: ApiDep,
                            session: Session = Learner) -> HTMLResponse:
    placement = await placement_of(api, placement_id)
    hours = await api.get(f"/placements/{placement_id}/hours")
    wanted = request.query_params.get("status", "")
    kind = request.query_params.get("kind", "")
    entries = [e for e in hours["entries"]
               if (not wanted or e["status"] == STATUS_FILTER.get(wanted))
               and (not kind or e["kind"] == kind)]
    entries.sort(key=lambda e: (e["work_date"], e.get("start_time") or ""), reverse=True)
    offset = offset_of(request)
    shown = entries[offset:offset + PAGE_SIZE]
    return render(request, "learner/placement.html", {
        "placement": placement, "opportunity": await opportunity_of(api, placement),
        "entries": shown,
        "page": paging(request, offset=offset, shown=len(shown), total=len(entries)),
        "status": wanted, "kind": kind, "entry_filters": ENTRY_FILTERS,
        "kind_filters": KIND_FILTERS, "status_label": STATUS_LABEL,
        "correctable": placement["status"] in ("active", "suspended"),
        "flash": DONE.get(request.query_params.get("done", ""))})


# -- the week timesheet ---------------------------------------------------------------------


async def _timesheet(request: Request, api: Api, placement_id: str, *,
                     monday: date | None = None, values: dict[str, Any] | None = None,
                     errors: dict[str, tuple[str, str]] | None = None,
                     status_code: int = 200, **extra: Any) -> HTMLResponse:
    placement = await placement_of(api, placement_id)
    opens, ends = _dates(placement)
    now = today()
    if monday is None:
        chosen = parse_day(request.query_params.get("week"))
        monday = monday_of(chosen or min(max(now, opens), ends))
    hours = await api.get(f"/placements/{placement_id}/hours")
    days = timesheet_days(monday, hours["entries"], opens=opens, ends=ends, now=now)
    previous, following = monday - timedelta(days=7), monday + timedelta(days=7)
    base = f"/learner/placements/{placement_id}/timesheet?week="
    saved = request.query_params.get("saved", "")
    week = [e for d in days for e in d.entries]
    return render(request, "learner/timesheet.html", {
        "placement": placement, "opportunity": await opportunity_of(api, placement),
        "week_approved": sum(e["minutes"] for e in week if e["status"] == "approved"),
        "week_pending": sum(e["minutes"] for e in week if e["status"] == "logged"),
        "monday": monday, "sunday": monday + timedelta(days=6),
        "days": days, "work_processes": _work_processes(placement), "kinds": KINDS,
        "status_label": STATUS_LABEL, "open": placement["status"] == "active",
        "previous": base + previous.isoformat(),
        "next": base + following.isoformat() if following <= now else None,
        "values": values or {}, "errors": errors or {},
        "flash": (f"Logged {saved} {'entry' if saved == '1' else 'entries'}; "
                  "they wait for your supervisor's approval.") if saved.isdigit() else None,
        **extra}, status_code=status_code)


@router.get("/learner/placements/{placement_id}/timesheet", response_class=HTMLResponse)
async def timesheet(placement_id: str, request: Request, api: ApiDep,
                    session: Session = Learner) -> HTMLResponse:
    return await _timesheet(request, api, placement_id)


@router.post("/learner/placements/{placement_id}/timesheet", response_class=HTMLResponse)
async def log_week(placement_id: str, request: Request, api: ApiDep, form: FormDep,
                   session: Session = Learner) -> Response:
    """Each filled-in day is one ``POST /placements/{id}/hours`` with its own
    Idempotency-Key (the form's id and the day), sent in date order: a day the ledger
    refuses stores nothing and keeps what was typed beside the refusal; a day it accepted
    is stored once however often the form is sent (decision 056)."""
    placement = await placement_of(api, placement_id)
    opens, ends = _dates(placement)
    monday = monday_of(parse_day(form.get("week")) or today())
    hours = await api.get(f"/placements/{placement_id}/hours")
    days = timesheet_days(monday, hours["entries"], opens=opens, ends=ends, now=today())
    asked = read_timesheet(form, days, _work_processes(placement))
    if asked.errors:
        return await _timesheet(request, api, placement_id, monday=monday, values=form,
                                errors=asked.errors, status_code=422,
                                problem=_summary(asked.errors))
    saved: list[str] = []
    errors: dict[str, tuple[str, str]] = {}
    for row, body in asked.commands:
        try:
            await api.post(f"/placements/{placement_id}/hours", body,
                           key=f"{form['form_id']}:{row.day.isoformat()}")
        except Refused as refused:
            errors.update(refusal_fields(refused, row.prefix, fallback=row.prefix + "day"))
        else:
            saved.append(row.prefix)
    if errors:
        kept = {k: v for k, v in form.items()
                if isinstance(v, str) and not any(k.startswith(p) for p in saved)}
        stored = (f" The {len(saved)} other {'day was' if len(saved) == 1 else 'days were'}"
                  " logged and are listed with their day." if saved else "")
        return await _timesheet(request, api, placement_id, monday=monday, values=kept,
                                errors=errors, status_code=422, problem=(
                                    "refused", "The ledger refused the days marked below; "
                                    "nothing of them was stored." + stored))
    return redirect(f"/learner/placements/{placement_id}/timesheet?"
                    + urlencode({"week": monday.isoformat(), "saved": len(saved)}))


# -- correct and resubmit an entry ----------------------------------------------------------


async def _correction(request: Request, api: Api, placement_id: str, entry_id: str, *,
                      values: dict[str, Any] | None = None,
                      errors: dict[str, tuple[str, str]] | None = None,
                      status_code: int = 200, **extra: Any) -> HTMLResponse:
    placement = await placement_of(api, placement_id)
    entry = await entry_of(api, placement_id, entry_id)
    work_processes = _work_processes(placement)
    return render(request, "learner/correct.html", {
        "placement": placement, "opportunity": await opportunity_of(api, placement),
        "entry": entry, "work_processes": work_processes,
        "kinds": KINDS, "status_label": STATUS_LABEL, "max_day": today().isoformat(),
        "values": values if values is not None else entry_values(entry, work_processes),
        "errors": errors or {}, **extra}, status_code=status_code)


@router.get("/learner/placements/{placement_id}/entries/{entry_id}/correct",
            response_class=HTMLResponse)
async def correction_form(placement_id: str, entry_id: str, request: Request, api: ApiDep,
                          session: Session = Learner) -> HTMLResponse:
    return await _correction(request, api, placement_id, entry_id)


@router.post("/learner/placements/{placement_id}/entries/{entry_id}/correct",
             response_class=HTMLResponse)
async def correct_entry(placement_id: str, entry_id: str, request: Request, api: ApiDep,
                        form: FormDep, session: Session = Learner) -> Response:
    """``POST /placements/{id}/hours/{entry}/correct``: a new entry that replaces this one
    once approved; the old one stays in history."""
    placement = await placement_of(api, placement_id)
    body, errors = entry_body(form, _work_processes(placement))
    if errors:
        return await _correction(request, api, placement_id, entry_id, values=form,
                                 errors=errors, status_code=422, problem=_summary(errors))
    body["work_date"] = form.get("work_date", "")
    body["reason"] = form.get("reason", "")
    try:
        answer = await api.post(f"/placements/{placement_id}/hours/{entry_id}/correct", body,
                                key=form["form_id"])
    except Refused as refused:
        return await _correction(request, api, placement_id, entry_id, values=form,
                                 errors=refusal_fields(refused), status_code=422,
                                 problem=(refused.code, refused.detail))
    return redirect(f"/learner/placements/{placement_id}?"
                    + urlencode({"done": "corrected", "min_position": answer["position"]}))


# -- progress ---------------------------------------------------------------------------------


@router.get("/learner/placements/{placement_id}/progress", response_class=HTMLResponse)
async def progress(placement_id: str, request: Request, api: ApiDep,
                   session: Session = Learner) -> HTMLResponse:
    return render(request, "learner/progress.html",
                  await progress_context(request, api, placement_id))


# -- transcript and credentials ---------------------------------------------------------------


@router.get("/learner/transcript", response_class=HTMLResponse)
async def transcript(request: Request, api: ApiDep, session: Session = Learner
                     ) -> HTMLResponse:
    return render(request, "learner/transcript.html", await _list(request, api, session))


@router.get("/learner/transcript.csv")
async def transcript_csv(api: ApiDep, session: Session = Learner) -> Response:
    """The API's own CSV export (what a student information system imports)."""
    answer = await api.raw(f"/learners/{session.person_id}/transcript/export", format="csv")
    return download(answer.content, "text/csv; charset=utf-8", "transcript.csv")


@router.get("/learner/transcript.pdf")
async def transcript_as_pdf(api: ApiDep, session: Session = Learner) -> Response:
    """The same transcript as a PDF, made here from the API's answer (decision 056)."""
    experiences = await every_page(api, f"/learners/{session.person_id}/transcript")
    content = await run_in_threadpool(transcript_pdf, session.person_id, experiences,
                                      today())
    return download(content, "application/pdf", "transcript.pdf")


@router.get("/learner/credentials/{credential_id}/open-badge.json")
async def open_badge(credential_id: str, api: ApiDep, session: Session = Learner) -> Response:
    """The credential exactly as the API signs it (Open Badges 3.0): a verifier checks the
    proof over this JSON."""
    answer = await api.raw(f"/learners/{session.person_id}/credentials/"
                           f"{quote(credential_id, safe='')}/open-badge")
    return download(answer.content, "application/json", "open-badge.json")


@router.get("/learner/clr.json")
async def clr(api: ApiDep, session: Session = Learner) -> Response:
    """The learner's Comprehensive Learner Record 2.0, signed by the deployment."""
    answer = await api.raw(f"/learners/{session.person_id}/clr")
    return download(answer.content, "application/json", "comprehensive-learner-record.json")
