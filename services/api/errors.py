"""Every refusal as RFC 9457 problem+json, built in one place.

Routes raise domain exceptions; these handlers give each a stable ``type``
(``/errors/<code>``), the HTTP status its kind means, a human ``detail`` and the
``field`` at fault. Bad input is never a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from eventsourcing.persistence import PersistenceError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import (
    ConcurrentChange,
    DomainError,
    NotPermitted,
    RuleViolated,
    StaleVersion,
    UnknownAggregate,
    WrongState,
)
from services.api.observability import REQUEST_ID

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

STATUS_BY_KIND: list[tuple[type[DomainError], int]] = [
    (UnknownAggregate, 404),
    (StaleVersion, 412),
    (WrongState, 409),
    (ConcurrentChange, 409),
    (NotPermitted, 403),
    (RuleViolated, 422),
]


class ProblemError(Exception):
    """A refusal raised by the API layer itself (not a domain rule)."""

    def __init__(self, status: int, code: str, title: str, detail: str,
                 field: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.title, self.detail = status, code, title, detail
        self.field = field
        self.headers = headers or {}


def problem(
    request: Request,
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/errors/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        # The occurrence, by request id: a path can hold a learner id, and error bodies end
        # up in clients' logs (docs/privacy.md).
        "instance": f"urn:wbl:request:{REQUEST_ID.get()}",
    }
    if field is not None:
        body["field"] = field
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_for(error: DomainError) -> int:
    for kind, status in STATUS_BY_KIND:
        if isinstance(error, kind):
            return status
    return 422


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, error: DomainError) -> JSONResponse:
        return problem(request, status_for(error), error.code, error.title, error.detail,
                       field=error.field)

    @app.exception_handler(ProblemError)
    async def api_problem(request: Request, error: ProblemError) -> JSONResponse:
        return problem(request, error.status, error.code, error.title, error.detail,
                       field=error.field, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        issues = [
            {"field": _field_name(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid"),
             "kind": e.get("type", "invalid")}
            for e in error.errors()
        ]
        if any(i["kind"] == "json_invalid" for i in issues):
            return problem(request, 400, "malformed-json", "The body is not valid JSON",
                           "The request body could not be parsed as JSON.", errors=issues)
        first = issues[0] if issues else {"field": "body", "message": "invalid"}
        detail = "; ".join(f"{i['field']}: {i['message']}" for i in issues)
        return problem(request, 422, "invalid-request", "The request is not valid",
                       detail, field=first["field"], errors=issues)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not-found", 405: "method-not-allowed", 413: "body-too-large",
                 415: "unsupported-media-type"}
        code = codes.get(error.status_code, f"http-{error.status_code}")
        return problem(request, error.status_code, code, str(error.detail), str(error.detail),
                       headers=getattr(error, "headers", None))

    @app.exception_handler(PersistenceError)
    async def store_failed(request: Request, error: PersistenceError) -> JSONResponse:
        # The store refused or is unreachable: nothing was recorded (the write was one
        # transaction). Say so plainly instead of a 500, and never echo the driver's text.
        if "full" in str(error).lower():
            log.error("event store is out of space")
            return problem(request, 507, "storage-full", "The ledger's storage is full",
                           "Nothing was recorded: the event store has no space left. "
                           "An operator must free or add space; then send the command again.")
        log.warning("event store unavailable", extra={"error": type(error).__name__})
        return problem(request, 503, "store-unavailable", "The event store is unavailable",
                       "Nothing was recorded; send the command again shortly.",
                       headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        # Never echo internals (they may hold personal data); the log has the type only.
        route = request.scope.get("route")
        log.exception("unexpected error", extra={
            "route": getattr(route, "path", "unmatched"),
            "request_id": request.headers.get("x-request-id", "-"),
        })
        return problem(request, 500, "internal-error", "Internal error",
                       "The server failed to handle this request; nothing was recorded "
                       "unless a command's response said so.")
