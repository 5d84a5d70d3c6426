"""Kafka clients with the settings this service relies on, and the topic contract.

Written for Apache Kafka's documented behaviour; where the local tansu broker
differs (BROKER-NOTES.md) the code takes the path that is correct on both:
end offsets come from the high watermark of a real fetch, never from
``end_offsets``; topics are created explicitly before anyone produces.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import TopicAlreadyExistsError

from domain.contract.cloudevents import MalformedRecord, from_record
from infra.settings import Settings

log = logging.getLogger(__name__)

# Infinite retention, never compaction: the topic is the public history of record.
TOPIC_CONFIG = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}

# Group joins on tansu wait session_timeout/2 (BROKER-NOTES.md #1); these are fine on Kafka too.
CONSUMER_TIMEOUTS: dict[str, Any] = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 2000}


class TopicWouldLoseHistory(RuntimeError):
    """The existing topic is configured to delete or compact records."""


def admin_client(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="wbl-admin", request_timeout_ms=10000
    )


def producer(bootstrap: str, **overrides: Any) -> KafkaProducer:
    """Idempotent, ``acks=all``, compressed batches, strictly ordered."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "client_id": "wbl-relay",
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 20,
        "batch_size": 262144,
        "compression_type": "gzip",
        "request_timeout_ms": 10000,
        "delivery_timeout_ms": 30000,
        "max_block_ms": 10000,
        # One request in flight: a failed batch can never be overtaken by the next one,
        # so a partition never holds version n+1 without version n.
        "max_in_flight_requests_per_connection": 1,
        "allow_auto_create_topics": False,
    }
    config.update(overrides)
    return KafkaProducer(**config)


def consumer(bootstrap: str, **overrides: Any) -> KafkaConsumer:
    """A consumer with manual partition assignment and no auto-commit: positions are kept by
    the reader itself, in its own database, with what it derived from the records."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "allow_auto_create_topics": False,
        "request_timeout_ms": 15000,
        "max_poll_records": 1000,
        **CONSUMER_TIMEOUTS,
    }
    config.update(overrides)
    return KafkaConsumer(**config)


def ensure_topic(admin: KafkaAdminClient, settings: Settings) -> int:
    """Create the topic with infinite retention when missing; refuse one that would lose history.

    Returns the topic's partition count.
    """
    name = settings.topic
    if name not in admin.list_topics():
        try:
            admin.create_topics(
                [
                    NewTopic(
                        name,
                        settings.topic_partitions,
                        settings.topic_replication_factor,
                        topic_configs=TOPIC_CONFIG,
                    )
                ]
            )
            log.info("created topic", extra={"topic": name})
        except TopicAlreadyExistsError:
            pass
    check_topic_keeps_history(admin, name)
    return partition_count(admin, name)


def check_topic_keeps_history(admin: KafkaAdminClient, name: str) -> None:
    described = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name)], config_filter="all"
    )
    configs = described.get("topic", {}).get(name, {})
    values = {key: str(entry.get("value")) for key, entry in configs.items()}
    problems = []
    if values.get("retention.ms", "-1") != "-1":
        problems.append(f"retention.ms={values['retention.ms']} (must be -1)")
    if values.get("retention.bytes", "-1") != "-1":
        problems.append(f"retention.bytes={values['retention.bytes']} (must be -1)")
    if "compact" in values.get("cleanup.policy", "delete"):
        problems.append(f"cleanup.policy={values['cleanup.policy']} (must be delete)")
    if problems:
        raise TopicWouldLoseHistory(
            f"Topic {name!r} is configured to lose history: {', '.join(problems)}. "
            f"Set retention.ms=-1, retention.bytes=-1, cleanup.policy=delete on it "
            f"(kafka-configs --alter) or configure another topic with WBL_TOPIC."
        )


def partition_count(admin: KafkaAdminClient, name: str) -> int:
    (description,) = admin.describe_topics([name])
    return len(description["partitions"])


def wait_for_topic(admin: KafkaAdminClient, name: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if name in admin.list_topics():
            return True
        time.sleep(0.2)
    return False


def high_watermarks(
    c: KafkaConsumer, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """The true end of each partition, from a fetch response.

    ``end_offsets`` is not trusted (tansu reports the start of the last batch + 1);
    it is only a lower bound to seek to, and the fetch's high watermark is exact.
    """
    c.assign(partitions)
    lower = c.end_offsets(partitions)
    result: dict[TopicPartition, int] = {}
    for tp in partitions:
        c.seek(tp, max(lower[tp] - 1, 0))
    deadline = time.monotonic() + 10
    while len(result) < len(partitions) and time.monotonic() < deadline:
        c.poll(timeout_ms=200, max_records=1)
        for tp in partitions:
            hw = c.highwater(tp)
            if hw is not None:
                result[tp] = hw
    for tp in partitions:
        result.setdefault(tp, lower[tp])
    return result


def max_published_position(bootstrap: str, topic: str, partitions: int) -> int:
    """The highest store position found at the tail of any partition (0 for an empty topic).

    Reads only the last few records of each partition, so it costs the same for a topic of
    ten events or ten million.
    """
    c = consumer(bootstrap, client_id="wbl-relay-check")
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = high_watermarks(c, tps)
        best = 0
        for tp in tps:
            end = ends[tp]
            if end == 0:
                continue
            c.assign([tp])
            c.seek(tp, max(end - 50, 0))
            deadline = time.monotonic() + 10
            while c.position(tp) < end and time.monotonic() < deadline:
                for records in c.poll(timeout_ms=200).values():
                    for record in records:
                        try:
                            best = max(best, from_record(record.headers, record.value).position)
                        except MalformedRecord:
                            log.warning("foreign record on topic", extra={"offset": record.offset})
        return best
    finally:
        c.close()
