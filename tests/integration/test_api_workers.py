"""`wbl api --workers 2` on PostgreSQL, driven from outside as a user would (decision 061).

One `wbl api --workers 2` process (two API processes behind one port, each with its own
aggregate cache) is started as a subprocess on a fresh database with no JWT secret set, so
the two processes must agree on the key file the parent made. Clients on separate
connections (the kernel hands each connection to one process) then send:

- commands on one placement at once, without If-Match, from eight clients: logs of hours
  on distinct days and approvals of the entries logged, so that each process's cached
  placement is overtaken by the other's writes all the time. Every command is accepted (no
  409), each recorded exactly once, and both processes answered some of them;
- the same keyed command twelve times at once: one entry, one answer for all;
- on the embedded SQLite store, `--workers 2` is refused with the reason (exit code 2).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from domain.actor import Role
from infra.broker import free_port
from infra.settings import Settings
from services.api.auth import issue_token, token_key
from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.integration

ORG = "district-workers"
STARTS = date(2024, 1, 8)


def wbl(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("WBL_")}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "services.cli", *args],
                                env={**base, **env}, stdout=out, stderr=subprocess.STDOUT)


@dataclass
class Served:
    port: int
    data_dir: Path
    log: Path
    database_url: str

    def token(self, actor_id: str, role: Role, org: str | None = ORG) -> str:
        # The key file the service made at start: if its processes had made one each,
        # half of the requests would be refused.
        key = token_key(Settings(data_dir=self.data_dir))
        return issue_token(key, actor_id=actor_id, role=role, organisation_id=org,
                           ttl_seconds=3600)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)

    def pids_by_route(self) -> dict[str, set[int]]:
        """Which processes answered each route template, from the access log."""
        found: dict[str, set[int]] = {}
        for line in self.log.read_text().splitlines():
            if '"wbl.api.access"' in line:
                entry = json.loads(line)
                found.setdefault(f"{entry['method']} {entry['route']}", set()).add(entry["pid"])
        return found


@pytest.fixture(scope="module")
def two_workers(postgres_server: PostgresServer | None,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if postgres_server is None:
        if os.environ.get("WBL_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail("no PostgreSQL (WBL_TEST_REQUIRE_POSTGRES=1)")
        pytest.skip("no PostgreSQL for `wbl api --workers 2`")
    name = f"wbl_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    folder = tmp_path_factory.mktemp("workers")
    served = Served(free_port(), folder / "data", folder / "wbl-api.log",
                    postgres_server.database_url(name))
    process = wbl("api", "--workers", "2", env={
        "WBL_DATABASE_URL": served.database_url, "WBL_DATA_DIR": str(served.data_dir),
        "WBL_API_PORT": str(served.port), "WBL_LOG_LEVEL": "INFO"}, log=served.log)
    try:
        with served.client() as client:
            deadline = 60.0
            while True:
                assert process.poll() is None, served.log.read_text()[-3000:]
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                deadline -= 0.1
                assert deadline > 0, served.log.read_text()[-3000:]
                threading.Event().wait(0.1)
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        with psycopg.connect(postgres_server.admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def ok(client: httpx.Client, token: str, path: str, body: dict[str, Any],
       **headers: str) -> httpx.Response:
    response = client.post(path, json=body, headers={"Authorization": f"Bearer {token}",
                                                     **headers})
    assert response.status_code in (200, 201), response.text
    return response


def started_placement(served: Served, learner: str, supervisor: str) -> str:
    with served.client() as client:
        admin, coordinator = (served.token("adm-w", Role.ADMIN, None),
                              served.token("coord-w", Role.COORDINATOR))
        if client.get(f"/organisations/{ORG}", headers={
                "Authorization": f"Bearer {admin}"}).status_code == 404:
            ok(client, admin, "/organisations", {"id": ORG, "name": "Workers district",
                                                 "kind": "district"})
        opportunity = ok(client, coordinator, "/opportunities", {
            "organisation_id": ORG, "title": "Machinist intern", "employer_name": "Acme",
            "worksite": "Main St", "wbl_type": "PaidInternship", "paid": True,
            "hourly_wage": "16.50", "capacity": 100, "starts_on": STARTS.isoformat(),
            "ends_on": (date.today() + timedelta(days=365)).isoformat()}).json()["id"]
        placement: str = ok(client, coordinator, "/placements", {
            "opportunity_id": opportunity, "learner_id": learner,
            "supervisor_id": supervisor, "learner_born_on": "2000-01-01"}).json()["id"]
        base = f"/placements/{placement}"
        for who, party in ((served.token(learner, Role.LEARNER), "learner"),
                           (served.token(supervisor, Role.SUPERVISOR), "employer"),
                           (coordinator, "coordinator")):
            ok(client, who, f"{base}/agreement-signatures", {"party": party})
        ok(client, served.token(supervisor, Role.SUPERVISOR), f"{base}/start",
           {"started_on": STARTS.isoformat()})
    return placement


def test_commands_on_one_placement_from_eight_clients_are_each_recorded_once(
        two_workers: Served) -> None:
    served = two_workers
    placement = started_placement(served, "lrn-w1", "sup-w1")
    learner = served.token("lrn-w1", Role.LEARNER)
    supervisor = served.token("sup-w1", Role.SUPERVISOR)
    base = f"/placements/{placement}"
    clients, per_client = 8, 6
    statuses: Counter[int] = Counter()
    refusals: list[str] = []
    logged: list[str] = []
    approved: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def one_client(n: int) -> None:
        """Log an hour entry on a day of its own, then approve it; half of the clients send
        Idempotency-Keys, none sends If-Match."""
        barrier.wait()
        for i in range(per_client):
            # A connection per command: the kernel gives each to one process or the other
            # (with one connection per client, a busy machine let one process take all 8).
            with served.client() as client:
                keyed = {"Idempotency-Key": uuid.uuid4().hex} if n % 2 else {}
                day = (STARTS + timedelta(days=1 + n * per_client + i)).isoformat()
                log = client.post(f"{base}/hours", json={"work_date": day, "minutes": 60},
                                  headers={"Authorization": f"Bearer {learner}", **keyed})
                with lock:
                    statuses[log.status_code] += 1
                if log.status_code != 201:
                    refusals.append(log.text)
                    continue
                entry = log.json()["created_id"]
                keyed = {"Idempotency-Key": uuid.uuid4().hex} if n % 2 else {}
                approve = client.post(f"{base}/hours/{entry}/approve", json={},
                                      headers={"Authorization": f"Bearer {supervisor}",
                                               **keyed})
                with lock:
                    statuses[approve.status_code] += 1
                    logged.append(entry)
                    if approve.status_code == 200:
                        approved.append(entry)
                    else:
                        refusals.append(approve.text)

    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one_client, range(clients)))

    assert not refusals, refusals[:3]
    assert statuses == {201: clients * per_client, 200: clients * per_client}
    with served.client() as client:
        read = client.get(f"{base}/hours", params={"limit": 500},
                          headers={"Authorization": f"Bearer {supervisor}"}).json()
    entries = {e["entry_id"]: e for e in read["entries"]}
    assert sorted(entries) == sorted(logged), "an entry lost or recorded twice"
    assert read["total"] == clients * per_client
    assert {e["status"] for e in entries.values()} == {"approved"}
    assert len({e["work_date"] for e in entries.values()}) == clients * per_client
    # The placement's events: created, three signatures, started, then one per command.
    version = int(client_version(served, placement, supervisor))
    assert version == 5 + 2 * clients * per_client
    # Both processes took commands on the placement: each one's cache was overtaken.
    answered = served.pids_by_route()
    assert len(answered["POST /placements/{placement_id}/hours"]
               | answered["POST /placements/{placement_id}/hours/{entry_id}/approve"]) == 2


def client_version(served: Served, placement: str, token: str) -> str:
    with served.client() as client:
        return client.get(f"/placements/{placement}",
                          headers={"Authorization": f"Bearer {token}"}).headers["etag"].strip('"')


def test_one_keyed_command_sent_twelve_times_at_once_is_recorded_once(
        two_workers: Served) -> None:
    served = two_workers
    placement = started_placement(served, "lrn-w2", "sup-w2")
    learner = served.token("lrn-w2", Role.LEARNER)
    key, base = uuid.uuid4().hex, f"/placements/{placement}"
    body = {"work_date": (STARTS + timedelta(days=3)).isoformat(), "minutes": 90}
    barrier = threading.Barrier(12)

    def send(_: int) -> httpx.Response:
        with served.client() as client:
            barrier.wait()
            return client.post(f"{base}/hours", json=body, headers={
                "Authorization": f"Bearer {learner}", "Idempotency-Key": key})

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(send, range(12)))
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    assert len({a.text for a in answers}) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 11
    with served.client() as client:
        entries = client.get(f"{base}/hours", headers={
            "Authorization": f"Bearer {learner}"}).json()["entries"]
        again = client.post(f"{base}/hours", json=body, headers={
            "Authorization": f"Bearer {learner}", "Idempotency-Key": key})
    assert [e["entry_id"] for e in entries] == [answers[0].json()["created_id"]]
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert client_version(served, placement, learner) == "6"


def test_several_workers_are_refused_on_the_embedded_sqlite_store(tmp_path: Path) -> None:
    log = tmp_path / "wbl-api.log"
    process = wbl("api", "--workers", "2", env={
        "WBL_DATA_DIR": str(tmp_path / "data"), "WBL_API_PORT": str(free_port())}, log=log)
    assert process.wait(timeout=60) == 2
    said = log.read_text()
    assert "refusing to start: --workers 2 needs PostgreSQL (WBL_DATABASE_URL)" in said
    assert "one writer at a time" in said
    assert not (tmp_path / "data" / "events.sqlite3").exists()  # refused before anything
