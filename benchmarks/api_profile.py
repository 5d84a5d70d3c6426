"""Where one HTTP command's time goes, on one API process: a breakdown by stage.

    python -m benchmarks.api_profile [--commands 2000] [--path opportunities|hours] [--top 25]

The app `wbl run` serves (API and pages, ``create_site``) on a fresh embedded SQLite store,
no relay, no projector. Each command is ``POST /opportunities`` (or ``POST
/placements/{id}/hours`` with ``--path hours``, on one placement) with a bearer token and a
fresh Idempotency-Key, as `benchmarks/api_commands.py` sends it.

1. **In-process, profiled.** The ASGI app is called directly, one request after another,
   under cProfile. The work FastAPI hands to its thread pool (the route, the authorisation
   check, the idempotency rows) runs inline in the same thread so that one profile sees all
   of it; the CPU work is the same, the thread hop is left out (measured in step 2).
   Stages are the cumulative time of the functions that do them (``STAGES``).
2. **Over HTTP.** The same app under uvicorn on loopback, one connection, commands one
   after another: the latency minus step 1's per-command time is the HTTP server (parsing,
   the thread-pool hop, the socket) and the client.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

STAGES: list[tuple[str, list[tuple[str, str]]]] = [
    # (stage, [(file suffix, function name)]): cumulative time of these, outermost first.
    ("auth: JWT verified (every call of actor_from_token)", [
        ("services/api/auth.py", "actor_from_token")]),
    ("auth: authorisation dependency (enforce, with its JWT check if any)", [
        ("services/api/authz.py", "enforce")]),
    ("idempotency rows: claim (insert pending)", [("services/api/idempotency.py", "claim")]),
    ("idempotency rows: finish (store the answer)", [
        ("services/api/idempotency.py", "finish")]),
    ("pydantic: request body validated", [
        ("fastapi/routing.py", "_validate_body"), ("fastapi/dependencies/utils.py",
                                                  "request_body_to_args")]),
    ("pydantic: response serialised", [("fastapi/routing.py", "serialize_response")]),
    ("ledger: command-key look-up", [("infra/command_log.py", "recorded_command")]),
    ("ledger: aggregates loaded (repository get, cache, deep copy)", [
        ("services/ledger/application.py", "_get")]),
    ("ledger: store write (encode, insert, commit, command key row)", [
        ("eventsourcing/application.py", "save")]),
    ("ledger: whole command", [("services/ledger/command_keys.py", "run")]),
    ("route function (ledger call + CommandAccepted)", [
        ("fastapi/routing.py", "run_endpoint_function")]),
    ("access log + metrics (RequestContext)", [
        ("services/api/observability.py", "__call__")]),
    ("whole request (ASGI app)", [("fastapi/applications.py", "__call__")]),
    ("of all the above: SQLite commits (the event store's fsync; the API tables' WAL)", [
        ("~", "<method 'commit' of 'sqlite3.Connection' objects>")]),
]


def inline_thread_pool() -> None:
    """Run what FastAPI, Starlette and our modules send to the thread pool inline."""
    import starlette.concurrency

    async def inline(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    original = starlette.concurrency.run_in_threadpool
    for module in list(sys.modules.values()):
        if getattr(module, "run_in_threadpool", None) is original:
            setattr(module, "run_in_threadpool", inline)  # noqa: B010


def build(folder: Path) -> tuple[Any, Any, str, str]:
    """(app, runtime, coordinator token, learner token) on a fresh SQLite store."""
    from pydantic import SecretStr

    from domain.actor import Role
    from infra.settings import Settings
    from services.api.auth import issue_token, token_key
    from services.bootstrap import Runtime
    from services.web.site import create_site

    settings = Settings(data_dir=folder, jwt_secret=SecretStr("profile-" + "x" * 40),
                        log_level="WARNING")
    runtime = Runtime.build(settings, relay=False, projector=False)
    app = create_site(runtime=runtime)
    key = token_key(settings)
    coordinator = issue_token(key, actor_id="coord-bench", role=Role.COORDINATOR,
                              organisation_id="district-042", ttl_seconds=3600)
    learner = issue_token(key, actor_id="lrn-bench", role=Role.LEARNER,
                          organisation_id="district-042", ttl_seconds=3600)
    return app, runtime, coordinator, learner


async def call(app: Any, path: str, body: bytes, token: str) -> tuple[int, bytes]:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
             "server": ("127.0.0.1", 8000), "headers": [
                 (b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                 (b"content-length", str(len(body)).encode()),
                 (b"authorization", f"Bearer {token}".encode()),
                 (b"idempotency-key", uuid.uuid4().hex.encode())]}
    sent = False
    status, chunks = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


def workload(app: Any, which: str, coordinator: str, learner: str
             ) -> Callable[[int], tuple[str, bytes, str]]:
    """(path, body, token) of the i-th command."""
    from benchmarks.api_commands import BODY

    if which == "opportunities":
        payload = json.dumps(BODY).encode()
        return lambda i: ("/opportunities", payload, coordinator)
    placement = setup_placement(app, coordinator)
    starts = date(2000, 1, 3)
    return lambda i: (f"/placements/{placement}/hours", json.dumps(
        {"work_date": (starts + timedelta(days=i)).isoformat(), "minutes": 60}).encode(),
        learner)


def setup_placement(app: Any, coordinator: str) -> str:
    """A started placement for lrn-bench, with an opportunity open from 2015."""
    from domain.actor import Actor, Role

    runtime = app.state.runtime
    ledger = runtime.ledger
    coord = Actor("coord-bench", Role.COORDINATOR, "district-042")
    opportunity = ledger.post_opportunity(
        coord, organisation_id="district-042", title="Profiled", employer_name="Acme",
        worksite="Main St", wbl_type="PaidInternship", paid=True, capacity=10,
        hourly_wage=Decimal("16.50"),
        starts_on=date(2000, 1, 3), ends_on=date.today() + timedelta(days=365)).aggregate_id
    placement = ledger.match_learner(coord, opportunity_id=opportunity, learner_id="lrn-bench",
                                     supervisor_id="sup-bench",
                                     learner_born_on=date(1970, 1, 1)).aggregate_id
    for party, who in (("learner", Actor("lrn-bench", Role.LEARNER, "district-042")),
                       ("employer", Actor("sup-bench", Role.SUPERVISOR, "district-042")),
                       ("coordinator", coord)):
        ledger.sign_agreement(who, placement, party=party)
    ledger.start_placement(coord, placement, started_on=date(2000, 1, 3))
    return str(placement)


def stage_times(stats: pstats.Stats, commands: int) -> list[tuple[str, float]]:
    table: dict[tuple[str, int, str], Any] = stats.stats  # type: ignore[attr-defined]
    rows = []
    for stage, functions in STAGES:
        total = 0.0
        for suffix, name in functions:
            found = [v for (file, _, func), v in table.items()
                     if file.endswith(suffix) and func == name]
            calls = sum(v[1] for v in found)
            total += sum(v[3] for v in found)  # cumulative time
        rows.append((f"{stage} [{calls / commands:g}/cmd]", total / commands * 1000))
    return rows


async def over_http(app: Any, next_command: Callable[[int], tuple[str, bytes, str]],
                    commands: int, offset: int) -> list[float]:
    """Sequential commands on one keep-alive connection to uvicorn serving ``app``."""
    import uvicorn

    from benchmarks.api_commands import Connection
    from infra.broker import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False,
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        await asyncio.sleep(0.02)
    connection = await Connection.open(port)
    latencies = []
    try:
        for i in range(commands):
            path, body, token = next_command(offset + i)
            t = time.perf_counter()
            status = await connection.post(path, body, {
                "Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex})
            latencies.append(time.perf_counter() - t)
            assert status in (200, 201), status
    finally:
        connection.close()
        server.should_exit = True
        thread.join(timeout=10)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=2000)
    parser.add_argument("--path", choices=["opportunities", "hours"], default="opportunities")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wbl-profile-") as tmp:
        app, runtime, coordinator, learner = build(Path(tmp))
        next_command = workload(app, args.path, coordinator, learner)
        app_inline = None
        try:
            # Over HTTP first (the real thread pool), then inline and profiled.
            http = asyncio.run(over_http(app, next_command, args.commands, 0))
            inline_thread_pool()
            app_inline, *_ = build(Path(tmp) / "inline")
            next_inline = workload(app_inline, args.path, coordinator, learner)

            async def run(n: int, offset: int) -> float:
                started = time.perf_counter()
                for i in range(n):
                    path, body, token = next_inline(offset + i)
                    status, answer = await call(app_inline, path, body, token)
                    assert status in (200, 201), answer
                return time.perf_counter() - started

            asyncio.run(run(200, 0))  # warm up: imports, caches, the first placements
            profile = cProfile.Profile()
            profile.enable()
            elapsed = asyncio.run(run(args.commands, 1000))
            profile.disable()
            unprofiled = asyncio.run(run(args.commands, 3 * args.commands))
        finally:
            runtime.stop()
            if app_inline is not None:
                app_inline.state.runtime.stop()
    stats = pstats.Stats(profile)
    http.sort()
    per_command = unprofiled / args.commands * 1000
    print(f"{args.commands} commands, POST {args.path}; in-process without the profiler "
          f"{per_command:.2f} ms per command, profiled {elapsed / args.commands * 1000:.2f} ms; "
          f"over HTTP (uvicorn, one connection) p50 {http[len(http) // 2] * 1000:.2f} ms, "
          f"mean {sum(http) / len(http) * 1000:.2f} ms")
    print(f"{'stage (profiled, cumulative) [calls per command]':<84}{'ms/cmd':>8}")
    for stage, ms in stage_times(stats, args.commands):
        print(f"{stage:<84}{ms:>8.3f}")
    stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
