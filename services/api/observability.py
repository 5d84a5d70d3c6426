"""Request ids, one structured access-log line per request, and HTTP metrics.

The access log names the route *template* (``/placements/{placement_id}/hours``), never
the raw path, and the actor only as a short keyed hash with their role: paths and
actor ids can be learner ids, which stay out of logs (FERPA); the hash still lets an
operator follow one actor's requests through a day of logs.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import os
import re
import time
import uuid

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("wbl.api.access")

REQUEST_ID = contextvars.ContextVar("request_id", default="-")
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def pseudonym(value: str, salt: bytes = b"") -> str:
    """A short, stable stand-in for an id that must not appear in clear."""
    return hashlib.blake2b(value.encode(), key=salt[:64], digest_size=6).hexdigest()


class HttpMetrics:
    """Per-app HTTP metrics, registered into the runtime's registry at startup."""

    def __init__(self) -> None:
        self.requests = Counter("wbl_http_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=None)
        self.latency = Histogram(
            "wbl_http_request_duration_seconds", "Time to answer an HTTP request",
            ["method", "route"], registry=None,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )

    def register(self, registry: object) -> None:
        for collector in (self.requests, self.latency):
            with contextlib.suppress(ValueError):  # already registered in this registry
                registry.register(collector)  # type: ignore[attr-defined]


class RequestContext:
    """Echo a sane ``X-Request-ID`` (or make one), log the request, count it."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics, salt: bytes = b"") -> None:
        self.app = app
        self.metrics = metrics
        self.salt = salt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(elapsed)
            state = scope.get("state") or {}
            actor = state.get("actor")
            extra = {
                "request_id": request_id, "method": method, "route": template,
                "status": status, "duration_ms": round(elapsed * 1000, 2),
                "pid": os.getpid(),  # which process answered, under `wbl api --workers N`
            }
            if actor is not None:
                extra["actor"] = pseudonym(actor.id, self.salt)
                extra["role"] = actor.role.value
            if log.isEnabledFor(logging.INFO):
                log.info("request", extra=extra)
            REQUEST_ID.reset(token)
