"""The FastAPI application: routers per resource, one error handler, one authorisation
dependency, and the middleware around them (outermost first): request id + access log +
HTTP metrics, body-size limit, idempotency keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import fastapi_offline
from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.api_tables import api_engine, api_metadata
from infra.settings import Settings
from projections.tables import metadata as projection_metadata
from services.api import errors
from services.api.auth import FailedAuthentications, token_key
from services.api.authz import enforce
from services.api.idempotency import Idempotency, purge_expired
from services.api.identities import ProviderTokens, RegistryDirectory, identity_key
from services.api.models import PROBLEMS, Problem
from services.api.observability import REQUEST_ID, HttpMetrics, RequestContext
from services.api.routes import (
    apprenticeship_hours,
    approvals,
    attention,
    audit_trail,
    calendars,
    credentials,
    evaluations,
    health,
    hours,
    imports,
    me,
    metrics,
    opportunities,
    organisations,
    placements,
    programs,
    reports,
    transcripts,
)
from services.bootstrap import Runtime
from services.workers.metrics import registry_for

DESCRIPTION = """
The ledger of work-based-learning placements. Every command records immutable events;
queries read projections built from the Kafka topic. Commands answer the event's
`position`: pass it as `min_position` to a query to read your own write.
Errors are RFC 9457 `application/problem+json` with a stable `type` per rule.

Every endpoint but `/health` and the docs needs `Authorization: Bearer <token>`
(`wbl tokens create --actor-id ID --role ROLE [--organisation ORG]` makes one for local use).
Every POST accepts `Idempotency-Key`; commands on an existing record accept `If-Match`
with the `ETag` you read and answer 412 when it is stale.
"""


class BodySizeLimit:
    """Refuse bodies over the limit with 413 before a route parses them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        import json

        body = json.dumps({
            "type": "/errors/body-too-large", "title": "Request body too large", "status": 413,
            "detail": f"Request bodies are limited to {self.max_bytes} bytes.",
            "instance": f"urn:wbl:request:{REQUEST_ID.get()}",
        }).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


DOCS_ASSETS = "/docs-assets"


def serve_docs_offline(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` with every script and style served by the app
    itself: FastAPI's own pages load them from a CDN, which leaves a blank page on a school's
    network without internet. The assets are those the ``fastapi-offline`` package ships
    (Swagger UI 5 and ReDoc 2, both MIT/Apache-licensed; versions in that package), mounted
    read-only; the pages are plain routes outside the API's authorisation, as FastAPI's own
    docs routes are."""
    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")

    async def swagger(_: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="wbl-ledger - API docs",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png")

    async def redoc(_: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json", title="wbl-ledger - API reference",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png", with_google_fonts=False)

    app.add_route("/docs", swagger, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """Serve a runtime built elsewhere (embedded default, tests), or build an API-only one."""
    settings = settings or (runtime.settings if runtime else Settings())
    http_metrics = HttpMetrics()

    def attach(app: FastAPI, rt: Runtime) -> None:
        app.state.runtime = rt
        app.state.metrics_registry = registry_for(rt)
        http_metrics.register(app.state.metrics_registry)
        app.state.token_key = token_key(rt.settings)
        app.state.failed_authentications = FailedAuthentications(
            rt.settings.failed_authentications_per_minute)
        app.state.api_engine = api_engine(rt.settings, rt.engine)
        api_metadata.create_all(app.state.api_engine)
        app.state.identity_key = identity_key(rt.settings)
        app.state.provider_tokens = ProviderTokens.from_settings(
            rt.settings, RegistryDirectory(app.state.api_engine, app.state.identity_key))
        purge_expired(app.state.api_engine, rt.ledger.recorder,
                      timedelta(hours=rt.settings.idempotency_ttl_hours),
                      timedelta(seconds=rt.settings.idempotency_abandoned_s))
        # An API started before its projector still answers reads (empty, not 500).
        projection_metadata.create_all(rt.engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime is not None:
            attach(app, runtime)
            try:
                yield
            finally:
                app.state.provider_tokens.close()
            return
        own = Runtime.build(settings, relay=False, projector=False)
        attach(app, own)
        try:
            yield
        finally:
            app.state.provider_tokens.close()
            own.stop()

    app = FastAPI(title="wbl-ledger", version="0.1.0", description=DESCRIPTION,
                  lifespan=lifespan, dependencies=[Depends(enforce)], docs_url=None,
                  redoc_url=None)
    serve_docs_offline(app)
    if runtime is not None:
        attach(app, runtime)
    errors.install(app)
    for module in (me, organisations, calendars, opportunities, programs, placements, hours,
                   approvals, evaluations, credentials, health, metrics):
        app.include_router(module.router)
    app.include_router(transcripts.router)
    app.include_router(apprenticeship_hours.router)
    app.include_router(audit_trail.router)
    app.include_router(attention.router)
    app.include_router(imports.router)
    app.include_router(reports.router)
    app.add_middleware(Idempotency)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContext, metrics=http_metrics)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


PUBLIC_PATHS = {"/health", "/issuers/{issuer_key}", "/issuers/{issuer_key}/did.json",
                "/issuers/{issuer_key}/status/{list_number}", "/credentials/keys",
                "/credentials/verify"}


def _openapi(app: FastAPI) -> dict[str, object]:
    """The generated schema, plus the problem+json model and the bearer scheme."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    components["securitySchemes"] = {"bearer": {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "`wbl tokens create` makes one for local use."}}
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            if path in PUBLIC_PATHS:  # no sign-in: never 401 or 403; its own refusals stay
                operation["security"] = []
                for code in ("401", "403"):
                    operation.get("responses", {}).pop(code, None)
            else:
                operation["security"] = [{"bearer": []}]
                responses = operation.setdefault("responses", {})
                for code in ("401", "403"):
                    responses.setdefault(code, {
                        "description": PROBLEMS[int(code)],
                        "content": {"application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}}}})
    app.openapi_schema = schema
    return schema
