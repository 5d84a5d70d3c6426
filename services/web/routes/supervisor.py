"""The supervisor's pages: one approval queue across my placements (approve several at once,
reject one with its reason, the outcome of each shown), evaluations with the program's
rubric, and each learner's progress.

Everything is read and done through the API as the signed-in supervisor (decision 054): the
queue lists only the placements the API answers for ``supervisor_id`` = me, and approving
goes through ``POST /hours/bulk-approve``, which checks every item as a single approval would.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from domain.actor import Role
from infra.passwords import link_signing_key
from services.api.authz import PAGES_TAG
from services.web.api_client import Api, Refused
from services.web.deps import PAGE_SIZE, ApiDep, FormDep, paging, redirect, render, role_page
from services.web.hours_view import KINDS, STATUS_LABEL, refusal_fields, today
from services.web.parts import web_parts
from services.web.placement_pages import (
    entry_of,
    every_page,
    gather_bounded,
    offset_of,
    opportunity_of,
    placement_of,
    progress_context,
)
from services.web.sessions import Session

router = APIRouter(include_in_schema=False, tags=[PAGES_TAG])
Supervisor = role_page(Role.SUPERVISOR)

BULK_MAX = 200
"""The most entries ``POST /hours/bulk-approve`` takes at once."""
OUTCOME_SECONDS = 600
"""How long the outcome of an approval stays readable in the queue's address."""
OPEN_STATUSES = ("active", "suspended")
"""Placements whose hours a supervisor may still approve or reject."""

DEFAULT_RUBRIC = ("Workplace safety", "Communication", "Teamwork", "Problem solving",
                  "Professionalism", "Technical skills")
"""Competencies scored when the placement's program names none (an internship, a job
shadow): the employability skills most state work-based-learning evaluations share. The
ledger accepts any competency for such a placement; a program's own list always wins."""
SCORES = [("1", "1 Beginning"), ("2", "2 Developing"), ("3", "3 Proficient"),
          ("4", "4 Exemplary")]
STAGES = [("interim", "Interim"), ("final", "Final")]
EVALUATOR_ROLES = [("supervisor", "Worksite supervisor"), ("mentor", "Mentor")]
EVALUATION_FIELDS = {"scores": "rubric", "stage": "stage", "evaluator_role": "evaluator_role",
                     "comments": "comments", "evaluated_on": "evaluated_on"}
PLACEMENT_STATUSES = [("", "Any status"), ("active", "In progress"), ("matched", "Matched"),
                      ("suspended", "Suspended"), ("completed", "Completed"),
                      ("withdrawn", "Withdrawn")]
DONE = {"rejected": "The entry was rejected; the learner sees your reason and can correct "
                    "it.",
        "evaluated": "Your evaluation was recorded."}


def _outcomes(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(link_signing_key(web_parts(request).settings),
                                  salt="wbl-ledger/approval-outcome")


async def _my_placements(api: Api, session: Session, **params: Any) -> list[dict[str, Any]]:
    return await every_page(api, "/transcripts/experiences",
                            supervisor_id=session.person_id, **params)


# -- the approval queue ---------------------------------------------------------------------


async def _queue(request: Request, api: Api, session: Session, *, status_code: int = 200,
                 **extra: Any) -> HTMLResponse:
    """Every pending entry of my placements, oldest work date first, with filters by
    learner and kind, a page at a time. The page of entries comes from one read-model
    query (``GET /pending-hours``), whatever the number of placements; each entry's details
    (allocations, a correction's reason, minors' flags) from the ledger, for the few
    placements on this page only (``GET /placements/{id}/hours``)."""
    min_position = request.query_params.get("min_position")
    experiences = await _my_placements(api, session, min_position=min_position)
    by_placement = {e["placement_id"]: e for e in experiences}
    learner = request.query_params.get("learner", "")
    kind = request.query_params.get("kind", "")
    offset = offset_of(request)
    found = await api.get("/pending-hours", supervisor_id=session.person_id,
                          learner_id=learner, kind=kind, limit=PAGE_SIZE, offset=offset,
                          min_position=min_position)
    mine_in_outcome = [p for p in _outcome_placements(request) if p in by_placement]
    wanted = list(dict.fromkeys([row["placement_id"] for row in found["entries"]]
                                + mine_in_outcome))
    answers = await gather_bounded(api.get(f"/placements/{p}/hours") for p in wanted)
    known: dict[tuple[str, str], dict[str, Any]] = {
        (placement_id, entry["entry_id"]): entry
        for placement_id, hours in zip(wanted, answers, strict=True)
        for entry in hours["entries"]}
    shown: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for row in found["entries"]:
        entry = known.get((row["placement_id"], row["entry_id"]))
        if entry is None or entry["status"] != "logged":
            continue  # decided since the read model was written
        shown.append((by_placement.get(row["placement_id"]) or row, entry))
    learners = sorted({e["learner_id"] for e in experiences})
    return render(request, "supervisor/queue.html", {
        "items": shown, "page": paging(request, offset=offset, shown=len(found["entries"]),
                                       total=found["total"]),
        "learner": learner, "kind": kind,
        "learner_options": [("", "All learners"), *((x, x) for x in learners)],
        "kind_options": [("", "Both kinds"), *KINDS],
        "outcome": _read_outcome(request, by_placement, known),
        "flash": DONE.get(request.query_params.get("done", "")), **extra},
        status_code=status_code)


def _outcome_placements(request: Request) -> list[str]:
    token = request.query_params.get("outcome")
    if not token:
        return []
    try:
        items = _outcomes(request).loads(token, max_age=OUTCOME_SECONDS)
    except BadSignature:
        return []
    return [str(item[0]) for item in items]


def _read_outcome(request: Request, placements: dict[str, dict[str, Any]],
                  entries: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    token = request.query_params.get("outcome")
    if not token:
        return []
    try:
        items = _outcomes(request).loads(token, max_age=OUTCOME_SECONDS)
    except BadSignature:
        return []
    shown = []
    for placement_id, entry_id, status, code, detail in items:
        shown.append({"placement": placements.get(placement_id),
                      "entry": entries.get((placement_id, entry_id)),
                      "placement_id": placement_id, "entry_id": entry_id,
                      "approved": status == 200, "code": code, "detail": detail})
    return shown


@router.get("/supervisor", response_class=HTMLResponse)
async def approval_queue(request: Request, api: ApiDep, session: Session = Supervisor
                         ) -> HTMLResponse:
    return await _queue(request, api, session)


@router.post("/supervisor/approve", response_class=HTMLResponse)
async def approve_selected(request: Request, api: ApiDep, form: FormDep,
                           session: Session = Supervisor) -> Response:
    """``POST /hours/bulk-approve`` with the entries ticked: each is approved or refused on
    its own; the queue then shows the outcome of each."""
    items = []
    for value in form["__multi__"].getlist("entry"):
        placement_id, _, entry_id = str(value).partition("|")
        if placement_id and entry_id:
            items.append({"placement_id": placement_id, "entry_id": entry_id})
    if not items:
        return await _queue(request, api, session, status_code=422,
                            errors={"entry": ("select-entries", "Tick the entries to approve.")},
                            problem=("select-entries", "Tick the entries to approve."))
    try:
        answer = await api.post("/hours/bulk-approve", {"items": items[:BULK_MAX]},
                                key=form["form_id"])
    except Refused as refused:
        return await _queue(request, api, session, status_code=422,
                            problem=(refused.code, refused.detail))
    outcome = [[o["placement_id"], o["entry_id"], o["status"],
                (o.get("problem_type") or "").rsplit("/", 1)[-1] or None,
                (o.get("detail") or "")[:300] or None] for o in answer["outcomes"]]
    positions = [o["position"] for o in answer["outcomes"] if o.get("position")]
    query = {"outcome": _outcomes(request).dumps(outcome)}
    if positions:
        query["min_position"] = str(max(positions))
    return redirect("/supervisor?" + urlencode(query))


# -- reject one entry, with the reason -------------------------------------------------------


async def _rejection(request: Request, api: Api, placement_id: str, entry_id: str, *,
                     status_code: int = 200, **extra: Any) -> HTMLResponse:
    placement = await placement_of(api, placement_id)
    entry = await entry_of(api, placement_id, entry_id)
    return render(request, "supervisor/reject.html", {
        "placement": placement, "opportunity": await opportunity_of(api, placement),
        "entry": entry, "status_label": STATUS_LABEL, **extra},
        status_code=status_code)


@router.get("/supervisor/placements/{placement_id}/entries/{entry_id}/reject",
            response_class=HTMLResponse)
async def rejection_form(placement_id: str, entry_id: str, request: Request, api: ApiDep,
                         session: Session = Supervisor) -> HTMLResponse:
    return await _rejection(request, api, placement_id, entry_id)


@router.post("/supervisor/placements/{placement_id}/entries/{entry_id}/reject",
             response_class=HTMLResponse)
async def reject_entry(placement_id: str, entry_id: str, request: Request, api: ApiDep,
                       form: FormDep, session: Session = Supervisor) -> Response:
    """``POST /placements/{id}/hours/{entry}/reject``: the reason is required, and the
    learner sees it beside the entry."""
    try:
        answer = await api.post(f"/placements/{placement_id}/hours/{entry_id}/reject",
                                {"reason": form.get("reason", "")}, key=form["form_id"])
    except Refused as refused:
        return await _rejection(request, api, placement_id, entry_id, status_code=422,
                                values=form, errors=refusal_fields(refused),
                                problem=(refused.code, refused.detail))
    return redirect("/supervisor?" + urlencode({"done": "rejected",
                                                "min_position": answer["position"]}))


# -- my learners and their progress -----------------------------------------------------------


@router.get("/supervisor/learners", response_class=HTMLResponse)
async def my_learners(request: Request, api: ApiDep, session: Session = Supervisor
                      ) -> HTMLResponse:
    status = request.query_params.get("status", "")
    learner = request.query_params.get("learner", "").strip()
    offset = offset_of(request)
    found = await api.get("/transcripts/experiences", supervisor_id=session.person_id,
                          status=status if status in dict(PLACEMENT_STATUSES) else None,
                          learner_id=learner or None, limit=PAGE_SIZE + 1, offset=offset,
                          min_position=request.query_params.get("min_position"))
    shown = found[:PAGE_SIZE]
    apprenticeships = [e for e in shown if e.get("program_id")]
    every = await api.get("/apprenticeship-hours", supervisor_id=session.person_id,
                          limit=500) if apprenticeships else []
    by_placement = {p["placement_id"]: p for p in every}
    progress = [by_placement.get(e["placement_id"]) for e in apprenticeships]
    return render(request, "supervisor/learners.html", {
        "experiences": shown, "status": status, "learner": learner,
        "statuses": PLACEMENT_STATUSES,
        "progress": {e["placement_id"]: p for e, p in zip(apprenticeships, progress,
                                                          strict=True) if p is not None},
        "page": paging(request, offset=offset, shown=len(shown),
                       total=None if len(found) > PAGE_SIZE else offset + len(shown))})


@router.get("/supervisor/placements/{placement_id}", response_class=HTMLResponse)
async def learner_placement(placement_id: str, request: Request, api: ApiDep,
                            session: Session = Supervisor) -> HTMLResponse:
    context = await progress_context(request, api, placement_id)
    evaluations = await api.get(f"/placements/{placement_id}/evaluations")
    return render(request, "supervisor/placement.html", {
        **context, "evaluations": evaluations,
        "flash": DONE.get(request.query_params.get("done", ""))})


# -- evaluate with the rubric -------------------------------------------------------------------


def _rubric(placement: dict[str, Any]) -> list[str]:
    return list(placement.get("competencies") or DEFAULT_RUBRIC)


async def _evaluation(request: Request, api: Api, placement_id: str, *,
                      values: dict[str, Any] | None = None, status_code: int = 200,
                      **extra: Any) -> HTMLResponse:
    placement = await placement_of(api, placement_id)
    return render(request, "supervisor/evaluate.html", {
        "placement": placement, "opportunity": await opportunity_of(api, placement),
        "rubric": _rubric(placement),
        "own_rubric": bool(placement.get("competencies")), "scores": SCORES,
        "stages": STAGES, "evaluator_roles": EVALUATOR_ROLES, "max_day": today().isoformat(),
        "values": values or {"evaluated_on": today().isoformat(), "stage": "interim",
                             "evaluator_role": "supervisor"}, **extra},
        status_code=status_code)


@router.get("/supervisor/placements/{placement_id}/evaluate", response_class=HTMLResponse)
async def evaluation_form(placement_id: str, request: Request, api: ApiDep,
                          session: Session = Supervisor) -> HTMLResponse:
    return await _evaluation(request, api, placement_id)


@router.post("/supervisor/placements/{placement_id}/evaluate", response_class=HTMLResponse)
async def evaluate(placement_id: str, request: Request, api: ApiDep, form: FormDep,
                   session: Session = Supervisor) -> Response:
    """``POST /placements/{id}/evaluations`` with a score from 1 to 4 for each competency
    scored (one left "not scored" is not sent)."""
    placement = await placement_of(api, placement_id)
    scores = {name: int(form[f"score-{i}"]) for i, name in enumerate(_rubric(placement))
              if form.get(f"score-{i}", "").isdigit()}
    evaluated_on = form.get("evaluated_on", "")
    body = {"scores": scores, "stage": form.get("stage", ""),
            "evaluator_role": form.get("evaluator_role", ""),
            "comments": form.get("comments", ""),
            "evaluated_on": evaluated_on or None}
    try:
        answer = await api.post(f"/placements/{placement_id}/evaluations", body,
                                key=form["form_id"])
    except Refused as refused:
        return await _evaluation(
            request, api, placement_id, values=form, status_code=422,
            errors=refusal_fields(refused, names=EVALUATION_FIELDS),
            problem=(refused.code, refused.detail))
    return redirect(f"/supervisor/placements/{placement_id}?"
                    + urlencode({"done": "evaluated", "min_position": answer["position"]}))
