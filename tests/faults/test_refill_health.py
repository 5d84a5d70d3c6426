"""Right after a start on a topic that lost its events, `/health` says the relay is refilling
and how much is still to publish, not a lag of 0 (its recorded position says everything was
published once). The relay runs as `wbl relay`; the view is the one `/health` reads."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from infra import kafka as kafka_io
from infra.database import read_model_engine
from infra.settings import Settings
from services.bootstrap import build_ledger
from services.workers.heartbeats import ObservedWorkers
from tests.faults.supervision import wbl, wbl_env
from tests.support import placement_story, read_topic, reconcile

pytestmark = pytest.mark.integration


def test_health_reports_the_refill_still_to_do(
    kafka_bootstrap: str, topic_name: str, tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data", kafka_bootstrap_servers=kafka_bootstrap,
                        topic=topic_name)
    ledger = build_ledger(settings)
    engine = read_model_engine(settings)
    observed = ObservedWorkers(ledger, engine, topic_name)
    log = tmp_path / "relay.log"
    for n in range(60):
        placement_story(ledger, learner=f"learner-{n}", days=4)
    stored = ledger.recorder.max_notification_id() or 0

    def published() -> int:
        return observed.tracking.max_tracking_id(f"relay:{topic_name}") or 0

    relay = wbl(["relay"], wbl_env(settings), log)
    deadline = time.monotonic() + 60
    while published() < stored:
        assert relay.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.1)
    relay.send_signal(signal.SIGTERM)
    assert relay.wait(timeout=30) == 0

    # The topic loses everything (as a local broker that restarted would).
    admin = kafka_io.admin_client(kafka_bootstrap)
    try:
        admin.delete_topics([topic_name])
        time.sleep(1.0)
    finally:
        admin.close()

    relay = wbl(["relay"], wbl_env(settings, WBL_RELAY_BATCH_SIZE="3"), log)
    seen: list[tuple[str, int]] = []
    try:
        deadline = time.monotonic() + 90
        while True:
            assert relay.poll() is None and time.monotonic() < deadline, (
                seen[-5:], log.read_text()[-2000:])
            view, _ = observed.views()
            if view is not None and view.get("pid") == relay.pid:
                seen.append((view["phase"], view["lag"]))
                if view["phase"] == "publishing" and view["lag"] == 0:
                    break
            time.sleep(0.05)
    finally:
        relay.send_signal(signal.SIGTERM)
        relay.wait(timeout=30)

    refilling = [lag for phase, lag in seen if phase in ("starting", "refilling")]
    assert refilling, f"no beat while refilling: {seen[:10]}"
    assert all(lag > 0 for lag in refilling), seen
    assert max(refilling) > stored // 2, (stored, seen[:10])
    result = reconcile(ledger, read_topic(kafka_bootstrap, topic_name))
    ledger.close()
    engine.dispose()
    print(f"\nrefill after the topic lost {stored} events: /health said "
          f"{len(refilling)} times starting/refilling, lag from {max(refilling)} down to "
          f"{min(refilling)}, then publishing with lag 0; topic = store ({result.distinct})")
