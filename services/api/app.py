"""The FastAPI application: routers per resource, one error handler, a body-size limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.metrics import registry_for
from infra.settings import Settings
from services.api import errors
from services.api.routes import health, metrics, opportunities
from services.runtime import Runtime

DESCRIPTION = """
The ledger of work-based-learning placements. Every command records immutable events;
queries read projections built from the Kafka topic. Commands answer the event's
`position`: pass it as `min_position` to a query to read your own write.
Errors are RFC 9457 `application/problem+json` with a stable `type` per rule.
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
            "instance": scope.get("path"),
        }).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """Serve a runtime built elsewhere (embedded default, tests), or build an API-only one."""
    settings = settings or (runtime.settings if runtime else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime is not None:
            app.state.runtime = runtime
            app.state.metrics_registry = registry_for(runtime)
            yield
            return
        own = Runtime.build(settings, relay=False, projector=False)
        app.state.runtime = own
        app.state.metrics_registry = registry_for(own)
        try:
            yield
        finally:
            own.stop()

    app = FastAPI(title="wbl-ledger", version="0.1.0", description=DESCRIPTION,
                  lifespan=lifespan)
    if runtime is not None:
        app.state.runtime = runtime
        app.state.metrics_registry = registry_for(runtime)
    errors.install(app)
    app.include_router(opportunities.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app
