"""HTTP commands per second with N API processes (`wbl api --workers N`) on PostgreSQL,
against the raw ledger in-process on the same database, alternated in one run.

    python -m benchmarks.api_workers [--workers 1,2] [--seconds 10] [--rounds 1] [--json FILE]

For each N in ``--workers`` (and each round): the raw `eventsourcing` application (`Ledger`)
posts opportunities in-process, one after another, for ``--seconds`` on the run's database
(the store's own speed: no HTTP, no JSON, no auth); then `wbl api --workers N` is started on
that database and this process sends ``POST /opportunities`` from ``--concurrency`` clients
as fast as answers come (closed loop, after a 2 s warm-up) and then on a fixed schedule of
``--rate`` per second (open loop, latency from the scheduled time). The workload, the load
generator and the figures are `benchmarks/api_commands.py`'s (bearer token, a fresh
Idempotency-Key per command, its minimal HTTP/1.1 client). Raw and HTTP alternate, so load
from other work on the machine falls on both.

The database is made fresh on the PostgreSQL server at ``WBL_BENCH_PG_ADMIN_DSN`` (default
``postgresql://postgres@127.0.0.1:5432/test``) and dropped at the end. Only the API runs: no
relay, no projector, no broker (they are other processes in production).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
from pydantic import SecretStr

from benchmarks.api_commands import BODY, closed_loop, open_loop, percentiles
from domain.actor import Actor, Role
from infra.broker import free_port
from infra.settings import Settings
from services.api.auth import issue_token, token_key
from services.bootstrap import build_ledger
from services.ledger import BirthDatesInMemory

ADMIN_DSN = os.environ.get("WBL_BENCH_PG_ADMIN_DSN",
                           "postgresql://postgres@127.0.0.1:5432/test")


def raw_ledger(settings: Settings, seconds: float) -> dict[str, Any]:
    """The ledger in-process on the same database: opportunities posted one after another
    for ``seconds`` (a cold ledger, as the API processes start cold)."""
    ledger = build_ledger(settings, birth_dates=BirthDatesInMemory())
    actor = Actor("coord-bench", Role.COORDINATOR, "district-042")
    details: dict[str, Any] = {**BODY, "hourly_wage": Decimal("16.50"),
                               "starts_on": date(2027, 1, 11), "ends_on": date(2027, 5, 21)}
    latencies: list[float] = []
    try:
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            ledger.post_opportunity(actor, **details)
            latencies.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - started
    finally:
        ledger.close()
    return {"commands": len(latencies), "commands_per_s": round(len(latencies) / elapsed, 1),
            **percentiles(latencies)}


def start_api(settings: Settings, workers: int, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`wbl api --workers N` on the run's database; returns once every process answers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WBL_")}
    assert settings.database_url and settings.jwt_secret
    env.update({"WBL_DATABASE_URL": settings.database_url,
                "WBL_DATA_DIR": str(settings.data_dir), "WBL_API_PORT": str(port),
                "WBL_JWT_SECRET": settings.jwt_secret.get_secret_value(),
                "WBL_LOG_LEVEL": os.environ.get("WBL_LOG_LEVEL", "WARNING")})
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "api", "--workers", str(workers)],
            env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(log.read_text()[-2000:])
        time.sleep(0.2)
    time.sleep(1.0 * (workers - 1))  # the others finish their start (one answered already)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def measure_workers(folder: Path, seconds: float, workers: list[int], *,
                    concurrency: int = 16, rate: float | None = 150.0, rounds: int = 1,
                    admin_dsn: str = ADMIN_DSN) -> dict[str, Any]:
    """Closed-loop commands/s and latency of `wbl api --workers N` for each N, beside the
    raw ledger on the same PostgreSQL database measured just before it (raw, N1, raw, N2,
    ... for each round). ``folder`` holds the data folder and the logs.

    Returns ``{"runs": [{"workers", "round", "raw_ledger", "http_closed_loop",
    "http_open_loop" (None without ``rate``), "ratio_to_raw"}], "by_workers": {N: {best
    round's closed loop commands_per_s, p50_ms, p99_ms, ratio_to_raw, open-loop p99_ms}},
    "scaling": {N: commands_per_s / that of the smallest N}, "load_average_start",
    "load_average_end", "cpus", "measured_at", ...}``.
    """
    name = f"wbl_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    database_url = f"{admin_dsn.rsplit('/', 1)[0]}/{name}"
    settings = Settings(database_url=database_url, data_dir=folder / "data",
                        jwt_secret=SecretStr(secrets.token_urlsafe(48)))
    token = issue_token(token_key(settings), actor_id="coord-bench", role=Role.COORDINATOR,
                        organisation_id="district-042", ttl_seconds=6 * 3600)
    load_start = os.getloadavg()[0]
    runs: list[dict[str, Any]] = []
    try:
        for round_ in range(1, rounds + 1):
            for n in workers:
                raw = raw_ledger(settings, seconds)
                port = free_port()
                process = start_api(settings, n, port, folder / f"wbl-api-{n}.log")
                try:
                    asyncio.run(closed_loop(port, token, 2.0, concurrency))  # warm up
                    closed = asyncio.run(closed_loop(port, token, seconds, concurrency))
                    opened = (asyncio.run(open_loop(port, token, seconds, rate))
                              if rate else None)
                finally:
                    stop(process)
                runs.append({"workers": n, "round": round_, "raw_ledger": raw,
                             "http_closed_loop": closed, "http_open_loop": opened,
                             "ratio_to_raw": round(closed["commands_per_s"]
                                                   / raw["commands_per_s"], 3),
                             "load_average_1m": os.getloadavg()[0]})
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    by_workers: dict[str, dict[str, Any]] = {}
    for n in workers:
        best = max((r for r in runs if r["workers"] == n),
                   key=lambda r: r["http_closed_loop"]["commands_per_s"])
        closed = best["http_closed_loop"]
        by_workers[str(n)] = {
            "commands_per_s": closed["commands_per_s"], "p50_ms": closed["p50_ms"],
            "p99_ms": closed["p99_ms"], "errors": closed["errors"],
            "raw_commands_per_s": best["raw_ledger"]["commands_per_s"],
            "ratio_to_raw": best["ratio_to_raw"],
            "open_loop_p99_ms": (best["http_open_loop"] or {}).get("p99_ms"),
            "open_loop_achieved_per_s": (best["http_open_loop"] or {}).get("achieved_per_s"),
        }
    first = by_workers[str(min(workers))]["commands_per_s"]
    return {
        "database": "postgresql", "seconds": seconds, "concurrency": concurrency,
        "open_loop_rate": rate, "rounds": rounds, "runs": runs, "by_workers": by_workers,
        "scaling": {k: round(v["commands_per_s"] / first, 2) for k, v in by_workers.items()},
        "load_average_start": load_start, "load_average_end": os.getloadavg()[0],
        "cpus": os.cpu_count(), "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="comma-separated N to measure")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=150.0,
                        help="open-loop commands/s (0: no open loop)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    workers = [int(n) for n in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="wbl-bench-workers-") as tmp:
        figures = measure_workers(Path(tmp), args.seconds, workers,
                                  concurrency=args.concurrency, rate=args.rate or None,
                                  rounds=args.rounds)
    print(f"{'measure':<34}{'cmds/s':>9}{'ratio':>7}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'open p99':>10}")
    for run in figures["runs"]:
        raw, closed = run["raw_ledger"], run["http_closed_loop"]
        opened = run["http_open_loop"] or {}
        print(f"{'raw ledger (round ' + str(run['round']) + ')':<34}"
              f"{raw['commands_per_s']:>9}{'':>7}{raw['p50_ms']:>9}{raw['p99_ms']:>9}")
        print(f"{'wbl api --workers ' + str(run['workers']):<34}{closed['commands_per_s']:>9}"
              f"{run['ratio_to_raw']:>7}{closed['p50_ms']:>9}{closed['p99_ms']:>9}"
              f"{opened.get('p99_ms', ''):>10}")
    text = json.dumps(figures, indent=2)
    if args.json:
        args.json.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
