"""The broker stops while commands keep coming, then returns empty (it lost its data):
commands are still accepted meanwhile, the relay refills the topic, the projector notices
the re-created topic and its read model ends exactly equal to the store."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from infra.broker import LocalBroker
from infra.settings import Settings
from projections.opportunities import opportunity_view
from services.bootstrap import Runtime
from tests.support import placement_story, read_topic, reconcile

pytestmark = pytest.mark.integration


@pytest.fixture
def own_broker() -> Iterator[LocalBroker]:
    """A broker of this test's own, since it will be stopped and restarted empty."""
    with LocalBroker() as broker:
        yield broker


def wait_until(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_broker_down_then_back_empty(store_settings: Settings, own_broker: LocalBroker,
                                     topic_name: str) -> None:
    settings = store_settings.model_copy(update={
        "kafka_bootstrap_servers": own_broker.bootstrap_servers, "topic": topic_name})
    runtime = Runtime.build(settings)
    runtime.start()
    assert runtime.relay is not None and runtime.projector is not None
    accepted_while_down = 0
    stories = 0
    try:
        for _ in range(5):
            placement_story(runtime.ledger, learner=f"before-{stories}", days=3)
            stories += 1
        # The store's own position, not the relay's view of it: the relay reads that only
        # between batches, and a relay still starting its session reports a lag of 0.
        before = runtime.ledger.recorder.max_notification_id() or 0
        wait_until(lambda: runtime.relay.status.acknowledged_position >= before, 20,
                   "the relay to catch up")

        own_broker.stop()
        down_since = time.monotonic()
        while time.monotonic() - down_since < 3:
            accepted_while_down += placement_story(runtime.ledger, learner=f"down-{stories}",
                                                   days=3)
            stories += 1
        assert runtime.relay.status.lag > 0

        own_broker.start()  # same port, no data
        for _ in range(5):
            placement_story(runtime.ledger, learner=f"after-{stories}", days=3)
            stories += 1
        stored = runtime.ledger.recorder.max_notification_id() or 0
        wait_until(lambda: runtime.relay.status.acknowledged_position >= stored, 60,
                   "the relay to refill the topic")

        def projected() -> int:
            with runtime.engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(opportunity_view))
                           .scalar() or 0)

        wait_until(lambda: projected() == stories, 60, "the projector to catch up")
        result = reconcile(runtime.ledger, read_topic(own_broker.bootstrap_servers, topic_name))
    finally:
        runtime.stop()
    assert accepted_while_down > 0
    assert result.distinct == result.stored
    assert runtime.relay.status.refills >= 1
    assert runtime.projector.status.fatal is False
    print(f"\nbroker outage: {accepted_while_down} events accepted while down, "
          f"{result.distinct} on the topic after refill, 0 lost")
