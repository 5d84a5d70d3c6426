"""The whole site: the API (``services/api/app.py``) plus the pages, static files and the
handlers that turn a missing session or a stale form into a page rather than JSON."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.settings import Settings
from services.api.app import create_app
from services.bootstrap import Runtime
from services.web.api_client import Refused
from services.web.deps import CsrfRefused, RoleRefused, SignInRequired, render
from services.web.parts import HERE
from services.web.routes import (
    approval_links,
    auditor,
    coordinator,
    home,
    learner,
    sign_in,
    sponsor,
    supervisor,
)

PAGE_ROUTERS = [sign_in.router, home.router, sponsor.router, auditor.router,
                approval_links.router, learner.router, supervisor.router,
                coordinator.router]
"""Routers of the pages; each role's module adds its own here."""

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'")


class PageHeaders:
    """Security headers on every HTML page (the API's JSON answers are left as they are,
    and the docs pages, whose scripts are inline, keep theirs)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(("/docs", "/redoc")):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if any(k == b"content-type" and v.startswith(b"text/html")
                       for k, v in headers):
                    headers += [(b"content-security-policy", CSP.encode()),
                                (b"x-frame-options", b"DENY"),
                                (b"x-content-type-options", b"nosniff"),
                                (b"referrer-policy", b"same-origin"),
                                (b"cache-control", b"no-store")]
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def install_pages(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for router in PAGE_ROUTERS:
        app.include_router(router)

    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, error: SignInRequired) -> RedirectResponse:
        from urllib.parse import quote
        ended = "" if error.reason == "unknown" else f"&ended={error.reason}"
        return RedirectResponse(f"/sign-in?next={quote(error.next_path)}{ended}",
                                status_code=303)

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, _: CsrfRefused) -> HTMLResponse:
        return render(request, "error.html", {"code": "csrf-token-missing", "message":
                      "This form had expired or came from another site; nothing was "
                      "recorded. Open the page again and resend it."}, status_code=403)

    @app.exception_handler(Refused)
    async def api_refused(request: Request, error: Refused) -> HTMLResponse:
        """A page's read the API refused (another person's placement: its 404 or 403)
        becomes a page with the API's status, rule and words, and nothing more."""
        status = error.status if 400 <= error.status < 500 else 502
        return render(request, "error.html", {"code": error.code, "message": error.detail},
                      status_code=status)

    @app.exception_handler(RoleRefused)
    async def role_refused(request: Request, _: RoleRefused) -> HTMLResponse:
        return render(request, "error.html", {"code": "role-not-permitted", "message":
                      "This page is for another role."}, status_code=403)

    app.add_middleware(PageHeaders)


def create_site(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """The API and the pages in one app (what ``wbl run`` and ``wbl api`` serve)."""
    app = create_app(settings, runtime)
    install_pages(app)
    return app
