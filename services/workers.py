"""The relay and the projector as child processes of `wbl run`.

One Python process has one interpreter lock: with the API, the relay and the projector as
threads of one process, the three shared one core of the two, and the API's throughput and
latency paid for the others' work. `wbl run` therefore starts `wbl relay` and
`wbl projector` as children (the production roles, unchanged), waits until both beat
(``services/observed.py``), restarts one that dies, and stops both when it stops.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

from sqlalchemy import Engine

from infra.settings import Settings
from services.observed import BEAT_S, heartbeat_metadata, last_beats

log = logging.getLogger(__name__)

ROLES = ("relay", "projector")


class Workers:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        assert settings.kafka_bootstrap_servers, "the children need the broker's address"
        self.engine = engine
        heartbeat_metadata.create_all(engine)
        # The children read the same WBL_* environment; what `wbl run` took from its options
        # or started itself (the data folder, the local broker) is passed explicitly.
        self.env = dict(os.environ)
        self.env["WBL_DATA_DIR"] = str(settings.data_dir)
        self.env["WBL_KAFKA_BOOTSTRAP_SERVERS"] = settings.kafka_bootstrap_servers
        self.env.pop("WBL_METRICS_PORT", None)  # two children cannot share one port
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts = 0
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self, timeout: float = 60.0) -> None:
        for role in ROLES:
            self.processes[role] = self._spawn(role)
        self._wait_for_beats(timeout)
        self._watcher = threading.Thread(target=self._watch, name="workers", daemon=True)
        self._watcher.start()

    def _spawn(self, role: str) -> subprocess.Popen[bytes]:
        # Their own session: Ctrl-C reaches `wbl run` only, which then stops them in order.
        return subprocess.Popen([sys.executable, "-m", "services.cli", role], env=self.env,
                                start_new_session=True)

    def _wait_for_beats(self, timeout: float) -> None:
        """Serve only once both children run: a first command then finds its read model
        updated as fast as it would with the roles in one process."""
        deadline = time.monotonic() + timeout
        while True:
            beats = last_beats(self.engine)
            ready = {role for role, process in self.processes.items()
                     if role in beats and beats[role][0] < 2 * BEAT_S
                     and beats[role][1].get("running") and process.poll() is None}
            if ready == set(ROLES):
                return
            for role, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"wbl {role} exited at start (code {process.returncode})")
            if time.monotonic() > deadline:
                raise RuntimeError("the relay and projector did not start in time")
            time.sleep(0.1)

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            for role, process in list(self.processes.items()):
                if process.poll() is not None and not self._stop.is_set():
                    log.warning("worker exited; restarting it",
                                extra={"role": role, "code": process.returncode})
                    self.restarts += 1
                    self.processes[role] = self._spawn(role)

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
