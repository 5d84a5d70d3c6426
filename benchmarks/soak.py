"""Soak and load: drive the API from a second process on loopback with a realistic mix, at
a set rate for a set time, then reconcile.

    python -m benchmarks.soak [--minutes 30] [--rate 40] [--placements 200] [--out FILE]

`wbl run` (API + relay + projector + local broker, SQLite) runs in its own process; this
process sends, on a fixed schedule (open loop: latency counted from the scheduled time),
hour logs by learners, approvals by supervisors, corrections by coordinators, and queries.
Afterwards it checks that every accepted command is exactly one event in the store (by the
aggregate id and version each answer carried) and that the topic holds exactly the store's
events, and reports status counts (no 5xx allowed) and latency percentiles per minute.
Bounded: at most 120 minutes and 500 requests/s; it stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from kafka import KafkaConsumer, TopicPartition

from domain.actor import Role
from infra.broker import free_port
from infra.settings import Settings
from services.api.auth import issue_token, token_key
from services.bootstrap import build_ledger
from services.ledger import BirthDatesInMemory

SECRET = "soak-" + uuid.uuid4().hex
ORG = "district-soak"
STARTS = date(2019, 1, 7)


@cache
def token(actor_id: str, role: Role, org: str | None = ORG) -> str:
    key = token_key(Settings(jwt_secret=SECRET))  # type: ignore[arg-type]
    return issue_token(key, actor_id=actor_id, role=role, organisation_id=org,
                       ttl_seconds=3 * 3600)


@dataclass
class Placement:
    id: str
    learner: str
    supervisor: str
    next_day: int = 1
    pending: list[str] = field(default_factory=list)
    approved: list[str] = field(default_factory=list)
    dates: dict[str, str] = field(default_factory=dict)


@dataclass
class Sample:
    scheduled: float
    latency: float
    op: str
    status: int


@dataclass
class State:
    placements: list[Placement]
    accepted: set[tuple[str, int]] = field(default_factory=set)
    samples: list[Sample] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    sent: int = 0
    behind_schedule_s: float = 0.0
    by_id: dict[str, Placement] = field(default_factory=dict)


def start_service(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WBL_")}
    env.update({"WBL_DATA_DIR": str(data_dir), "WBL_API_PORT": str(port),
                "WBL_JWT_SECRET": SECRET, "WBL_LOG_LEVEL": "WARNING"})
    out = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "services.cli", "run"], env=env,
                            stdout=out, stderr=subprocess.STDOUT)


def wait_healthy(client: httpx.Client, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("wbl run exited at start")
        try:
            if client.get("/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("wbl run did not become healthy")


def setup(client: httpx.Client, count: int) -> list[Placement]:
    def ok(who: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = client.post(path, json=body, headers={"Authorization": f"Bearer {who}"})
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    admin, coordinator = token("adm-1", Role.ADMIN, None), token("coord-1", Role.COORDINATOR)
    ok(admin, "/organisations", {"id": ORG, "name": "Soak district", "kind": "district"})
    opportunity = ok(coordinator, "/opportunities", {
        "organisation_id": ORG, "title": "Machinist intern", "employer_name": "Acme",
        "worksite": "Main St", "wbl_type": "PaidInternship", "paid": True,
        "hourly_wage": "16.50", "capacity": 10000, "starts_on": STARTS.isoformat(),
        "ends_on": (date.today() + timedelta(days=365)).isoformat()})["id"]
    placements = []
    for n in range(count):
        learner, supervisor = f"lrn-{n}", f"sup-{n % 20}"
        placement = ok(coordinator, "/placements", {
            "opportunity_id": opportunity, "learner_id": learner, "supervisor_id": supervisor,
            "learner_born_on": "2000-01-01"})["id"]
        base = f"/placements/{placement}"
        for who, party in ((token(learner, Role.LEARNER), "learner"),
                           (token(supervisor, Role.SUPERVISOR), "employer"),
                           (coordinator, "coordinator")):
            ok(who, f"{base}/agreement-signatures", {"party": party})
        ok(token(supervisor, Role.SUPERVISOR), f"{base}/start",
           {"started_on": STARTS.isoformat()})
        placements.append(Placement(placement, learner, supervisor))
    return placements


def next_request(state: State, rng: random.Random) -> tuple[str, str, str, str,
                                                              dict[str, Any] | None]:
    """(op, method, path, token, body) for the next request of the mix."""
    p = rng.choice(state.placements)
    roll = rng.random()
    if roll < 0.25 and p.pending:
        entry = p.pending.pop(0)
        return ("approve", "POST", f"/placements/{p.id}/hours/{entry}/approve",
                token(p.supervisor, Role.SUPERVISOR), {})
    if roll < 0.30 and p.approved:
        entry = p.approved.pop(0)
        return ("correct", "POST", f"/placements/{p.id}/hours/{entry}/correct",
                token("coord-1", Role.COORDINATOR), {"reason": "timesheet said 3 h",
                                                      "minutes": 180,
                                                      "work_date": p.dates[entry]})
    if roll < 0.75:
        day = STARTS + timedelta(days=p.next_day)
        p.next_day += 1
        if day > date.today():
            return ("query", "GET", f"/placements/{p.id}/hours",
                    token("coord-1", Role.COORDINATOR), None)
        return ("log", "POST", f"/placements/{p.id}/hours", token(p.learner, Role.LEARNER),
                {"work_date": day.isoformat(), "minutes": 240})
    return ("query", "GET", f"/placements/{p.id}/hours", token("coord-1", Role.COORDINATOR),
            None)


async def fire(client: httpx.AsyncClient, state: State, scheduled: float, op: str,
               method: str, path: str, bearer: str, body: dict[str, Any] | None,
               placement: str) -> None:
    headers = {"Authorization": f"Bearer {bearer}"}
    if method == "POST":
        headers["Idempotency-Key"] = str(uuid.uuid4())
    try:
        response = await client.request(method, path, json=body, headers=headers)
        status = response.status_code
    except httpx.HTTPError as error:
        status = 599
        state.server_errors.append(f"{op} {path}: {type(error).__name__}")
    latency = time.monotonic() - scheduled
    state.samples.append(Sample(scheduled, latency, op, status))
    if status >= 500:
        if status != 599:
            state.server_errors.append(f"{op} {path}: {status} {response.text[:200]}")
        return
    if method == "POST" and status < 300:
        answer = response.json()
        state.accepted.add((str(answer["id"]), int(answer["version"])))
        p = state.by_id[placement]
        if op in ("log", "correct") and answer.get("created_id"):
            p.pending.append(answer["created_id"])
            p.dates[answer["created_id"]] = str((body or {})["work_date"])
        if op == "approve":
            p.approved.append(path.split("/")[-2])


async def drive(base_url: str, state: State, rate: float, seconds: float, seed: int) -> None:
    rng = random.Random(seed)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    # At most 64 requests in flight (one per connection). When the service falls behind, the
    # schedule waits for a free slot; latency still counts from the scheduled time, so the
    # wait shows in the figures (no coordinated omission), and the generator never piles up
    # tasks it cannot send.
    slots = asyncio.Semaphore(64)

    async def bounded(*args: Any) -> None:
        try:
            await fire(*args)
        finally:
            slots.release()

    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
        started = time.monotonic()
        deadline = started + seconds + 60  # and never run on past the set time by much
        tasks: set[asyncio.Task[None]] = set()
        n = 0
        while True:
            scheduled = started + n / rate
            if scheduled - started >= seconds or time.monotonic() > deadline:
                break
            await asyncio.sleep(max(scheduled - time.monotonic(), 0))
            await slots.acquire()
            op, method, path, bearer, body = next_request(state, rng)
            placement = path.split("/")[2]
            task = asyncio.create_task(bounded(client, state, scheduled, op, method, path,
                                               bearer, body, placement))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
        state.sent = n
        state.behind_schedule_s = max(time.monotonic() - (started + n / rate), 0.0)
        await asyncio.gather(*tasks)


def stored_placement_events(data_dir: Path, after: int) -> tuple[set[tuple[str, int]],
                                                                 set[tuple[str, int]], int]:
    ledger = build_ledger(Settings(data_dir=data_dir), birth_dates=BirthDatesInMemory())
    try:
        placements, everything, start = set(), set(), 0
        while True:
            batch = ledger.recorder.select_notifications(start=start, limit=5000,
                                                         inclusive_of_start=False)
            if not batch:
                break
            for n in batch:
                key = (str(n.originator_id), n.originator_version)
                everything.add(key)
                if n.id > after and ":Placement." in n.topic:
                    placements.add(key)
            start = batch[-1].id
        return placements, everything, ledger.recorder.max_notification_id() or 0
    finally:
        ledger.close()


def topic_events(bootstrap: str, topic: str) -> tuple[set[tuple[str, int]], int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    seen: set[tuple[str, int]] = set()
    records = 0
    done: set[TopicPartition] = set()
    deadline = time.monotonic() + 300
    while len(done) < len(tps) and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            for r in batch:
                h = dict(r.headers)
                seen.add((h["ce_subject"].decode(), int(h["ce_aggregateversion"])))
                records += 1
        for tp in tps:
            hw = consumer.highwater(tp)
            if hw is not None and consumer.position(tp) >= hw:
                done.add(tp)
    consumer.close()
    return seen, records


def per_minute(samples: list[Sample], started: float) -> list[dict[str, Any]]:
    buckets: dict[int, list[float]] = defaultdict(list)
    for s in samples:
        buckets[int((s.scheduled - started) // 60)].append(s.latency)
    rows = []
    for minute in sorted(buckets):
        values = sorted(buckets[minute])

        def at(q: float, values: list[float] = values) -> float:
            return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 1)

        rows.append({"minute": minute + 1, "requests": len(values), "p50_ms": at(0.5),
                     "p95_ms": at(0.95), "p99_ms": at(0.99)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=40)
    parser.add_argument("--placements", type=int, default=200)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    minutes, rate = min(args.minutes, 120), min(args.rate, 500)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, port = Path(tmp) / "data", free_port()
        process = start_service(data_dir, port, Path(tmp) / "wbl.log")
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=30) as client:
                wait_healthy(client, process)
                placements = setup(client, args.placements)
                after_setup = client.get("/health").json()["store"]["position"]
            state = State(placements, by_id={p.id: p for p in placements})
            started = time.monotonic()
            print(f"setup: {len(placements)} placements; driving {rate}/s for {minutes} min",
                  file=sys.stderr)
            asyncio.run(drive(base, state, rate, minutes * 60, args.seed))
            with httpx.Client(base_url=base, timeout=30) as client:
                deadline = time.monotonic() + 120
                while True:
                    health = client.get("/health").json()
                    if health["relay"]["lag"] == 0 and (health["projector"]["lag"] or 0) == 0:
                        break
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                bootstrap = health["broker"]["bootstrap_servers"]
            stored, everything, last = stored_placement_events(data_dir, after_setup)
            on_topic, records = topic_events(bootstrap, "wbl.placement-events.v1")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    statuses = Counter(s.status for s in state.samples)
    by_op = Counter((s.op, s.status) for s in state.samples)
    summary = {
        "minutes": minutes, "rate_per_s": rate, "requests": len(state.samples),
        "generator_behind_schedule_s": round(state.behind_schedule_s, 1),
        "statuses": dict(sorted(statuses.items())),
        "by_operation": {f"{op} {status}": n for (op, status), n in sorted(by_op.items())},
        "server_errors": len(state.server_errors),
        "accepted_commands": len(state.accepted),
        "placement_events_after_setup": len(stored),
        "accepted_equals_stored": state.accepted == stored,
        "stored_events": len(everything), "last_position": last,
        "topic_records": records, "topic_distinct_events": len(on_topic),
        "topic_equals_store": on_topic == everything,
        "duplicates_on_topic": records - len(on_topic),
        "latency_per_minute": per_minute(state.samples, started),
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    ok = (summary["server_errors"] == 0 and summary["accepted_equals_stored"]
          and summary["topic_equals_store"])
    print("RECONCILED: every accepted command is one event, the topic equals the store, "
          "no 5xx" if ok else "NOT RECONCILED", file=sys.stderr)
    if state.server_errors:
        print("\n".join(state.server_errors[:20]), file=sys.stderr)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
