"""Dependencies of the pages: the signed-in session, CSRF, the API client, rendering."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from domain.actor import Role
from services.web.api_client import Api, api_for
from services.web.parts import TEMPLATES, WebParts, web_parts
from services.web.sessions import (
    PRE_SESSION_COOKIE,
    SESSION_COOKIE,
    Ended,
    Session,
    csrf_matches,
)


class SignInRequired(Exception):
    """No live session: the handler sends the browser to the sign-in page."""

    def __init__(self, reason: str, next_path: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.next_path = next_path


class CsrfRefused(Exception):
    """A form posted without this session's token (another site's form, or a stale page)."""


class RoleRefused(Exception):
    """A page for another role."""


def current_session(request: Request) -> Session:
    cached = getattr(request.state, "web_session", None)
    if isinstance(cached, Session):
        return cached
    parts = web_parts(request)
    opened = parts.sessions.open(request.cookies.get(SESSION_COOKIE))
    if isinstance(opened, Ended):
        if opened.reason not in ("unknown", "signed-out") and opened.person_id:
            parts.records.record("session-ended", method="session", person_id=opened.person_id,
                                 reason=opened.reason,
                                 client=request.client.host if request.client else None)
        next_path = request.url.path if request.method == "GET" else "/"
        raise SignInRequired(opened.reason, next_path)
    request.state.web_session = opened
    return opened


SessionDep = Annotated[Session, Depends(current_session)]
PartsDep = Annotated[WebParts, Depends(web_parts)]


def role_page(*roles: Role) -> Any:
    """A dependency: the session, when its role is one of ``roles``."""

    def check(session: SessionDep) -> Session:
        if session.role not in roles:
            raise RoleRefused(session.role.value)
        return session

    return Depends(check)


async def page_api(request: Request, session: SessionDep) -> AsyncIterator[Api]:
    api = api_for(request, session)
    try:
        yield api
    finally:
        await api.client.aclose()


ApiDep = Annotated[Api, Depends(page_api)]


async def form_of(request: Request, session: SessionDep) -> dict[str, Any]:
    """The posted form, once its CSRF token is this session's."""
    form = await request.form()
    if not csrf_matches(session.csrf_token, str(form.get("csrf_token") or "")):
        raise CsrfRefused
    return {k: (v if isinstance(v, str) else "") for k, v in form.multi_items()} | {
        "__multi__": form}


FormDep = Annotated[dict[str, Any], Depends(form_of)]


def pre_session(request: Request, response: Response | None = None) -> tuple[str, bool]:
    """The pre-session cookie's value, and whether it must be set now."""
    value = request.cookies.get(PRE_SESSION_COOKIE)
    if value:
        return value, False
    return secrets.token_urlsafe(24), True


def render(request: Request, template: str, context: dict[str, Any] | None = None, *,
           status_code: int = 200) -> HTMLResponse:
    session = getattr(request.state, "web_session", None)
    values: dict[str, Any] = {"session": session,
                              "csrf_token": session.csrf_token if session else "",
                              "form_id": secrets.token_urlsafe(16), "errors": {},
                              "values": {}}
    values.update(context or {})
    return TEMPLATES.TemplateResponse(request, template, values, status_code=status_code)


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


PAGE_SIZE = 25


def paging(request: Request, *, offset: int, shown: int, total: int | None = None,
           size: int = PAGE_SIZE) -> dict[str, Any]:
    """Links to the previous and next page of a list (for the ``pager`` macro), keeping the
    page's filters. Without a total, a full page means there may be a next one."""
    def link(at: int) -> str:
        return str(request.url.include_query_params(offset=max(at, 0)))

    more = (offset + shown < total) if total is not None else shown >= size
    return {"first": offset + 1 if shown else 0, "last": offset + shown, "total": total,
            "previous": link(offset - size) if offset > 0 else None,
            "next": link(offset + size) if more else None}
