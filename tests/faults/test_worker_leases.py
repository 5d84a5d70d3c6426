"""One relay per store (invariant 11): a second `wbl relay` started against the same store
waits for the lease while the first publishes, and takes over when the first is killed with
SIGKILL; the topic is still exactly the store."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from infra.database import read_model_engine
from infra.settings import Settings
from services.bootstrap import build_ledger
from services.workers.heartbeats import last_beats
from tests.faults.supervision import overlapping_relays, relay_spans, wbl, wbl_env
from tests.support import placement_story, read_topic, reconcile

pytestmark = pytest.mark.integration


def _wait(condition: object, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} within {timeout} s\n" + (
            log.read_text()[-3000:] if log.exists() else "")
        time.sleep(0.1)


def test_second_relay_waits_for_the_lease_and_takes_over(
    store_settings: Settings, kafka_bootstrap: str, topic_name: str, tmp_path: Path,
) -> None:
    settings = store_settings.model_copy(
        update={"kafka_bootstrap_servers": kafka_bootstrap, "topic": topic_name})
    batch_log, log = tmp_path / "batches.log", tmp_path / "relays.log"
    env = wbl_env(settings, WBL_RELAY_BATCH_SIZE="20", WBL_RELAY_BATCH_LOG=str(batch_log))
    ledger = build_ledger(settings)
    engine = read_model_engine(settings)
    writing = threading.Event()
    stop_writing = threading.Event()

    def write() -> None:
        n = 0
        while not stop_writing.is_set():
            if writing.is_set():
                placement_story(ledger, learner=f"learner-{n}", days=2)
                n += 1
            else:
                time.sleep(0.05)

    def holder() -> int | None:
        beat = last_beats(engine).get("relay")
        return int(beat[1]["pid"]) if beat and beat[1].get("running") else None

    writer = threading.Thread(target=write)
    writer.start()
    first = wbl(["relay"], env, log)
    second = None
    try:
        _wait(lambda: holder() == first.pid, 60, "the first relay beats as lease holder", log)
        writing.set()
        _wait(lambda: first.pid in relay_spans(batch_log), 30, "the first relay publishes", log)

        second = wbl(["relay"], env, log)
        time.sleep(4.0)  # the second starts (about 2 s) and then waits, while events come in
        assert second.poll() is None, log.read_text()[-3000:]
        assert second.pid not in relay_spans(batch_log), "the second relay published"
        assert holder() == first.pid
        health_lease = last_beats(engine)["relay"][1]["lease"]
        assert health_lease["pid"] == first.pid and health_lease["held"]

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        _wait(lambda: holder() == second.pid, 30, "the second relay takes the lease", log)
        _wait(lambda: second.pid in relay_spans(batch_log), 30, "the second relay publishes",
              log)
        stop_writing.set()
        writer.join()
        stored = ledger.recorder.max_notification_id() or 0
        tracking = ledger.factory.tracking_recorder()
        _wait(lambda: (tracking.max_tracking_id(f"relay:{topic_name}") or 0) >= stored, 60,
              "the second relay publishes everything", log)
    finally:
        stop_writing.set()
        writer.join()
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)

    spans = relay_spans(batch_log)
    assert set(spans) == {first.pid, second.pid}
    assert overlapping_relays(batch_log) == []
    result = reconcile(ledger, read_topic(kafka_bootstrap, topic_name))
    ledger.close()
    engine.dispose()
    print(f"\nsecond relay waited, took over after SIGKILL: {result.distinct} events, "
          f"{spans[first.pid][2]} + {spans[second.pid][2]} batches, no overlap")
