"""Sign-in, sign-out and password reset.

Two ways in, both ending in the same server-side session (``services/web/sessions.py``):

- **An identity provider** (OpenID Connect, authorization code with PKCE, ``infra/identity``):
  ``/sign-in/{provider}`` sends the browser there; the pending sign-in (state, nonce, PKCE
  verifier) travels in a signed, HttpOnly cookie that expires in ten minutes, so any API
  process can finish it; ``/sign-in/callback`` checks state, exchanges the code, validates
  the ID token and finds the registered person (``decide_person``). An unknown person gets a
  page saying so, and no account.
- **A local account** (``wbl users create``): login and password on the sign-in form, Argon2id,
  the throttle of ``infra/passwords.py``.

Every outcome is written to the sign-in records; nothing personal is logged.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any
from urllib.parse import urlparse

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool

from infra.identity import IdentityError, PendingSignIn, decide_person
from infra.mail import compose
from infra.passwords import LinkError
from services.api.authz import PAGES_TAG
from services.api.identities import RegistryDirectory, keyed_hash, normal_email
from services.web.accounts import AccountError, link_used
from services.web.deps import PartsDep, current_session, pre_session, redirect, render
from services.web.parts import WebParts
from services.web.sessions import PRE_SESSION_COOKIE, SESSION_COOKIE, csrf_matches

router = APIRouter(include_in_schema=False, tags=[PAGES_TAG])

PENDING_COOKIE = "wbl_oidc"
PENDING_SECONDS = 600


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _safe_next(value: str | None) -> str:
    """Only a path on this site (no open redirect through ``?next=``)."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/"
    parsed = urlparse(value)
    return "/" if parsed.scheme or parsed.netloc else value


def _set_cookie(parts: WebParts, response: Response, name: str, value: str,
                max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax",
                        secure=parts.settings.cookie_secure, path="/")


def _sign_in_page(request: Request, parts: WebParts, *, status_code: int = 200,
                  **context: Any) -> HTMLResponse:
    value, new = pre_session(request)
    response = render(request, "sign_in.html", {
        "providers": [(name, provider) for name, (provider, _) in parts.providers.items()],
        "pre_csrf": parts.pre_session.token(value),
        "next": _safe_next(request.query_params.get("next") or context.pop("next", None)),
        **context}, status_code=status_code)
    if new:
        _set_cookie(parts, response, PRE_SESSION_COOKIE, value)
    return response


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request, parts: PartsDep) -> HTMLResponse:
    ended = request.query_params.get("ended")
    return _sign_in_page(request, parts, ended=ended)


def _start_session(request: Request, parts: WebParts, *, person_id: str, role: str,
                   organisation_id: str, method: str, next_path: str) -> RedirectResponse:
    old = request.cookies.get(SESSION_COOKIE)
    if old:  # a new sign-in never keeps an old session id (session fixation)
        from services.web.sessions import _digest
        parts.sessions.end(_digest(old), "replaced")
    cookie, _ = parts.sessions.begin(person_id=person_id, role=role,
                                     organisation_id=organisation_id, method=method)
    parts.records.record("sign-in", method=method, person_id=person_id,
                         client=_client(request))
    response = redirect(_safe_next(next_path))
    _set_cookie(parts, response, SESSION_COOKIE, cookie)
    response.delete_cookie(PENDING_COOKIE, path="/")
    return response


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in_with_password(request: Request, parts: PartsDep) -> Response:
    form = await request.form()
    login, password = str(form.get("login") or ""), str(form.get("password") or "")
    next_path = str(form.get("next") or "/")
    if not parts.pre_session.matches(request.cookies.get(PRE_SESSION_COOKIE),
                                     str(form.get("csrf_token") or "")):
        return _sign_in_page(request, parts, status_code=403, next=next_path,
                             problem=("csrf-token-missing", "The form had expired; sign in "
                                      "again."))
    errors: dict[str, tuple[str, str]] = {}
    if not login.strip():
        errors["login"] = ("login-required", "Enter your login name.")
    if not password:
        errors["password"] = ("password-required", "Enter your password.")
    if errors:
        return _sign_in_page(request, parts, status_code=422, errors=errors,
                             values={"login": login}, next=next_path)
    client = _client(request) or "-"
    wait = parts.throttle.retry_after(login, client)
    if wait is not None:
        parts.records.record("sign-in-refused", method="local", reason="throttled",
                             client=client)
        response = _sign_in_page(
            request, parts, status_code=429, values={"login": login}, next=next_path,
            problem=("too-many-failed-sign-ins", f"Too many failed sign-ins; try again in "
                     f"{int(wait) + 1} seconds."))
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    account = await run_in_threadpool(parts.accounts.check, login, password)
    if account is None:
        parts.throttle.failed(login, client)
        parts.records.record("sign-in-refused", method="local", reason="wrong-password",
                             client=client)
        return _sign_in_page(request, parts, status_code=401, values={"login": login},
                             next=next_path, errors={"password": (
                                 "wrong-login-or-password",
                                 "That login and password do not match an account.")})
    if not _active(parts, account.person_id):
        parts.records.record("sign-in-refused", method="local", person_id=account.person_id,
                             reason="person-deactivated", client=client)
        return _sign_in_page(request, parts, status_code=403, next=next_path, problem=(
            "person-deactivated", "Your access to this ledger was ended; ask your "
            "coordinator."))
    parts.throttle.succeeded(login)
    return _start_session(request, parts, person_id=account.person_id, role=account.role,
                          organisation_id=account.organisation_id, method="local",
                          next_path=next_path)


def _active(parts: WebParts, person_id: str) -> bool:
    from sqlalchemy import select

    from infra.api_tables import deactivated_people
    with parts.api_engine.connect() as conn:
        return conn.execute(select(deactivated_people.c.person_id).where(
            deactivated_people.c.person_id == person_id)).first() is None


def _pending_serializer(parts: WebParts) -> URLSafeTimedSerializer:
    from infra.passwords import link_signing_key
    return URLSafeTimedSerializer(link_signing_key(parts.settings), salt="wbl-ledger/oidc")


@router.get("/sign-in/provider/{provider}")
def sign_in_with_provider(provider: str, request: Request, parts: PartsDep) -> Response:
    found = parts.providers.get(provider)
    if found is None:
        return _sign_in_page(request, parts, status_code=404, problem=(
            "unknown-provider", "That identity provider is not configured here."))
    _, client = found
    try:
        pending = client.begin_sign_in(parts.url("/sign-in/callback"))
    except IdentityError as error:
        parts.records.record("sign-in-refused", method=f"oidc:{provider}", reason=error.code,
                             client=_client(request))
        return _sign_in_page(request, parts, status_code=502, problem=(
            error.code, "The identity provider could not be reached; try again shortly."))
    response = redirect(pending.authorization_url)
    kept = asdict(pending) | {"next": _safe_next(request.query_params.get("next"))}
    _set_cookie(parts, response, PENDING_COOKIE, _pending_serializer(parts).dumps(kept),
                max_age=PENDING_SECONDS)
    return response


@router.get("/sign-in/callback", response_class=HTMLResponse)
async def sign_in_callback(request: Request, parts: PartsDep) -> Response:
    try:
        kept = _pending_serializer(parts).loads(request.cookies.get(PENDING_COOKIE, ""),
                                                max_age=PENDING_SECONDS)
        next_path = kept.pop("next", "/")
        pending = PendingSignIn(**kept)
        provider, client = parts.providers[pending.provider]
    except (BadSignature, TypeError, KeyError):
        parts.records.record("sign-in-refused", method="oidc", reason="no-pending-sign-in",
                             client=_client(request))
        return _sign_in_page(request, parts, status_code=400, problem=(
            "no-pending-sign-in", "This sign-in was not started here, or took longer than "
            "ten minutes; start again."))
    method = f"oidc:{provider.name}"
    try:
        signed_in = await run_in_threadpool(client.finish_sign_in, pending,
                                            dict(request.query_params))
    except IdentityError as error:
        parts.records.record("sign-in-refused", method=method, reason=error.code,
                             client=_client(request))
        response = _sign_in_page(request, parts, status_code=400, problem=(
            error.code, "The sign-in could not be completed; start again."))
        response.delete_cookie(PENDING_COOKIE, path="/")
        return response
    directory = RegistryDirectory(parts.api_engine, parts.accounts.key)
    decision = await run_in_threadpool(decide_person, provider, signed_in.claims, directory)
    if not decision.allowed or decision.person is None:
        parts.records.record("sign-in-refused", method=method, reason=decision.reason,
                             client=_client(request))
        response = render(request, "not_registered.html", {
            "reason": decision.reason, "provider": provider.name}, status_code=403)
        response.delete_cookie(PENDING_COOKIE, path="/")
        return response
    person = decision.person
    return _start_session(request, parts, person_id=person.id, role=person.role,
                          organisation_id=person.organisation_id, method=method,
                          next_path=next_path)


@router.post("/sign-out")
async def sign_out(request: Request, parts: PartsDep) -> Response:
    form = await request.form()
    try:
        session = current_session(request)
    except Exception:
        return redirect("/sign-in")
    if not csrf_matches(session.csrf_token, str(form.get("csrf_token") or "")):
        return render(request, "error.html", {"code": "csrf-token-missing", "message":
                      "This form had expired; sign out again from a fresh page."},
                      status_code=403)
    parts.sessions.end(session.id_hash, "signed-out")
    parts.records.record("sign-out", method=session.method, person_id=session.person_id,
                         client=_client(request))
    response = redirect("/sign-in?ended=signed-out")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# Password reset ---------------------------------------------------------------------------


@router.get("/password-reset", response_class=HTMLResponse)
def password_reset_form(request: Request, parts: PartsDep) -> HTMLResponse:
    value, new = pre_session(request)
    response = render(request, "password_reset.html",
                      {"pre_csrf": parts.pre_session.token(value)})
    if new:
        _set_cookie(parts, response, PRE_SESSION_COOKIE, value)
    return response


@router.post("/password-reset", response_class=HTMLResponse)
async def password_reset_request(request: Request, parts: PartsDep) -> HTMLResponse:
    """Mail a reset link when the login's person has this email registered (the registry
    keeps only its keyed hash, so the address typed here is compared, then used once to
    send). The answer is the same whether or not it matched: it tells nobody which logins
    or addresses exist."""
    form = await request.form()
    login, email = str(form.get("login") or ""), str(form.get("email") or "")
    if not parts.pre_session.matches(request.cookies.get(PRE_SESSION_COOKIE),
                                     str(form.get("csrf_token") or "")):
        return render(request, "password_reset.html", {"problem": (
            "csrf-token-missing", "The form had expired; try again."),
            "pre_csrf": ""}, status_code=403)
    person_id = parts.accounts.person_of(login) if login.strip() else None
    if person_id is not None and email.strip():
        from sqlalchemy import select

        from infra.api_tables import person_identities
        digest = keyed_hash(parts.accounts.key, "email", "*", normal_email(email))
        with parts.api_engine.connect() as conn:
            match = conn.execute(select(person_identities.c.person_id).where(
                person_identities.c.kind == "email", person_identities.c.value_hash == digest,
                person_identities.c.person_id == person_id)).first()
        if match is not None:
            await run_in_threadpool(send_reset_link, parts, person_id, email.strip())
            parts.records.record("password-reset-sent", method="local", person_id=person_id,
                                 client=_client(request))
    return render(request, "password_reset_sent.html", {})


def reset_link(parts: WebParts, person_id: str) -> str:
    token, _ = parts.links.issue("password-reset", {"person": person_id},
                                 parts.settings.password_reset_link_minutes * 60)
    return parts.url(f"/password-reset/{token}")


def send_reset_link(parts: WebParts, person_id: str, address: str) -> None:
    link = reset_link(parts, person_id)
    minutes = parts.settings.password_reset_link_minutes
    parts.mailer.send(compose(
        sender=parts.settings.mail_from, to=[address], subject="Reset your wbl-ledger password",
        text=f"Someone asked to reset the password of your wbl-ledger account.\n\n"
             f"To choose a new password, open this link within {minutes} minutes "
             f"(it works once):\n{link}\n\nIf it was not you, ignore this message."))


@router.get("/password-reset/{token}", response_class=HTMLResponse)
def password_reset_link(token: str, request: Request, parts: PartsDep) -> HTMLResponse:
    try:
        opened = parts.links.open("password-reset", token)
    except LinkError as error:
        parts.records.record("link-refused", method="password-reset", reason=error.code,
                             client=_client(request))
        return render(request, "error.html", {"code": error.code, "message":
                      "This link is not valid or has expired; ask for a new one."},
                      status_code=400)
    if link_used(parts.api_engine, opened.link_id):
        return render(request, "error.html", {"code": "link-used", "message":
                      "This link was used already; ask for a new one."}, status_code=410)
    value, new = pre_session(request)
    response = render(request, "password_new.html", {
        "token": token, "pre_csrf": parts.pre_session.token(value)})
    if new:
        _set_cookie(parts, response, PRE_SESSION_COOKIE, value)
    return response


@router.post("/password-reset/{token}", response_class=HTMLResponse)
async def password_reset_set(token: str, request: Request, parts: PartsDep) -> HTMLResponse:
    form = await request.form()
    password = str(form.get("password") or "")
    context: dict[str, Any] = {"token": token, "pre_csrf": str(form.get("csrf_token") or "")}
    if not parts.pre_session.matches(request.cookies.get(PRE_SESSION_COOKIE),
                                     str(form.get("csrf_token") or "")):
        return render(request, "password_new.html", context | {"problem": (
            "csrf-token-missing", "The form had expired; open the link again.")},
            status_code=403)
    try:
        opened = parts.links.open("password-reset", token)
    except LinkError as error:
        return render(request, "error.html", {"code": error.code, "message":
                      "This link is not valid or has expired; ask for a new one."},
                      status_code=400)
    person_id = str(opened.data.get("person", ""))
    try:
        await run_in_threadpool(parts.accounts.set_password, person_id, password,
                                link_id=opened.link_id)
    except AccountError as error:
        if error.code == "password-too-weak":
            return render(request, "password_new.html", context | {
                "errors": {"password": (error.code, error.detail)}}, status_code=422)
        parts.records.record("link-refused", method="password-reset", person_id=person_id,
                             reason=error.code, client=_client(request))
        return render(request, "error.html", {"code": error.code, "message": error.detail},
                      status_code=410)
    ended = parts.sessions.end_all_of(person_id, "password-changed")
    parts.records.record("password-changed", method="password-reset", person_id=person_id,
                         reason=f"{ended}-sessions-ended", client=_client(request))
    return render(request, "password_changed.html", {"at": int(time.time())})
