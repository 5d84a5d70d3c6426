"""No worker outlives `wbl run` (invariant 11): `wbl run` killed with SIGKILL, alone or with its
whole process group, again and again while a client posts commands over HTTP. Each time the
next `wbl run` starts at once, as a supervisor would start it. Afterwards:

- no relay or projector of a killed `wbl run` is running 2 s after the kill (the pids from
  its heartbeats and from the process tree, seen in /proc);
- no two relays ever published at the same time (the relays' per-batch log);
- every stored event is on the topic, in order per placement."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from infra.broker import free_port
from infra.database import read_model_engine
from infra.settings import Settings
from services.api.auth import issue_token, token_key
from services.bootstrap import build_ledger
from services.workers.heartbeats import last_beats
from tests.faults.supervision import (
    descendants,
    kill_count,
    overlapping_relays,
    relay_spans,
    wait_until_gone,
    wbl,
    wbl_env,
)
from tests.support import read_topic, reconcile

pytestmark = pytest.mark.integration

OPPORTUNITY = {
    "organisation_id": "district-7", "title": "Job shadow: hospital pharmacy",
    "employer_name": "St. Mary's", "worksite": "Pharmacy, 3rd floor",
    "wbl_type": "JobShadowing", "starts_on": "2027-02-01", "ends_on": "2027-02-01",
}


class Client(threading.Thread):
    """Posts opportunities over HTTP without pause, through every kill and restart."""

    def __init__(self, base_url: str, token: str) -> None:
        super().__init__(name="client")
        self.http = httpx.Client(base_url=base_url, timeout=5,
                                 headers={"Authorization": f"Bearer {token}"})
        self.stop = threading.Event()
        self.accepted = 0
        self.failed = 0

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                answer = self.http.post("/opportunities", json=OPPORTUNITY)
                if answer.status_code == 201 or answer.status_code == 200:
                    self.accepted += 1
                else:
                    self.failed += 1
            except httpx.TransportError:  # `wbl run` is down: try again
                self.failed += 1
                time.sleep(0.05)
        self.http.close()


def _serving(process: subprocess.Popen[bytes], http: httpx.Client, log: Path,
             timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "wbl run did not serve\n" + log.read_text()[-3000:]
        try:
            answer = http.get("/health")
            if answer.status_code == 200:
                return answer.json()  # type: ignore[no-any-return]
        except httpx.TransportError:
            pass
        time.sleep(0.1)


@pytest.mark.parametrize(("target", "store"), [("process", "sqlite"), ("group", "postgres")])
def test_wbl_run_killed_leaves_no_worker_behind(
    target: str, store: str, kafka_bootstrap: str, topic_name: str, tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    database_url = request.getfixturevalue("pg_database_url") if store == "postgres" else None
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url,
                        kafka_bootstrap_servers=kafka_bootstrap, topic=topic_name)
    port = free_port()
    batch_log, log = tmp_path / "batches.log", tmp_path / "wbl.log"
    env = wbl_env(settings, WBL_API_PORT=str(port), WBL_RELAY_BATCH_SIZE="20",
                  WBL_RELAY_BATCH_LOG=str(batch_log))
    token = issue_token(token_key(settings), actor_id="coord-7", role="coordinator",
                        organisation_id="district-7")
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
    engine = read_model_engine(settings)
    client = Client(f"http://127.0.0.1:{port}", token)
    rng = random.Random(20261201)
    kills = kill_count()
    orphans_seen: list[int] = []
    slowest_exit = 0.0
    run = wbl(["run"], env, log, own_group=True)
    try:
        for kill in range(kills):
            _serving(run, http, log)
            if kill == 0:
                client.start()
            time.sleep(rng.uniform(0.3, 1.5))  # under load: the client posts throughout
            beats = last_beats(engine)
            workers = {int(beat["pid"]) for _, beat in beats.values()} | descendants(run.pid)
            assert len(workers) >= 2, (beats, descendants(run.pid))
            if target == "group":
                os.killpg(run.pid, signal.SIGKILL)
            else:
                run.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            run.wait(timeout=10)
            run = wbl(["run"], env, log, own_group=True)  # the next one starts at once
            left = wait_until_gone(workers, timeout=2.0)
            slowest_exit = max(slowest_exit, time.monotonic() - killed_at)
            orphans_seen.extend(left)
            assert not left, f"kill {kill + 1}: workers {left} outlived wbl run"
        health = _serving(run, http, log)
        client.stop.set()
        client.join()
        # Let the last relay publish what the client stored.
        ledger = build_ledger(settings)
        stored = ledger.recorder.max_notification_id() or 0
        deadline = time.monotonic() + 60
        while True:
            health = http.get("/health").json()
            relay = health["relay"]
            if relay["phase"] == "publishing" and relay["acknowledged_position"] >= stored:
                break
            assert time.monotonic() < deadline, health
            time.sleep(0.2)
        assert relay["lease"]["pid"] in descendants(run.pid)
    finally:
        client.stop.set()
        if client.is_alive():
            client.join()
        if run.poll() is None:
            run.send_signal(signal.SIGTERM)
            assert run.wait(timeout=60) == 0, log.read_text()[-3000:]
        http.close()
        engine.dispose()

    overlaps = overlapping_relays(batch_log)
    assert overlaps == [], f"relays published at the same time: {overlaps}"
    result = reconcile(ledger, read_topic(kafka_bootstrap, topic_name))
    ledger.close()
    relays = len(relay_spans(batch_log))
    print(f"\nwbl run SIGKILL ({target}, {store}) x{kills}: {client.accepted} commands "
          f"accepted, {result.distinct} events = topic ({result.duplicates} duplicates), "
          f"{relays} relays published one after another, 0 orphans (workers gone at most "
          f"{slowest_exit:.2f} s after the kill)")
    assert client.accepted > 0
