"""``/approvals/{token}``: a supervisor approves or rejects one entry from an emailed link.

Employers' supervisors often have no account, so the link itself is the authority (issue
16; decision 055): a token signed for the ``approval`` purpose (``infra/passwords.py``
``LinkSigner``), naming the placement, the entry and the person it was mailed to, valid
``WBL_APPROVAL_LINK_DAYS``, with a random link id. No session is needed, and none is made.

- **GET only shows** the entry (date, minutes, kind, the learner's pseudonymous id) with an
  Approve button and a Reject form whose reason is required. It never acts: mail scanners
  and link previews fetch links before people do.
- **POST acts**, once: the link id is claimed in ``used_links`` (its primary key refuses a
  second claim) and then the command runs through the ledger as ``Actor(id=<person of the
  link>, role=supervisor)`` with the link id recorded in the ``HoursApproved`` /
  ``HoursRejected`` event. A refused command (the entry was decided meanwhile, the
  placement was suspended then completed...) gives the claim back, so nothing is stored.
- Before either, the link's person must still be the placement's supervisor or its proxy
  approver (``authz.check_placement`` with the approve rule, as the API checks a signed-in
  supervisor): a link for another supervisor's entry, or one whose supervisor was replaced,
  is refused.
- CSRF: the forms carry the pre-session token of the sign-in forms (an HMAC of the
  ``wbl_pre`` cookie under the link key, ``PreSessionTokens``), so another site cannot post
  them even with a link it obtained.

Refusals are pages naming the rule: ``link-invalid`` (tampered or not an approval link),
``link-expired``, ``link-used``, ``not-your-record``, and the domain's own (e.g.
``entry-not-pending``). Each use and refusal is written to the sign-in records (``link-used``
/ ``link-refused``, method ``approval``) with the person's pseudonymous id and a reason code
only; the token is never logged (the access log names the route template).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from domain.actor import Actor, Role
from domain.errors import DomainError
from domain.placement import Placement
from domain.placement.hours import HourEntry
from infra.api_tables import used_links
from infra.passwords import LinkError
from services.api import authz
from services.api.deps import get_ledger
from services.api.errors import ProblemError, status_for
from services.jobs.approval_digests import KIND_WORDS, LINK_PURPOSE, hours_text
from services.ledger import Ledger
from services.web.accounts import link_used
from services.web.deps import PartsDep, pre_session, render
from services.web.parts import WebParts
from services.web.sessions import PRE_SESSION_COOKIE

router = APIRouter(include_in_schema=False, tags=[authz.PAGES_TAG])

METHOD = "approval"
REASON_MAX = 1000


class Refusal(Exception):
    """The link may not be used: the page shows ``code`` and ``message``."""

    def __init__(self, status: int, code: str, message: str,
                 person_id: str | None = None) -> None:
        super().__init__(code)
        self.status, self.code, self.message, self.person_id = (status, code, message,
                                                                person_id)


@dataclass(frozen=True)
class OpenLink:
    link_id: str
    person_id: str
    placement: Placement
    entry: HourEntry

    @property
    def actor(self) -> Actor:
        return Actor(id=self.person_id, role=Role.SUPERVISOR)


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _open(parts: WebParts, ledger: Ledger, token: str) -> OpenLink:
    """The link's entry, when the link is genuine, unexpired, unused and still its person's
    to decide; else a ``Refusal``."""
    try:
        opened = parts.links.open(LINK_PURPOSE, token)
    except LinkError as error:
        if error.code == "link-expired":
            raise Refusal(410, error.code, "This link has expired. The next digest of hours "
                          "awaiting your approval brings a new one.") from None
        raise Refusal(400, error.code, "This is not a valid approval link: it may have been "
                      "cut short or changed. Open it again from the email.") from None
    data = opened.data
    person_id, placement_id, entry_id = (str(data.get("s", "")), str(data.get("p", "")),
                                         str(data.get("e", "")))
    if not (person_id and placement_id and entry_id):
        raise Refusal(400, "link-invalid", "This is not a valid approval link.")
    if link_used(parts.api_engine, opened.link_id):
        raise Refusal(410, "link-used", "This link was used already: each link records one "
                      "decision. The entry's current state is on the placement's record.",
                      person_id)
    actor = Actor(id=person_id, role=Role.SUPERVISOR)
    try:
        found = authz.check_placement(actor, ledger, UUID(placement_id),
                                      authz.RULES[authz.APPROVE_HOURS], entry_id)
    except ProblemError as error:
        if error.code == "own-hours":
            raise Refusal(403, error.code, "Nobody approves or rejects hours they logged or "
                          "worked themselves; the placement's coordinator will find another "
                          "approver.", person_id) from None
        found = None
    except ValueError:  # not a placement id
        found = None
    if found is None:
        raise Refusal(403, "not-your-record", "This entry is not yours to decide: the "
                      "placement's supervisor, or the proxy approver named for it, decides.",
                      person_id)
    entry = found.entries.get(entry_id)
    if entry is None:
        raise Refusal(404, "unknown-entry", "No such hour entry on this placement.",
                      person_id)
    return OpenLink(opened.link_id, person_id, found, entry)


def _refused(request: Request, parts: WebParts, refusal: Refusal) -> HTMLResponse:
    parts.records.record("link-refused", method=METHOD, person_id=refusal.person_id,
                         reason=refusal.code, client=_client(request))
    return render(request, "approvals/refused.html", {"code": refusal.code,
                                                      "message": refusal.message},
                  status_code=refusal.status)


def _entry_facts(link: OpenLink) -> dict[str, Any]:
    e = link.entry
    return {
        "placement_id": str(link.placement.id), "learner_id": link.placement.learner_id,
        "entry_id": e.entry_id, "work_date": e.work_date.isoformat(),
        "minutes": e.minutes, "hours": hours_text(e.minutes),
        "kind": KIND_WORDS.get(e.kind.value, e.kind.value),
        "clock": (f"{e.start_time.strftime('%H:%M')} to {e.end_time.strftime('%H:%M')}"
                  if e.start_time and e.end_time else None),
        "status": e.status.value, "pending": e.status.value == "logged",
        "as_proxy": link.person_id == link.placement.proxy_approver_id,
        "correction": e.supersedes is not None,
    }


def _review_page(request: Request, parts: WebParts, token: str, link: OpenLink, *,
                 status_code: int = 200, **context: Any) -> HTMLResponse:
    value, new = pre_session(request)
    response = render(request, "approvals/review.html", {
        "token": token, "entry": _entry_facts(link),
        "pre_csrf": parts.pre_session.token(value), **context}, status_code=status_code)
    if new:
        response.set_cookie(PRE_SESSION_COOKIE, value, httponly=True, samesite="lax",
                            secure=parts.settings.cookie_secure, path="/")
    return response


@router.get("/approvals/{token}", response_class=HTMLResponse)
async def review_entry(token: str, request: Request, parts: PartsDep) -> HTMLResponse:
    """Show the entry; act on nothing."""
    ledger = await get_ledger(request)
    try:
        link = await run_in_threadpool(_open, parts, ledger, token)
    except Refusal as refusal:
        return _refused(request, parts, refusal)
    if link.entry.status.value != "logged":
        return _refused(request, parts, Refusal(
            409, "entry-not-pending", f"This entry is {link.entry.status.value}: it no longer "
            "awaits a decision.", link.person_id))
    return _review_page(request, parts, token, link)


@router.post("/approvals/{token}", response_class=HTMLResponse)
async def decide_entry(token: str, request: Request, parts: PartsDep) -> HTMLResponse:
    """Approve, or reject with a reason, through the ledger; the link is used once."""
    form = await request.form()
    action = str(form.get("action") or "")
    reason = str(form.get("reason") or "").strip()
    ledger = await get_ledger(request)
    try:
        link = await run_in_threadpool(_open, parts, ledger, token)
    except Refusal as refusal:
        return _refused(request, parts, refusal)
    if not parts.pre_session.matches(request.cookies.get(PRE_SESSION_COOKIE),
                                     str(form.get("csrf_token") or "")):
        return _review_page(request, parts, token, link, status_code=403, problem=(
            "csrf-token-missing", "This form had expired or came from another site; nothing "
            "was recorded. Decide again below."), values={"reason": reason})
    if action not in ("approve", "reject"):
        return _review_page(request, parts, token, link, status_code=422, problem=(
            "action-required", "Choose Approve or Reject."), values={"reason": reason})
    if action == "reject" and not reason:
        return _review_page(request, parts, token, link, status_code=422, errors={
            "reason": ("reason-required", "Say why you reject these hours: the learner sees "
                       "it and corrects the entry.")}, values={"reason": reason})
    if len(reason) > REASON_MAX:
        return _review_page(request, parts, token, link, status_code=422, errors={
            "reason": ("reason-too-long", f"At most {REASON_MAX} characters.")},
            values={"reason": reason})
    try:
        await run_in_threadpool(_decide, parts, ledger, link, action, reason)
    except Refusal as refusal:
        return _refused(request, parts, refusal)
    parts.records.record("link-used", method=METHOD, person_id=link.person_id,
                         reason=f"hours-{action}d", client=_client(request))
    return render(request, "approvals/done.html", {
        "approved": action == "approve", "entry": _entry_facts(link), "reason": reason})


def _decide(parts: WebParts, ledger: Ledger, link: OpenLink, action: str, reason: str) -> None:
    """Claim the link, then run the command; a refused command gives the claim back."""
    try:
        with parts.api_engine.begin() as conn:
            conn.execute(insert(used_links).values(link_id=link.link_id, purpose=METHOD,
                                                   used_at=datetime.now(UTC)))
    except IntegrityError:  # a second use, maybe at the same moment as the first
        raise Refusal(410, "link-used", "This link was used already: each link records one "
                      "decision.", link.person_id) from None
    try:
        if action == "approve":
            ledger.approve_hours(link.actor, link.placement.id, entry_id=link.entry.entry_id,
                                 link_id=link.link_id)
        else:
            ledger.reject_hours(link.actor, link.placement.id, entry_id=link.entry.entry_id,
                                reason=reason, link_id=link.link_id)
    except DomainError as error:
        _release(parts, link.link_id)
        raise Refusal(status_for(error), error.code, error.detail, link.person_id) from None
    except BaseException:  # the store unreachable...: nothing recorded, the link still works
        _release(parts, link.link_id)
        raise


def _release(parts: WebParts, link_id: str) -> None:
    with parts.api_engine.begin() as conn:
        conn.execute(delete(used_links).where(used_links.c.link_id == link_id))
