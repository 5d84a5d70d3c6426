"""The coordinator's pages (issue 17): what needs attention, opportunities (post, edit,
close, match learners), placements (the agreement and who has signed, the start, the
timeline from the audit trail), the school calendar, imports with their validation report,
and exports.

Every read and write is an API call as the signed-in coordinator (decision 054), always
naming the organisation of the session, never one from the request: a page cannot list
another organisation's learners because the API would refuse it, and another
organisation's placement answers the API's own 404, so nothing about it is shown. A refusal
is shown beside the field it names, with the rule's name, and the values typed are kept
(decision 057 for what these pages decide themselves).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from domain.actor import Role
from domain.contract.catalogue import all_event_types
from domain.opportunity import WBLType
from services.api.authz import PAGES_TAG
from services.web.api_client import Api, Refused
from services.web.deps import PAGE_SIZE, ApiDep, FormDep, paging, redirect, render, role_page
from services.web.parts import web_parts
from services.web.sessions import Session

router = APIRouter(include_in_schema=False, tags=[PAGES_TAG])
Coordinator = Annotated[Session, role_page(Role.COORDINATOR)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
MinPosition = Annotated[int | None, Query(ge=1, le=2**62)]
Filter = Annotated[str, Query(max_length=100)]

Errors = dict[str, tuple[str, str]]

REASONS = [("", "Any reason"), ("no-recent-hours", "No hours for 14 days"),
           ("approval-overdue", "Approvals pending over 7 days"),
           ("minor-flagged", "Minor's hours flagged"),
           ("calendar-missing", "School calendar missing")]
REASON_LABEL = dict(REASONS)
PLACEMENT_STATUSES = [("", "Any status"), ("matched", "Matched"), ("active", "Active"),
                      ("suspended", "Suspended"), ("completed", "Completed"),
                      ("withdrawn", "Withdrawn")]
OPPORTUNITY_STATUSES = [("", "Open and closed"), ("open", "Open"), ("closed", "Closed")]
WBL_TYPES = [(t.value, t.value) for t in WBLType]
ANY_WBL_TYPE = [("", "Any type"), *WBL_TYPES]
PARTY_LABEL = {"learner": "Learner", "guardian": "Parent or guardian",
               "employer": "Employer (worksite supervisor)", "coordinator": "Coordinator"}
IMPORT_KINDS = [("placements", "Placements (a school's tracker)"),
                ("timesheets", "Timesheets"), ("rapids", "RAPIDS apprentice registrations")]
IMPORT_MODES = [("all-or-nothing", "The whole file, or nothing if a row is refused"),
                ("valid-rows", "Only the rows that pass")]
YES_NO = [("false", "No: school is closed"), ("true", "Yes: school is in session")]
JSON_ROOM = 2_048
"""What the import's JSON needs besides the file, within the API's body limit."""
EXPORT_PAGE = 500
EXPORT_MAX_ROWS = 100_000
PLACEMENT_EVENTS = sorted(t.name for t in all_event_types() if t.aggregate == "Placement")


def hours(minutes: int | None) -> str:
    """Minutes as h:mm (exact: integer arithmetic, never a float)."""
    if minutes is None:
        return "-"
    whole, rest = divmod(abs(minutes), 60)
    return f"{'-' if minutes < 0 else ''}{whole}:{rest:02d}"


def _common(session: Session) -> dict[str, Any]:
    return {"organisation_id": session.organisation_id, "hours": hours,
            "reason_label": REASON_LABEL, "party_label": PARTY_LABEL}


def _refused_page(request: Request, refused: Refused) -> HTMLResponse:
    """A read the API refused: its code and words, nothing else (another organisation's
    placement is the API's 404, the same as an id never recorded)."""
    return render(request, "error.html", {"code": refused.code, "message": refused.detail},
                  status_code=refused.status)


def _errors_of(refused: Refused, fields: Mapping[str, str]
               ) -> tuple[Errors, tuple[str, str] | None]:
    """The refusal beside each field of the form that it names (``fields``: the API's field
    name -> the form's; ``#`` for an item of a list, e.g. ``breaks.3``); what the form does
    not show goes in the banner above it."""
    errors: Errors = {}
    leftover: tuple[str, str] | None = None
    for name, found in refused.by_field().items():
        target = fields.get(name) or (fields.get("#") if name.isdigit() else None)
        if target is None:
            leftover = leftover or found
        else:
            errors.setdefault(target, found)
    if leftover is None and not errors:
        leftover = (refused.code, refused.detail)
    return errors, leftover


def _status(refused: Refused) -> int:
    return refused.status if refused.status in (403, 404, 409, 412) else 422


def _optional(form: Mapping[str, Any], name: str) -> str | None:
    value = str(form.get(name) or "").strip()
    return value or None


def _values(form: Mapping[str, Any]) -> dict[str, str]:
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


# -- needs attention ------------------------------------------------------------------------

@router.get("/coordinator", response_class=HTMLResponse)
async def needs_attention(request: Request, session: Coordinator, api: ApiDep,
                          reason: Filter = "", offset: Offset = 0,
                          min_position: MinPosition = None) -> HTMLResponse:
    chosen = reason if reason in REASON_LABEL else ""
    try:
        found = await api.get(
            f"/organisations/{quote(session.organisation_id, safe='')}"
            "/placements-needing-attention", reason=chosen, limit=PAGE_SIZE, offset=offset,
            min_position=min_position)
    except Refused as refused:
        return _refused_page(request, refused)
    return render(request, "coordinator/attention.html", {
        **_common(session), "found": found, "reasons": REASONS,
        "filters": {"reason": chosen},
        "page": paging(request, offset=offset, shown=len(found["placements"]),
                       total=found["total"])})


# -- opportunities ----------------------------------------------------------------------------

OPPORTUNITY_FIELDS = ["title", "employer_name", "worksite", "wbl_type", "pre_apprenticeship",
                      "occupation_code", "career_pathway", "paid", "hourly_wage", "capacity",
                      "starts_on", "ends_on", "minimum_age", "hazardous"]
CHECKBOXES = {"pre_apprenticeship", "paid", "hazardous"}


def _opportunity_body(form: Mapping[str, Any]) -> dict[str, Any]:
    """The form as the API's request: empty optional fields are absent, not empty text, and
    a box left unticked is false; everything else goes as typed, for the API to judge."""
    body: dict[str, Any] = {}
    for name in OPPORTUNITY_FIELDS:
        if name in CHECKBOXES:
            body[name] = name in form
        elif name in ("title", "employer_name", "worksite", "wbl_type", "starts_on",
                      "ends_on"):
            body[name] = str(form.get(name) or "")
        else:
            value = _optional(form, name)
            if value is not None:
                body[name] = value
    return body


def _opportunity_values(opportunity: Mapping[str, Any]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name in OPPORTUNITY_FIELDS:
        value = opportunity.get(name)
        if name in CHECKBOXES:
            if value:
                values[name] = "on"
        elif value is not None:
            values[name] = str(value)
    return values


@router.get("/coordinator/opportunities", response_class=HTMLResponse)
async def opportunities(request: Request, session: Coordinator, api: ApiDep,
                        status: Filter = "", offset: Offset = 0,
                        min_position: MinPosition = None) -> HTMLResponse:
    chosen = status if status in ("open", "closed") else ""
    try:
        rows = await api.get("/opportunities", organisation_id=session.organisation_id,
                             status=chosen, limit=PAGE_SIZE, offset=offset,
                             min_position=min_position)
    except Refused as refused:
        return _refused_page(request, refused)
    return render(request, "coordinator/opportunities.html", {
        **_common(session), "rows": rows, "statuses": OPPORTUNITY_STATUSES,
        "filters": {"status": chosen},
        "page": paging(request, offset=offset, shown=len(rows))})


def _opportunity_form(request: Request, session: Session, *, action: str, heading: str,
                      values: Mapping[str, str], errors: Errors | None = None,
                      problem: tuple[str, str] | None = None, status_code: int = 200,
                      opportunity: Mapping[str, Any] | None = None) -> HTMLResponse:
    return render(request, "coordinator/opportunity_form.html", {
        **_common(session), "action": action, "heading": heading, "values": values,
        "errors": errors or {}, "problem": problem, "wbl_types": WBL_TYPES,
        "opportunity": opportunity}, status_code=status_code)


@router.get("/coordinator/opportunities/new", response_class=HTMLResponse)
async def new_opportunity(request: Request, session: Coordinator) -> HTMLResponse:
    return _opportunity_form(request, session, action="/coordinator/opportunities",
                             heading="Post an opportunity",
                             values={"capacity": "1", "wbl_type": "UnpaidInternship"})


@router.post("/coordinator/opportunities", response_class=HTMLResponse)
async def post_opportunity(request: Request, session: Coordinator, api: ApiDep,
                           form: FormDep) -> Response:
    body = {"organisation_id": session.organisation_id, **_opportunity_body(form)}
    try:
        done = await api.post("/opportunities", body, key=form.get("form_id"))
    except Refused as refused:
        errors, problem = _errors_of(refused, {f: f for f in OPPORTUNITY_FIELDS})
        return _opportunity_form(request, session, action="/coordinator/opportunities",
                                 heading="Post an opportunity", values=_values(form),
                                 errors=errors, problem=problem,
                                 status_code=_status(refused))
    return redirect(f"/coordinator/opportunities/{done['id']}?min_position={done['position']}"
                    "&posted=1")


async def _opportunity(api: Api, session: Session, opportunity_id: str,
                       min_position: int | None) -> dict[str, Any]:
    """One of the organisation's own opportunities (another's answers as unknown)."""
    found: dict[str, Any] = await api.get(f"/opportunities/{quote(opportunity_id, safe='')}",
                                          min_position=min_position)
    if found.get("organisation_id") != session.organisation_id:
        raise _not_yours()
    return found


def _not_yours() -> Refused:
    """What a page answers for another organisation's opportunity: the API's 404 words
    (opportunities are public to read, but these pages act only on one's own)."""
    return Refused(404, {"type": "/errors/unknown-opportunity", "title": "Unknown id",
                         "detail": "Your organisation has no such opportunity."})


def _opportunity_page(request: Request, session: Session, opportunity: Mapping[str, Any], *,
                      errors: Errors | None = None, problem: tuple[str, str] | None = None,
                      values: Mapping[str, str] | None = None, status_code: int = 200,
                      notice: str | None = None) -> HTMLResponse:
    return render(request, "coordinator/opportunity.html", {
        **_common(session), "o": opportunity, "errors": errors or {}, "problem": problem,
        "values": values or {}, "flash": notice}, status_code=status_code)


@router.get("/coordinator/opportunities/{opportunity_id}", response_class=HTMLResponse)
async def opportunity(request: Request, session: Coordinator, api: ApiDep,
                      opportunity_id: str, min_position: MinPosition = None,
                      posted: Filter = "", closed: Filter = "", revised: Filter = ""
                      ) -> HTMLResponse:
    try:
        found = await _opportunity(api, session, opportunity_id, min_position)
    except Refused as refused:
        return _refused_page(request, refused)
    notice = ("Opportunity posted." if posted else "Opportunity closed." if closed else
              "Opportunity revised." if revised else None)
    return _opportunity_page(request, session, found, notice=notice)


REVISED_FIELDS = [f for f in OPPORTUNITY_FIELDS if f not in ("wbl_type", "pre_apprenticeship")]
"""What a revision may change: the type stays (post another opportunity for another)."""


def _revision_form(request: Request, session: Session, opportunity: Mapping[str, Any], *,
                   values: Mapping[str, str], errors: Errors | None = None,
                   problem: tuple[str, str] | None = None, status_code: int = 200
                   ) -> HTMLResponse:
    return _opportunity_form(request, session,
                             action=f"/coordinator/opportunities/{opportunity['id']}/edit",
                             heading=f"Revise {opportunity['title']}",
                             values={**values, "version": str(opportunity["version"])},
                             errors=errors, problem=problem, status_code=status_code,
                             opportunity=opportunity)


@router.get("/coordinator/opportunities/{opportunity_id}/edit", response_class=HTMLResponse)
async def revision_form(request: Request, session: Coordinator, api: ApiDep,
                        opportunity_id: str) -> HTMLResponse:
    try:
        found = await _opportunity(api, session, opportunity_id, None)
    except Refused as refused:
        return _refused_page(request, refused)
    return _revision_form(request, session, found, values=_opportunity_values(found))


@router.post("/coordinator/opportunities/{opportunity_id}/edit", response_class=HTMLResponse)
async def revise_opportunity(request: Request, session: Coordinator, api: ApiDep,
                             opportunity_id: str, form: FormDep) -> Response:
    """Send the whole offer as revised, with the version the form showed: a change made
    meanwhile is refused (412) rather than overwritten."""
    body = {k: v for k, v in _opportunity_body(form).items() if k in REVISED_FIELDS}
    version = str(form.get("version") or "")
    try:
        done = await api.post(f"/opportunities/{quote(opportunity_id, safe='')}/revise",
                              body, key=form.get("form_id"),
                              if_match=int(version) if version.isdigit() else None)
    except Refused as refused:
        try:
            found = await _opportunity(api, session, opportunity_id, None)
        except Refused as unreadable:
            return _refused_page(request, unreadable)
        errors, problem = _errors_of(refused, {f: f for f in REVISED_FIELDS})
        return _revision_form(request, session, found, values=_values(form), errors=errors,
                              problem=problem, status_code=_status(refused))
    return redirect(f"/coordinator/opportunities/{done['id']}?min_position={done['position']}"
                    "&revised=1")


@router.post("/coordinator/opportunities/{opportunity_id}/close", response_class=HTMLResponse)
async def close_opportunity(request: Request, session: Coordinator, api: ApiDep,
                            opportunity_id: str, form: FormDep) -> Response:
    path = f"/opportunities/{quote(opportunity_id, safe='')}"
    try:
        done = await api.post(f"{path}/close", {"reason": str(form.get("reason") or "")},
                              key=form.get("form_id"))
    except Refused as refused:
        try:
            found = await _opportunity(api, session, opportunity_id, None)
        except Refused as unreadable:
            return _refused_page(request, unreadable)
        errors, problem = _errors_of(refused, {"reason": "reason"})
        return _opportunity_page(request, session, found, errors=errors, problem=problem,
                                 values=_values(form), status_code=_status(refused))
    return redirect(f"/coordinator/opportunities/{done['id']}?min_position={done['position']}"
                    "&closed=1")


# -- matching a learner ---------------------------------------------------------------------

MATCH_FIELDS = {f: f for f in ("learner_id", "supervisor_id", "learner_born_on",
                               "program_id", "matched_on")}


async def _match_page(request: Request, session: Session, api: Api,
                      opportunity: Mapping[str, Any], *, values: Mapping[str, str],
                      errors: Errors | None = None, problem: tuple[str, str] | None = None,
                      status_code: int = 200) -> HTMLResponse:
    try:
        learners = await api.get(f"/organisations/{quote(session.organisation_id, safe='')}"
                                 "/people", role="learner", limit=500)
    except Refused:
        learners = []
    return render(request, "coordinator/match.html", {
        **_common(session), "o": opportunity, "learners": learners, "values": values,
        "errors": errors or {}, "problem": problem}, status_code=status_code)


@router.get("/coordinator/opportunities/{opportunity_id}/match", response_class=HTMLResponse)
async def match_form(request: Request, session: Coordinator, api: ApiDep,
                     opportunity_id: str) -> HTMLResponse:
    try:
        found = await _opportunity(api, session, opportunity_id, None)
    except Refused as refused:
        return _refused_page(request, refused)
    return await _match_page(request, session, api, found, values={})


@router.post("/coordinator/opportunities/{opportunity_id}/match", response_class=HTMLResponse)
async def match_learner(request: Request, session: Coordinator, api: ApiDep,
                        opportunity_id: str, form: FormDep) -> Response:
    body: dict[str, Any] = {"opportunity_id": opportunity_id,
                            "learner_id": str(form.get("learner_id") or "").strip(),
                            "supervisor_id": str(form.get("supervisor_id") or "").strip(),
                            "learner_born_on": str(form.get("learner_born_on") or "")}
    for name in ("program_id", "matched_on"):
        value = _optional(form, name)
        if value is not None:
            body[name] = value
    try:
        done = await api.post("/placements", body, key=form.get("form_id"))
    except Refused as refused:
        try:
            found = await _opportunity(api, session, opportunity_id, None)
        except Refused as unreadable:
            return _refused_page(request, unreadable)
        errors, problem = _errors_of(refused, MATCH_FIELDS)
        return await _match_page(request, session, api, found, values=_values(form),
                                 errors=errors, problem=problem, status_code=_status(refused))
    return redirect(f"/coordinator/placements/{done['id']}?min_position={done['position']}"
                    "&matched=1")


# -- placements -------------------------------------------------------------------------------

@router.get("/coordinator/placements", response_class=HTMLResponse)
async def placements(request: Request, session: Coordinator, api: ApiDep,
                     status: Filter = "", wbl_type: Filter = "", learner_id: Filter = "",
                     offset: Offset = 0, min_position: MinPosition = None) -> HTMLResponse:
    filters = {"status": status if status in dict(PLACEMENT_STATUSES) else "",
               "wbl_type": wbl_type if wbl_type in dict(ANY_WBL_TYPE) else "",
               "learner_id": learner_id.strip()}
    try:
        rows = await api.get("/transcripts/experiences", organisation_id=session.organisation_id,
                             limit=PAGE_SIZE, offset=offset, min_position=min_position,
                             **filters)
    except Refused as refused:
        return _refused_page(request, refused)
    return render(request, "coordinator/placements.html", {
        **_common(session), "rows": rows, "filters": filters, "statuses": PLACEMENT_STATUSES,
        "wbl_types": ANY_WBL_TYPE, "page": paging(request, offset=offset, shown=len(rows))})


async def _placement_page(request: Request, session: Session, api: Api, placement_id: str,
                          *, offset: int = 0, min_position: int | None = None,
                          errors: Errors | None = None,
                          problem: tuple[str, str] | None = None,
                          values: Mapping[str, str] | None = None, status_code: int = 200,
                          notice: str | None = None) -> HTMLResponse:
    path = f"/placements/{quote(placement_id, safe='')}"
    try:
        placement = await api.get(path)
        entries = await api.get(f"{path}/hours", limit=PAGE_SIZE, offset=offset)
    except Refused as refused:
        return _refused_page(request, refused)
    opportunity: dict[str, Any] | None
    try:
        opportunity = await _opportunity(api, session, placement["opportunity_id"], None)
    except Refused:
        opportunity = None
    required = placement["required_parties"]
    signed = set(placement["signed_parties"])
    return render(request, "coordinator/placement.html", {
        **_common(session), "p": placement, "o": opportunity, "entries": entries,
        "required": required, "signed": signed,
        "waiting_for": [p for p in required if p not in signed],
        "errors": errors or {}, "problem": problem, "values": values or {}, "flash": notice,
        "today": date.today().isoformat(), "min_position": min_position,
        "page": paging(request, offset=offset, shown=len(entries["entries"]),
                       total=entries["total"])}, status_code=status_code)


@router.get("/coordinator/placements/{placement_id}", response_class=HTMLResponse)
async def placement(request: Request, session: Coordinator, api: ApiDep, placement_id: str,
                    offset: Offset = 0, min_position: MinPosition = None,
                    matched: Filter = "", signed: Filter = "", started: Filter = ""
                    ) -> HTMLResponse:
    notice = ("Learner matched: the placement waits for its agreement." if matched else
              "Signed as the coordinator." if signed else
              "Placement started." if started else None)
    return await _placement_page(request, session, api, placement_id, offset=offset,
                                 min_position=min_position, notice=notice)


@router.post("/coordinator/placements/{placement_id}/sign", response_class=HTMLResponse)
async def sign_agreement(request: Request, session: Coordinator, api: ApiDep,
                         placement_id: str, form: FormDep) -> Response:
    body: dict[str, Any] = {"party": "coordinator"}
    if _optional(form, "signed_on"):
        body["signed_on"] = _optional(form, "signed_on")
    try:
        done = await api.post(
            f"/placements/{quote(placement_id, safe='')}/agreement-signatures", body,
            key=form.get("form_id"))
    except Refused as refused:
        errors, problem = _errors_of(refused, {"signed_on": "signed_on",
                                               "party": "signed_on"})
        return await _placement_page(request, session, api, placement_id, errors=errors,
                                     problem=problem, values=_values(form),
                                     status_code=_status(refused))
    return redirect(f"/coordinator/placements/{quote(placement_id, safe='')}?signed=1"
                    f"&min_position={done['position']}")


@router.post("/coordinator/placements/{placement_id}/start", response_class=HTMLResponse)
async def start_placement(request: Request, session: Coordinator, api: ApiDep,
                          placement_id: str, form: FormDep) -> Response:
    body: dict[str, Any] = {}
    if _optional(form, "started_on"):
        body["started_on"] = _optional(form, "started_on")
    try:
        done = await api.post(f"/placements/{quote(placement_id, safe='')}/start", body,
                              key=form.get("form_id"))
    except Refused as refused:
        errors, problem = _errors_of(refused, {"started_on": "started_on"})
        return await _placement_page(request, session, api, placement_id, errors=errors,
                                     problem=problem, values=_values(form),
                                     status_code=_status(refused))
    return redirect(f"/coordinator/placements/{quote(placement_id, safe='')}?started=1"
                    f"&min_position={done['position']}")


@router.get("/coordinator/placements/{placement_id}/timeline", response_class=HTMLResponse)
async def timeline(request: Request, session: Coordinator, api: ApiDep, placement_id: str,
                   event_type: Filter = "", offset: Offset = 0,
                   min_position: MinPosition = None) -> HTMLResponse:
    """The placement's audit trail, oldest first: who did what, in what role, on which
    business date, recorded when, and why."""
    chosen = event_type if event_type in PLACEMENT_EVENTS else ""
    try:  # the placement first: another organisation's answers the API's 404
        found = await api.get(f"/placements/{quote(placement_id, safe='')}")
        entries = await api.get("/audit-trail", organisation_id=session.organisation_id,
                                placement_id=found["id"], event_type=chosen,
                                limit=PAGE_SIZE, offset=offset, min_position=min_position)
    except Refused as refused:
        return _refused_page(request, refused)
    return render(request, "coordinator/timeline.html", {
        **_common(session), "p": found, "entries": entries, "event_types": [
            ("", "Every event"), *((t, t) for t in PLACEMENT_EVENTS)],
        "filters": {"event_type": chosen},
        "page": paging(request, offset=offset, shown=len(entries))})


# -- the school calendar ----------------------------------------------------------------------

YEAR_FIELDS = {"school_year": "school_year", "first_day": "first_day",
               "last_day": "last_day"}
BREAK_FIELDS = {"school_year": "break_year", "name": "break_name",
                "first_day": "break_first_day", "last_day": "break_last_day",
                "breaks": "break_first_day", "#": "break_first_day"}
EXCEPTION_FIELDS = {"day": "day", "school_day": "school_day", "reason": "reason"}


def _calendar_path(session: Session) -> str:
    return f"/organisations/{quote(session.organisation_id, safe='')}/calendar"


async def _calendar(api: Api, session: Session) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = await api.get(_calendar_path(session))
    except Refused as refused:
        if refused.code == "unknown-calendar":
            return None
        raise
    return found


async def _calendar_page(request: Request, session: Session, api: Api, *,
                         offset: int = 0, errors: Errors | None = None,
                         problem: tuple[str, str] | None = None,
                         values: Mapping[str, str] | None = None, status_code: int = 200,
                         notice: str | None = None) -> HTMLResponse:
    try:
        calendar = await _calendar(api, session)
    except Refused as refused:
        return _refused_page(request, refused)
    exceptions = calendar["exceptions"] if calendar else []
    shown = exceptions[offset:offset + PAGE_SIZE]
    return render(request, "coordinator/calendar.html", {
        **_common(session), "calendar": calendar, "exceptions": shown,
        "years": [(y["school_year"], y["school_year"]) for y in (calendar or {}).get(
            "years", [])], "yes_no": YES_NO, "errors": errors or {}, "problem": problem,
        "values": values or {}, "flash": notice,
        "page": paging(request, offset=offset, shown=len(shown), total=len(exceptions))},
        status_code=status_code)


@router.get("/coordinator/calendar", response_class=HTMLResponse)
async def calendar(request: Request, session: Coordinator, api: ApiDep, offset: Offset = 0,
                   recorded: Filter = "") -> HTMLResponse:
    notice = {"year": "School year recorded.", "break": "Break recorded.",
              "exception": "Exception recorded."}.get(recorded)
    return await _calendar_page(request, session, api, offset=offset, notice=notice)


async def _record_year(api: Api, session: Session, year: Mapping[str, Any], key: str | None,
                       version: int | None) -> None:
    await api.post(f"{_calendar_path(session)}/years", dict(year), key=key, if_match=version)


@router.post("/coordinator/calendar/years", response_class=HTMLResponse)
async def record_year(request: Request, session: Coordinator, api: ApiDep,
                      form: FormDep) -> Response:
    """Record a school year's first and last days; recording a year again keeps the breaks
    already recorded for it (the API replaces the whole year)."""
    name = str(form.get("school_year") or "").strip()
    try:
        current = await _calendar(api, session)
        kept: list[Any] = next((y["breaks"] for y in (current or {}).get("years", [])
                               if y["school_year"] == name), [])
        await _record_year(api, session, {
            "school_year": name, "first_day": str(form.get("first_day") or ""),
            "last_day": str(form.get("last_day") or ""), "breaks": kept},
            form.get("form_id"), current["version"] if current else None)
    except Refused as refused:
        errors, problem = _errors_of(refused, YEAR_FIELDS)
        return await _calendar_page(request, session, api, errors=errors, problem=problem,
                                    values=_values(form), status_code=_status(refused))
    return redirect("/coordinator/calendar?recorded=year")


@router.post("/coordinator/calendar/breaks", response_class=HTMLResponse)
async def record_break(request: Request, session: Coordinator, api: ApiDep,
                       form: FormDep) -> Response:
    """Add a break to a recorded year: the year again, with its breaks and this one, sent
    with the calendar's version so a change made meanwhile is never overwritten."""
    name = str(form.get("break_year") or "").strip()
    try:
        current = await _calendar(api, session)
        year = next((y for y in (current or {}).get("years", []) if y["school_year"] == name),
                    None)
        if current is None or year is None:
            raise Refused(422, {"type": "/errors/unknown-school-year",
                                "detail": "Record the school year first, then its breaks.",
                                "field": "school_year"})
        new = {"name": str(form.get("break_name") or "").strip(),
               "first_day": str(form.get("break_first_day") or ""),
               "last_day": str(form.get("break_last_day") or "")}
        await _record_year(api, session, {**year, "breaks": [*year["breaks"], new]},
                           form.get("form_id"), current["version"])
    except Refused as refused:
        errors, problem = _errors_of(refused, BREAK_FIELDS)
        return await _calendar_page(request, session, api, errors=errors, problem=problem,
                                    values=_values(form), status_code=_status(refused))
    return redirect("/coordinator/calendar?recorded=break")


@router.post("/coordinator/calendar/exceptions", response_class=HTMLResponse)
async def record_exception(request: Request, session: Coordinator, api: ApiDep,
                           form: FormDep) -> Response:
    body = {"day": str(form.get("day") or ""),
            "school_day": str(form.get("school_day") or "false") == "true",
            "reason": str(form.get("reason") or "").strip()}
    try:
        await api.post(f"{_calendar_path(session)}/exceptions", body, key=form.get("form_id"))
    except Refused as refused:
        errors, problem = _errors_of(refused, EXCEPTION_FIELDS)
        return await _calendar_page(request, session, api, errors=errors, problem=problem,
                                    values=_values(form), status_code=_status(refused))
    return redirect("/coordinator/calendar?recorded=exception")


# -- imports and exports ----------------------------------------------------------------------

def _largest_upload(request: Request) -> int:
    """An upload travels to ``POST /imports`` as JSON, within the API's body limit
    (``WBL_MAX_BODY_BYTES``); larger files go through ``wbl import``."""
    return max(web_parts(request).settings.max_body_bytes - JSON_ROOM, 0)


def _imports_page(request: Request, session: Session, *, report: Mapping[str, Any] | None =
                  None, errors: Errors | None = None, problem: tuple[str, str] | None = None,
                  values: Mapping[str, str] | None = None, status_code: int = 200
                  ) -> HTMLResponse:
    return render(request, "coordinator/imports.html", {
        **_common(session), "report": report, "kinds": IMPORT_KINDS, "modes": IMPORT_MODES,
        "statuses": PLACEMENT_STATUSES, "errors": errors or {}, "problem": problem,
        "values": values or {"mode": "all-or-nothing"},
        "max_kb": _largest_upload(request) // 1000},
        status_code=status_code)


@router.get("/coordinator/imports", response_class=HTMLResponse)
async def imports(request: Request, session: Coordinator) -> HTMLResponse:
    return _imports_page(request, session)


@router.post("/coordinator/imports", response_class=HTMLResponse)
async def run_import(request: Request, session: Coordinator, api: ApiDep,
                     form: FormDep) -> HTMLResponse:
    """Send the file to ``POST /imports`` and show its validation report at once (not a
    redirect: the report is the answer, and sending the form again repeats its
    Idempotency-Key, so the API answers the same report and records nothing twice)."""
    values = _values(form)
    upload = form["__multi__"].get("file")
    data = await upload.read() if upload is not None and hasattr(upload, "read") else b""
    name = str(getattr(upload, "filename", "") or "upload.csv")
    text = _utf8(data)
    body: dict[str, Any] = {"kind": values.get("kind", ""),
                            "organisation_id": session.organisation_id, "file_name": name,
                            "content": text or "", "mode": values.get("mode", "all-or-nothing")}
    for field in ("program_id", "supervisor_id"):
        if _optional(form, field):
            body[field] = _optional(form, field)
    largest = _largest_upload(request)
    refusal: tuple[str, str] | None = None
    if not data:
        refusal = ("file-required", "Choose a CSV file to import.")
    elif text is None:
        refusal = ("not-utf8", 'The file is not UTF-8 text; save it as "CSV UTF-8" and try '
                   "again.")
    elif len(json.dumps(body)) > largest + JSON_ROOM:
        refusal = ("file-too-large", f"The file is over {largest // 1000} KB; an operator "
                   "imports it with `wbl import` on the server.")
    if refusal is not None:
        return _imports_page(request, session, values=values, errors={"file": refusal},
                             status_code=422)
    try:
        report = await api.post("/imports", body, key=form.get("form_id"))
    except Refused as refused:
        kept: Any = refused.problem.get("report")
        if isinstance(kept, dict):
            return _imports_page(request, session, report=kept, values=values,
                                 problem=(refused.code, refused.detail), status_code=422)
        found, problem = _errors_of(refused, {"kind": "kind", "mode": "mode",
                                              "program_id": "program_id",
                                              "supervisor_id": "supervisor_id",
                                              "content": "file", "file_name": "file"})
        return _imports_page(request, session, errors=found, problem=problem, values=values,
                             status_code=_status(refused))
    return _imports_page(request, session, report=report, values=values)


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


EXPORT_COLUMNS = ["placement_id", "learner_id", "title", "employer_name", "wbl_type",
                  "notation_code", "status", "first_day", "last_day", "approved_minutes",
                  "pending_minutes", "rejected_minutes", "notation"]


@router.get("/coordinator/exports/placements.csv")
async def export_placements(session: Coordinator, api: ApiDep, status: Filter = "",
                            wbl_type: Filter = "") -> Response:
    """The organisation's placements as CSV, one row each, read page by page through the
    API (the same rows the placements page lists)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    offset = 0
    while offset < EXPORT_MAX_ROWS:
        rows = await api.get("/transcripts/experiences", organisation_id=session.organisation_id,
                             status=status if status in dict(PLACEMENT_STATUSES) else "",
                             wbl_type=wbl_type if wbl_type in dict(ANY_WBL_TYPE) else "",
                             limit=EXPORT_PAGE, offset=offset)
        for row in rows:
            writer.writerow([row.get(c) for c in EXPORT_COLUMNS])
        if len(rows) < EXPORT_PAGE:
            break
        offset += EXPORT_PAGE
    name = quote(f"placements-{session.organisation_id}.csv", safe="")
    return Response(out.getvalue(), media_type="text/csv", headers={
        "Content-Disposition": f"attachment; filename=\"placements.csv\"; "
                              f"filename*=UTF-8''{name}"})


@router.get("/coordinator/exports/transcript.csv", response_model=None)
async def export_transcript(request: Request, session: Coordinator, api: ApiDep,
                            learner_id: Filter = "") -> Response:
    """A learner's transcript lines as the student information system imports them."""
    learner = learner_id.strip()
    if not learner:
        return _imports_page(request, session, errors={"learner_id": (
            "learner-required", "Enter the learner's id.")}, status_code=422)
    try:
        answer = await api.raw(f"/learners/{quote(learner, safe='')}/transcript/export",
                               format="csv")
    except Refused as refused:
        return _imports_page(request, session, errors={"learner_id": (
            refused.code, refused.detail)}, values={"learner_id": learner},
            status_code=_status(refused))
    return Response(answer.content, media_type="text/csv", headers={
        "Content-Disposition": answer.headers.get(
            "content-disposition", 'attachment; filename="transcript.csv"')})
