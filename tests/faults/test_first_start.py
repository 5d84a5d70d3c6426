"""The first start on an empty PostgreSQL database (decision 040): the API, the relay and the
projector started at the same moment, as separate processes, each on a database created for
the try. Before the schema was set up once under a lock, one start in three failed
(``tuple concurrently updated``) and took a role down with it."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from infra.broker import free_port
from infra.settings import Settings
from tests.conftest import PG_ADMIN_DSN
from tests.faults.supervision import kill_count, wbl, wbl_env

pytestmark = pytest.mark.integration


def _all_up(processes: dict[str, subprocess.Popen[bytes]], http: httpx.Client, log: Path,
            timeout: float = 90) -> None:
    """Until the API answers /health 200 with the relay and projector beating (their pids)."""
    deadline = time.monotonic() + timeout
    while True:
        for role, process in processes.items():
            assert process.poll() is None, (
                f"wbl {role} exited (code {process.returncode})\n" + log.read_text()[-4000:])
        assert time.monotonic() < deadline, "the roles did not come up\n" + log.read_text()
        try:
            answer = http.get("/health")
            body = answer.json()
            if (answer.status_code == 200 and body["relay"] and body["projector"]
                    and body["relay"]["lease"]["pid"] == processes["relay"].pid
                    and body["projector"]["lease"]["pid"] == processes["projector"].pid):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)


def test_every_role_at_once_on_a_fresh_postgresql_database(
    kafka_bootstrap: str, topic_name: str, tmp_path: Path,
) -> None:
    tries = kill_count()
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    took: list[float] = []
    for attempt in range(tries):
        name = f"wbl_first_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        port = free_port()
        settings = Settings(data_dir=tmp_path / f"data-{attempt}", database_url=f"{base}/{name}",
                            kafka_bootstrap_servers=kafka_bootstrap,
                            topic=f"{topic_name}-{attempt}")
        env = wbl_env(settings, WBL_API_PORT=str(port))
        log = tmp_path / f"roles-{attempt}.log"
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
        started = time.monotonic()
        processes = {role: wbl([role], env, log) for role in ("api", "relay", "projector")}
        try:
            _all_up(processes, http, log)
            took.append(time.monotonic() - started)
        finally:
            http.close()
            for process in processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            codes = {role: process.wait(timeout=30) for role, process in processes.items()}
            with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        # uvicorn (the API) re-raises the SIGTERM it handled gracefully: -15 is its clean stop.
        assert codes["relay"] == codes["projector"] == 0, (codes, log.read_text()[-4000:])
        assert codes["api"] in (0, -signal.SIGTERM), (codes, log.read_text()[-4000:])
        text = log.read_text()
        assert "Traceback" not in text and "concurrently" not in text, text[-4000:]
    print(f"\nfirst start, api + relay + projector at once on a fresh PostgreSQL database "
          f"x{tries}: 0 failures; all up in {min(took):.1f}-{max(took):.1f} s")
