"""The relay and the projector as child processes of `wbl run`.

One Python process has one interpreter lock: with the API, the relay and the projector as
threads of one process, the three shared one core of the two, and the API's throughput and
latency paid for the others' work. `wbl run` therefore starts `wbl relay` and
`wbl projector` as children (the production roles, unchanged), waits until both beat
(``services/workers/heartbeats.py``), restarts one that dies, and stops both when it stops.

No child outlives `wbl run` (invariant 11), however `wbl run` ends: a SIGKILL of it alone or
of its whole process group included. Each child binds itself to its parent at start
(``bind_to_parent``): Linux's parent-death signal, a check that its parent is still the one
that started it (the parent may have died before the child asked for the signal), and a
thread that watches the parent's pid as a second line. The children keep sessions of their
own so that Ctrl-C reaches `wbl run` alone, which stops them in order. A child that still
outlived its parent would hold its lease and keep the next `wbl run`'s child waiting rather
than publishing beside it (``infra/leases.py``, docs/decisions/039).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from sqlalchemy import Engine

from infra.settings import Settings
from services.workers.heartbeats import BEAT_S, last_beats

log = logging.getLogger(__name__)

ROLES = ("relay", "projector")
PARENT_PID = "WBL_PARENT_PID"
"""Set by `wbl run` for its children: the pid they must not outlive (not a user setting)."""
PR_SET_PDEATHSIG = 1


def bind_to_parent(stop: threading.Event) -> None:
    """In a child of `wbl run`: end when the parent ends.

    1. ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills this process the moment the
       thread that started it ends, by SIGKILL too. SIGKILL, not SIGTERM: the parent that
       would have stopped us in order is gone, and the relay and projector are built to be
       killed at any moment (they record positions only after the work).
    2. The parent may have died before step 1: if our parent pid is no longer the one that
       started us, exit at once.
    3. A thread checks the parent pid every 0.2 s (where prctl is not available, or the
       signal did not come): it asks the worker to stop, then exits hard if it lingers.
    """
    expected = os.environ.get(PARENT_PID)
    if not expected:
        return
    parent = int(expected)
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except OSError:  # not Linux: the watching thread below is the only line
        pass
    if os.getppid() != parent:
        log.warning("parent gone before the worker started; exiting")
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        log.warning("parent gone; stopping")
        stop.set()
        time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class Workers:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        assert settings.kafka_bootstrap_servers, "the children need the broker's address"
        self.engine = engine
        # The children read the same WBL_* environment; what `wbl run` took from its options
        # or started itself (the data folder, the local broker) is passed explicitly.
        self.env = dict(os.environ)
        self.env["WBL_DATA_DIR"] = str(settings.data_dir)
        self.env["WBL_KAFKA_BOOTSTRAP_SERVERS"] = settings.kafka_bootstrap_servers
        self.env.pop("WBL_METRICS_PORT", None)  # two children cannot share one port
        self.env[PARENT_PID] = str(os.getpid())
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts = 0
        self._stop = threading.Event()
        self._spawning = threading.Lock()
        self._watcher: threading.Thread | None = None

    def start(self, timeout: float = 60.0) -> None:
        for role in ROLES:
            self.processes[role] = self._spawn(role)
        self._wait_for_beats(timeout)
        self._watcher = threading.Thread(target=self._watch, name="workers", daemon=True)
        self._watcher.start()

    def _spawn(self, role: str) -> subprocess.Popen[bytes]:
        # Their own session: Ctrl-C reaches `wbl run` only, which then stops them in order.
        # They bind themselves to this process at start (bind_to_parent).
        return subprocess.Popen([sys.executable, "-m", "services.cli", role], env=self.env,
                                start_new_session=True)

    def _wait_for_beats(self, timeout: float) -> None:
        """Serve only once both children run: a first command then finds its read model
        updated as fast as it would with the roles in one process. A beat counts only from
        our own child (the lease holder): a fresh beat of an earlier run's worker does not."""
        deadline = time.monotonic() + timeout
        while True:
            beats = last_beats(self.engine)
            ready = {role for role, process in self.processes.items()
                     if role in beats and beats[role][0] < 2 * BEAT_S
                     and beats[role][1].get("pid") == process.pid
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
                with self._spawning:
                    if process.poll() is not None and not self._stop.is_set():
                        log.warning("worker exited; restarting it",
                                    extra={"role": role, "code": process.returncode})
                        self.restarts += 1
                        self.processes[role] = self._spawn(role)

    def stop(self) -> None:
        """SIGTERM the children and wait for them, then end the watcher: a child the watcher
        restarted has its parent-death signal tied to the watcher thread (Linux ties it to
        the thread that forked), so that thread must outlive the orderly stop."""
        with self._spawning:
            self._stop.set()
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if self._watcher is not None:
            self._watcher.join(timeout=5)
