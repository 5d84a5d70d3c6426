"""The relay, a process of its own, killed with SIGKILL at random moments mid-batch, again
and again while commands keep coming; afterwards the topic, deduplicated, is exactly the store."""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from infra.settings import Settings
from services.bootstrap import build_ledger
from services.ledger import Ledger
from services.workers.relay import Relay
from tests.faults.processes import role_process
from tests.support import placement_story, read_topic, reconcile

pytestmark = pytest.mark.integration


def relay_process(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    return role_process("relay", settings, log, WBL_RELAY_BATCH_SIZE="40")


def test_relay_killed_mid_batch_loses_and_reorders_nothing(
    store_settings: Settings, kafka_bootstrap: str, topic_name: str, iterations: int,
    tmp_path: Path,
) -> None:
    settings = store_settings.model_copy(
        update={"kafka_bootstrap_servers": kafka_bootstrap, "topic": topic_name})
    ledger: Ledger = build_ledger(settings)
    rng = random.Random(20261123)
    stop_writing = threading.Event()
    written = [0]

    def write() -> None:
        n = 0
        while not stop_writing.is_set():
            written[0] += placement_story(ledger, learner=f"learner-{n}", days=4)
            n += 1

    for n in range(10):  # a backlog, so early kills land in the middle of publishing
        placement_story(ledger, learner=f"backlog-{n}", days=4)
    writer = threading.Thread(target=write)
    writer.start()
    relay_tracking = Relay(ledger, settings, kafka_bootstrap)
    killed_mid_batch = 0
    try:
        for _ in range(iterations):
            before = relay_tracking.recorded_position()
            process = relay_process(settings, tmp_path / "relay.log")
            # Strike while it publishes: once it has acknowledged a batch, at a random moment.
            deadline = time.monotonic() + 60
            while relay_tracking.recorded_position() == before:
                assert process.poll() is None, (tmp_path / "relay.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "the relay published nothing in 60 s"
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.3))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            after = relay_tracking.recorded_position()
            stored = ledger.recorder.max_notification_id() or 0
            if before < after < stored:
                killed_mid_batch += 1
    finally:
        stop_writing.set()
        writer.join()

    # A last relay run without faults drains what is left.
    relay = Relay(ledger, settings, kafka_bootstrap)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 60
    stored = ledger.recorder.max_notification_id() or 0
    while relay.recorded_position() < stored:
        assert time.monotonic() < deadline, relay.status
        time.sleep(0.1)
    stop.set()
    thread.join()

    result = reconcile(ledger, read_topic(kafka_bootstrap, topic_name))
    ledger.close()
    print(f"\nrelay SIGKILL x{iterations}: {result.distinct} events, {result.duplicates} "
          f"duplicates absorbed, {killed_mid_batch} kills mid-publishing, 0 lost")
    assert result.distinct == result.stored
    assert killed_mid_batch >= 1, "no kill landed while the relay was publishing"
