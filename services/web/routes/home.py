"""``/``: each person lands on their role's page; nobody signed in lands on the sign-in."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.routing import Match

from domain.actor import Role
from services.api.authz import PAGES_TAG
from services.web.deps import SessionDep, redirect, render

router = APIRouter(include_in_schema=False, tags=[PAGES_TAG])

HOME_OF: dict[Role, str] = {
    Role.LEARNER: "/learner",
    Role.SUPERVISOR: "/supervisor",
    Role.COORDINATOR: "/coordinator",
    Role.SPONSOR: "/sponsor",
    Role.STATE_AUDITOR: "/auditor",
}
"""Each role's own page; roles without pages (admin, researcher, guardian) get a page that
says so and points to the API."""


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep) -> Response:
    target = HOME_OF.get(session.role)
    if target is not None and _served(request, target):
        return redirect(target)
    return render(request, "home.html", {})


def _served(request: Request, path: str) -> bool:
    scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
    return any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes)
