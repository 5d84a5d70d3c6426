"""The README's first command, as a person would use it: `wbl run` in its own process,
an opportunity posted over HTTP, the process stopped and started again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from kafka import KafkaConsumer

from infra.broker import free_port

pytestmark = pytest.mark.integration

OPPORTUNITY = {
    "organisation_id": "district-7",
    "title": "Job shadow: hospital pharmacy",
    "employer_name": "St. Mary's",
    "worksite": "Pharmacy, 3rd floor",
    "wbl_type": "JobShadowing",
    "starts_on": "2027-02-01",
    "ends_on": "2027-02-01",
}


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of ``pid`` from /proc, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0], int(fields[1])


def running(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def children_of(pid: int) -> set[int]:
    """The running children of ``pid``, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        stat = _stat(int(entry.name)) if entry.name.isdigit() else None
        if stat is not None and stat[0] != "Z" and stat[1] == pid:
            found.add(int(entry.name))
    return found


class WblRun(httpx.Client):
    """An HTTP client of a running `wbl run`, knowing that process's pid."""

    pid: int


@contextmanager
def wbl_run(data_dir: Path, port: int, log: Path) -> Iterator[WblRun]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WBL_")}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "run", "--port", str(port),
             "--data-dir", str(data_dir)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    token = subprocess.run(  # `wbl tokens create`, as the README's quick start does
        [sys.executable, "-m", "services.cli", "tokens", "create", "--data-dir", str(data_dir),
         "--actor-id", "coord-7", "--role", "coordinator", "--organisation", "district-7"],
        env=env, capture_output=True, text=True, check=True).stdout.strip()
    client = WblRun(base_url=f"http://127.0.0.1:{port}", timeout=10,
                          headers={"Authorization": f"Bearer {token}"})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        client.pid = process.pid
        yield client
    finally:
        client.close()
        children = children_of(process.pid)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
        # No worker outlives `wbl run` (invariant 11), stopped in order here.
        assert not [pid for pid in children if running(pid)], children


def topic_event_ids(bootstrap: str, expected: int) -> set[str]:
    consumer = KafkaConsumer("wbl.placement-events.v1", bootstrap_servers=bootstrap,
                             auto_offset_reset="earliest", group_id=None,
                             consumer_timeout_ms=1000)
    ids: set[str] = set()
    deadline = time.monotonic() + 10
    try:
        while len(ids) < expected and time.monotonic() < deadline:
            ids.update(dict(r.headers)["ce_id"].decode() for r in consumer)
    finally:
        consumer.close()
    return ids


def test_wbl_run_serves_and_restarts_without_loss(tmp_path: Path) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "wbl.log"
    port = free_port()
    with wbl_run(data_dir, port, log) as api:
        started = time.monotonic()
        accepted = api.post("/opportunities", json=OPPORTUNITY).json()
        got = api.get(f"/opportunities/{accepted['id']}",
                      params={"min_position": accepted["position"]})
        assert got.status_code == 200
        assert time.monotonic() - started < 1.0
        bootstrap = api.get("/health").json()["broker"]["bootstrap_servers"]
        assert topic_event_ids(bootstrap, 1) == {f"{accepted['id']}/1"}
    assert "pages at http://127.0.0.1:" in log.read_text()
    assert "API docs at /docs" in log.read_text()

    with wbl_run(data_dir, port, log) as api:
        got = api.get(f"/opportunities/{accepted['id']}")
        assert got.status_code == 200
        assert got.json()["title"] == OPPORTUNITY["title"]
        bootstrap_again = api.get("/health").json()["broker"]["bootstrap_servers"]
        assert topic_event_ids(bootstrap_again, 1) == {f"{accepted['id']}/1"}


def test_wbl_run_keeps_its_relay_and_projector_processes_running(tmp_path: Path) -> None:
    """The relay and projector run as children of `wbl run`; the API reports them from their
    heartbeats, and a child killed with SIGKILL is started again without losing anything."""
    import sqlite3

    data_dir, log = tmp_path / "data", tmp_path / "wbl.log"

    def projector_pid() -> int:
        with sqlite3.connect(data_dir / "read_models.sqlite3") as db:
            (pid,) = db.execute(
                "SELECT pid FROM worker_heartbeats WHERE role = 'projector'").fetchone()
        return int(pid)

    with wbl_run(data_dir, free_port(), log) as api:
        health = api.get("/health").json()
        assert health["status"] == "ok", health
        assert health["relay"]["in_process"] is False and health["relay"]["running"]
        assert health["projector"]["in_process"] is False and health["projector"]["running"]
        # /health names the lease holders: the children of this `wbl run`.
        wbl_run_pid = api.pid
        for role in ("relay", "projector"):
            lease = health[role]["lease"]
            assert lease["held"] and lease["host"] and lease["pid"] in children_of(wbl_run_pid)
        assert health["relay"]["phase"] in ("starting", "publishing"), health["relay"]
        first = projector_pid()
        assert first != os.getpid()

        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            try:
                if projector_pid() != first and api.get("/health").status_code == 200:
                    break
            except (sqlite3.Error, TypeError):
                pass
            time.sleep(0.2)
        assert "worker exited; restarting it" in log.read_text()

        accepted = api.post("/opportunities", json=OPPORTUNITY).json()
        got = api.get(f"/opportunities/{accepted['id']}",
                      params={"min_position": accepted["position"]})
        assert got.status_code == 200, got.text
        assert api.get("/health").json()["relay"]["lag"] == 0
