"""The topic as a public contract, against the real broker: every record validates against
the published schemas; many placements written concurrently arrive in version order with
nothing lost; a topic that would lose history is refused; readers refuse gaps."""

from __future__ import annotations

import json
import threading
import time

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from domain.contract.catalogue import all_event_types
from infra import kafka as kafka_io
from infra.consumer import SequenceGap, TopicReader, read_all
from infra.schemas import DOCS, schema_file_name
from infra.settings import Settings
from services.bootstrap import Runtime, build_ledger
from services.ledger import Ledger
from services.workers.relay import Relay
from tests.support import every_event_type, placement_story, read_topic, reconcile

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(store_settings: Settings, kafka_bootstrap: str, topic_name: str) -> Settings:
    return store_settings.model_copy(
        update={"kafka_bootstrap_servers": kafka_bootstrap, "topic": topic_name})


def publish_everything(ledger: Ledger, settings: Settings) -> None:
    relay = Relay(ledger, settings, settings.kafka_bootstrap_servers or "")
    admin = kafka_io.admin_client(settings.kafka_bootstrap_servers or "")
    try:
        kafka_io.ensure_topic(admin, settings)
    finally:
        admin.close()
    producer = kafka_io.BatchProducer(settings.kafka_bootstrap_servers or "")
    try:
        relay.publish_pending(producer, relay.recorded_position())
    finally:
        producer.close()


def test_every_record_validates_against_the_published_schemas(settings: Settings) -> None:
    ledger = build_ledger(settings)
    every_event_type(ledger)
    publish_everything(ledger, settings)
    records = read_topic(settings.kafka_bootstrap_servers or "", settings.topic)
    reconcile(ledger, records)
    ledger.close()

    current = {e.name: e for e in all_event_types()}
    headers = Draft202012Validator(
        json.loads((DOCS / "schemas" / "cloudevent-headers.json").read_text()),
        format_checker=FormatChecker())
    seen = set()
    for record in records:
        headers.validate(record.headers)
        name = record.headers["ce_type"].removeprefix("org.wbl-ledger.")
        version = int(record.headers["ce_schemaversion"])
        assert version == current[name].version
        assert record.key.decode() == record.headers["ce_subject"]
        schema = json.loads((DOCS / "schemas" / schema_file_name(current[name])).read_text())
        Draft202012Validator(schema, format_checker=FormatChecker()).validate(record.body)
        seen.add(name)
    assert seen == set(current), f"event types never published: {set(current) - seen}"


def test_concurrent_writers_keep_each_placement_in_order(settings: Settings) -> None:
    runtime = Runtime.build(settings, projector=False)
    runtime.start()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(8):
                placement_story(runtime.ledger, learner=f"w{n}-{i}", days=4)
        except BaseException as error:  # surfaced below
            errors.append(error)

    try:
        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        stored = runtime.ledger.recorder.max_notification_id() or 0
        assert runtime.relay is not None
        deadline = time.monotonic() + 60
        while runtime.relay.status.acknowledged_position < stored:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        result = reconcile(runtime.ledger,
                           read_topic(settings.kafka_bootstrap_servers or "", settings.topic))
    finally:
        runtime.stop()
    assert result.distinct == result.stored
    assert result.duplicates == 0  # no crash was injected, so no copies either


def test_an_existing_topic_that_would_lose_history_is_refused(
    kafka_bootstrap: str, topic_name: str, tmp_path
) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(topic_name, 3, 1, topic_configs={
        "retention.ms": "604800000", "cleanup.policy": "compact"})])
    admin.close()
    settings = Settings(data_dir=tmp_path, kafka_bootstrap_servers=kafka_bootstrap,
                        topic=topic_name)
    with pytest.raises(kafka_io.TopicWouldLoseHistory) as refused:
        Runtime.build(settings)
    assert "retention.ms=604800000" in str(refused.value)
    assert "cleanup.policy=compact" in str(refused.value)


def test_created_topic_has_infinite_retention(settings: Settings) -> None:
    admin = kafka_io.admin_client(settings.kafka_bootstrap_servers or "")
    try:
        partitions = kafka_io.ensure_topic(admin, settings)
        from kafka.admin import ConfigResource, ConfigResourceType
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, settings.topic)], config_filter="all")
    finally:
        admin.close()
    values = {k: v["value"] for k, v in configs["topic"][settings.topic].items()}
    assert values["retention.ms"] == "-1"
    assert values["cleanup.policy"] == "delete"
    assert partitions == settings.topic_partitions


def _fabricated(aggregate: str, version: int) -> tuple[bytes, list[tuple[str, bytes]]]:
    headers = {
        "ce_specversion": "1.0", "ce_id": f"{aggregate}/{version}", "ce_source": "/test",
        "ce_type": "org.wbl-ledger.HoursApproved", "ce_time": "2026-01-01T00:00:00+00:00",
        "ce_subject": aggregate, "content-type": "application/json",
        "ce_aggregatetype": "Placement", "ce_aggregateversion": str(version),
        "ce_position": str(version), "ce_schemaversion": "1",
    }
    return aggregate.encode(), [(k, v.encode()) for k, v in headers.items()]


def test_reader_skips_copies_and_stops_at_a_gap(kafka_bootstrap: str, topic_name: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(topic_name, 1, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for version in (1, 2, 1, 2, 3, 5):  # copies of 1 and 2, then 4 is missing
        key, headers = _fabricated("placement-a", version)
        producer.send(topic_name, key=key, value=b"{}", headers=headers)
    producer.flush()
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False,
                             group_id=None)
    reader = TopicReader(consumer, topic_name, 1, {})
    from infra.consumer import Decision, decide

    last = 0
    applied = []
    with pytest.raises(SequenceGap) as gap:
        for delivery in read_all(reader):
            if decide(delivery.envelope, last) is Decision.APPLY:
                last = delivery.envelope.aggregate_version
                applied.append(last)
    consumer.close()
    assert applied == [1, 2, 3]
    assert "expected version 4 but read version 5" in str(gap.value)
    assert TopicPartition(topic_name, 0) in reader.tps


def test_the_relay_role_refuses_to_start_with_a_clear_message(
    kafka_bootstrap: str, topic_name: str, tmp_path
) -> None:
    import os
    import subprocess
    import sys

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(topic_name, 3, 1, topic_configs={"retention.ms": "86400000"})])
    admin.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WBL_")}
    env.update({"WBL_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "WBL_TOPIC": topic_name,
                "WBL_DATA_DIR": str(tmp_path)})
    done = subprocess.run([sys.executable, "-m", "services.cli", "relay"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "refusing to start" in done.stderr
    assert "retention.ms=86400000 (must be -1)" in done.stderr
    assert "Traceback" not in done.stderr
