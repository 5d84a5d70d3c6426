"""HTTP commands per second and latency on the embedded default, against the raw ledger.

    python -m benchmarks.api_commands [--seconds 10] [--concurrency 16] [--rate 500]

Three measures in one run, on fresh SQLite stores:

1. raw: the `eventsourcing` application (`Ledger`) posting opportunities in-process, one
   after another: the store's own speed, no HTTP, no JSON, no auth;
2. closed loop: `wbl run` (API + relay + projector + local broker, the embedded default)
   in its own process; this process is the load generator on loopback, with
   ``--concurrency`` clients each sending ``POST /opportunities`` (bearer token,
   Idempotency-Key, JSON body) as fast as answers come back: the most commands per second;
3. open loop: requests sent on a fixed schedule of ``--rate`` per second for
   ``--seconds``, latency measured from the scheduled send time (no coordinated omission).

Prints a table and the figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from domain.actor import Actor, Role
from infra.broker import free_port
from infra.settings import Settings
from services.api.auth import issue_token, token_key
from services.bootstrap import build_ledger
from services.ledger import BirthDatesInMemory

BODY = {
    "organisation_id": "district-042", "title": "Robotics technician intern",
    "employer_name": "Acme Robotics", "worksite": "12 Foundry Rd", "wbl_type": "PaidInternship",
    "paid": True, "hourly_wage": "16.50", "starts_on": "2027-01-11", "ends_on": "2027-05-21",
}


USE_KEYS = True


def request_headers(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "Idempotency-Key": uuid.uuid4().hex} if USE_KEYS else headers


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99),
            "max_ms": round(ordered[-1] * 1000, 2), "mean_ms": round(
                statistics.fmean(ordered) * 1000, 2)}


def raw_ledger(commands: int, folder: Path) -> dict[str, Any]:
    ledger = build_ledger(Settings(data_dir=folder), birth_dates=BirthDatesInMemory())
    actor = Actor("coord-bench", Role.COORDINATOR, "district-042")
    from datetime import date
    from decimal import Decimal

    details = {**BODY, "hourly_wage": Decimal("16.50"), "starts_on": date(2027, 1, 11),
               "ends_on": date(2027, 5, 21)}
    latencies = []
    try:
        started = time.perf_counter()
        for _ in range(commands):
            t = time.perf_counter()
            ledger.post_opportunity(actor, **details)
            latencies.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - started
    finally:
        ledger.close()
    return {"commands": commands, "commands_per_s": round(commands / elapsed, 1),
            **percentiles(latencies)}


def start_service(data_dir: Path, port: int, log: Path, role: str = "run"
                  ) -> subprocess.Popen[bytes]:
    """``wbl run`` (the embedded default), or ``wbl api`` alone (no relay, no projector)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WBL_")}
    env.update({"WBL_DATA_DIR": str(data_dir), "WBL_API_PORT": str(port)})
    if "WBL_LOG_LEVEL" in os.environ:
        env["WBL_LOG_LEVEL"] = os.environ["WBL_LOG_LEVEL"]
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", role], env=env, stdout=out,
            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(log.read_text()[-2000:])
        time.sleep(0.2)


class Connection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams.

    httpx's AsyncClient spends more CPU per request than the server does (it capped this
    benchmark near 200 requests/s on two cores); this one costs a few tens of
    microseconds, so the figures measure the service, not the load generator."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
                 f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(head.split(b" ", 2)[1])

    def close(self) -> None:
        self.writer.close()


PAYLOAD = json.dumps(BODY).encode()


async def closed_loop(port: int, token: str, seconds: float, concurrency: int
                      ) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {token}"}
    connections = [await Connection.open(port) for _ in range(concurrency)]
    deadline = time.perf_counter() + seconds

    async def worker(connection: Connection) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            status = await connection.post("/opportunities", PAYLOAD, request_headers(headers))
            latencies.append(time.perf_counter() - t)
            if status != 201:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.perf_counter() - started
    for c in connections:
        c.close()
    return {"concurrency": concurrency, "commands": len(latencies), "errors": errors,
            "commands_per_s": round(len(latencies) / elapsed, 1), **percentiles(latencies)}


async def open_loop(port: int, token: str, seconds: float, rate: float,
                    connections: int = 64) -> dict[str, Any]:
    """Send on a fixed schedule; a request waits for a free connection if all are busy, and
    that wait counts in its latency (measured from the scheduled time)."""
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {token}"}
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await Connection.open(port))
    total = int(seconds * rate)
    started = time.perf_counter()

    async def one(scheduled: float) -> None:
        nonlocal errors
        connection = await idle.get()
        try:
            status = await connection.post("/opportunities", PAYLOAD, request_headers(headers))
        finally:
            idle.put_nowait(connection)
        latencies.append(time.perf_counter() - scheduled)
        if status != 201:
            errors += 1

    tasks = []
    for i in range(total):
        scheduled = started + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    while not idle.empty():
        idle.get_nowait().close()
    return {"target_per_s": rate, "commands": total, "errors": errors,
            "achieved_per_s": round(total / elapsed, 1), **percentiles(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--raw-commands", type=int, default=3000)
    parser.add_argument("--no-idempotency-keys", action="store_true",
                        help="send commands without Idempotency-Key")
    parser.add_argument("--only-closed", action="store_true")
    parser.add_argument("--role", choices=["run", "api"], default="run",
                        help="run: the embedded default; api: the API alone, for comparison")
    args = parser.parse_args()
    global USE_KEYS
    USE_KEYS = not args.no_idempotency_keys

    with tempfile.TemporaryDirectory(prefix="wbl-bench-") as tmp:
        folder = Path(tmp)
        raw = raw_ledger(args.raw_commands, folder / "raw")
        data_dir, port = folder / "service", free_port()
        token = issue_token(token_key(Settings(data_dir=data_dir)), actor_id="coord-bench",
                            role=Role.COORDINATOR, organisation_id="district-042",
                            ttl_seconds=3600)
        service = start_service(data_dir, port, folder / "wbl.log", args.role)
        try:
            asyncio.run(closed_loop(port, token, 2.0, args.concurrency))  # warm up
            closed = asyncio.run(closed_loop(port, token, args.seconds, args.concurrency))
            time.sleep(2)  # let the relay and projector catch up before the open loop
            opened = closed if args.only_closed else asyncio.run(
                open_loop(port, token, args.seconds, args.rate))
            health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=60)

    figures = {"role": args.role, "idempotency_keys": USE_KEYS, "raw_ledger": raw,
               "http_closed_loop": closed, "http_open_loop": opened,
               "load_average_1m": os.getloadavg()[0],
               "relay_lag_after": (health.get("relay") or {}).get("lag"),
               "cpus": os.cpu_count()}
    print(f"{'measure':<24}{'cmds/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name, f in (("raw ledger (in-process)", raw), ("HTTP closed loop", closed),
                    (f"HTTP open loop {args.rate:.0f}/s", opened)):
        rate = f.get("commands_per_s", f.get("achieved_per_s"))
        print(f"{name:<24}{rate:>10}{f['p50_ms']:>9}{f['p95_ms']:>9}{f['p99_ms']:>9}"
              f"{f['max_ms']:>9}")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
