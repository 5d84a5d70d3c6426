"""The API, a process of its own (`wbl api`), killed with SIGKILL at random moments while
clients keep sending commands; every client retries each command with its Idempotency-Key
until it gets an answer. Afterwards every command was recorded exactly once (none lost,
none twice: each retry of a command its killed first attempt had committed was answered
from the command log), and the store, the topic (deduplicated) and the read models agree."""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from benchmarks.soak import SECRET, STARTS, Placement, setup, token
from domain.actor import Role
from domain.placement.hours import EntryStatus
from infra.broker import free_port
from infra.settings import Settings
from services.bootstrap import Runtime
from tests.faults.processes import role_process
from tests.integration.test_projections_support import audit_entries
from tests.support import read_topic, reconcile, stored_events

pytestmark = pytest.mark.integration

RETRYABLE = {409, 502, 503, 504}  # in progress elsewhere, or the store briefly unavailable


def api_process(settings: Settings, port: int, log: Path) -> subprocess.Popen[bytes]:
    return role_process("api", settings, log, WBL_API_PORT=str(port), WBL_JWT_SECRET=SECRET,
                        # a dead process's key is taken over after 1 s (default 30 s)
                        WBL_IDEMPOTENCY_ABANDONED_S="1", WBL_LOG_LEVEL="INFO")


@dataclass
class Sent:
    kind: str
    placement: Placement
    status: int = 0
    answer: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0


class InFlight:
    """Requests sent and not yet answered, so a kill can be known to land mid-request."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def add(self, n: int) -> None:
        with self.lock:
            self.count += n


def send(client: httpx.Client, who: str, path: str, body: dict[str, Any], sent: Sent,
         deadline: float, in_flight: InFlight) -> None:
    """One command: the same key and body until a final answer (a 2xx or a refusal)."""
    key = str(uuid.uuid4())
    while True:
        assert time.monotonic() < deadline, f"no answer to {path} in time"
        sent.attempts += 1
        in_flight.add(1)
        try:
            response = client.post(path, json=body, headers={
                "Authorization": f"Bearer {who}", "Idempotency-Key": key})
        except httpx.TransportError:  # killed mid-request, or not restarted yet
            time.sleep(0.05)
            continue
        finally:
            in_flight.add(-1)
        if response.status_code in RETRYABLE:
            time.sleep(0.05)
            continue
        sent.status = response.status_code
        sent.answer = response.json()
        return


def test_api_killed_mid_request_each_retried_command_recorded_once(
    store_settings: Settings, kafka_bootstrap: str, topic_name: str, iterations: int,
    tmp_path: Path,
) -> None:
    settings = store_settings.model_copy(
        update={"kafka_bootstrap_servers": kafka_bootstrap, "topic": topic_name})
    port, log = free_port(), tmp_path / "api.log"
    process = [api_process(settings, port, log)]
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

    def wait_serving() -> None:
        deadline = time.monotonic() + 60
        while True:
            assert process[0].poll() is None and time.monotonic() < deadline, (
                log.read_text()[-2000:])
            try:
                if client.get("/health").status_code in (200, 503):
                    return
            except httpx.TransportError:
                time.sleep(0.05)

    wait_serving()
    placements = setup(client, 6)

    sent: list[Sent] = []
    in_flight = InFlight()
    stop = threading.Event()
    rng = random.Random(20261201)
    deadline = time.monotonic() + 240 + 20 * iterations

    def clients(mine: list[Placement]) -> None:
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        day = 0
        while not stop.is_set():
            day += 1
            for placement in mine:
                work_date = (STARTS + timedelta(days=day)).isoformat()
                logged = Sent("log", placement)
                send(http, token(placement.learner, Role.LEARNER),
                     f"/placements/{placement.id}/hours",
                     {"work_date": work_date, "minutes": 30 + day % 90}, logged, deadline,
                     in_flight)
                sent.append(logged)
                if logged.status != 201:
                    continue
                approved = Sent("approve", placement)
                send(http, token(placement.supervisor, Role.SUPERVISOR),
                     f"/placements/{placement.id}/hours/{logged.answer['created_id']}/approve",
                     {}, approved, deadline, in_flight)
                sent.append(approved)
        http.close()

    workers = [threading.Thread(target=clients, args=(placements[i::3],)) for i in range(3)]
    for worker in workers:
        worker.start()
    kills_mid_request = 0
    try:
        for _ in range(iterations):
            time.sleep(rng.uniform(0.3, 1.2))
            busy = in_flight.count > 0
            process[0].send_signal(signal.SIGKILL)
            process[0].wait(timeout=10)
            kills_mid_request += busy
            process[0] = api_process(settings, port, log)
            wait_serving()  # the next kill lands while it serves, not while it starts
        time.sleep(2)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=300)
        process[0].send_signal(signal.SIGTERM)
        process[0].wait(timeout=20)
        client.close()

    # Every command got a final answer, and a successful one.
    refused = [(s.kind, s.status, s.answer) for s in sent if s.status not in (200, 201)]
    assert not refused, refused[:5]
    retried = sum(1 for s in sent if s.attempts > 1)
    answered_from_log = log.read_text().count("answered from the command log")

    # Exactly once: each log command is one entry, each approval approved its entry.
    runtime = Runtime.build(settings)
    runtime.start()
    try:
        logs = [s for s in sent if s.kind == "log"]
        assert len({s.answer["created_id"] for s in logs}) == len(logs)
        approvals = sum(1 for s in sent if s.kind == "approve")
        entries = approved = 0
        for placement in placements:
            aggregate = runtime.ledger.get_placement(UUID(placement.id))
            entries += len(aggregate.entries)
            approved += sum(1 for e in aggregate.entries.values()
                            if e.status is EntryStatus.APPROVED)
        assert entries == len(logs), "an entry recorded twice, or lost"
        assert approved == approvals

        # The topic, deduplicated, is the store; the audit trail holds every event once.
        assert runtime.relay is not None and runtime.projector is not None
        last = runtime.ledger.recorder.max_notification_id() or 0
        stored = len(stored_events(runtime.ledger))  # positions may have gaps (PostgreSQL)
        wait = time.monotonic() + 120
        while (runtime.relay.status.acknowledged_position < last
               or audit_entries(runtime.engine) < stored):
            assert time.monotonic() < wait, (
                f"caught up: relay {runtime.relay.status}, audit entries "
                f"{audit_entries(runtime.engine)} of {stored}")
            time.sleep(0.2)
        result = reconcile(runtime.ledger, read_topic(kafka_bootstrap, topic_name))
        assert result.distinct == result.stored == stored
        assert audit_entries(runtime.engine) == stored
    finally:
        runtime.stop()
    print(f"\nAPI SIGKILL x{iterations} ({kills_mid_request} mid-request): {len(sent)} "
          f"commands ({retried} retried after a kill, {answered_from_log} of them committed "
          f"by the killed process and answered from the command log), {stored} events, "
          "0 lost, 0 recorded twice")
    assert kills_mid_request >= iterations // 2, "too few kills landed mid-request"
