"""Kafka clients with the settings this service relies on, and the topic contract.

Written for Apache Kafka's documented behaviour; where the local tansu broker
differs (BROKER-NOTES.md) the code takes the path that is correct on both:
end offsets come from the high watermark of a real fetch, never from
``end_offsets``; topics are created explicitly before anyone produces.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import confluent_kafka
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from domain.contract.cloudevents import MalformedRecord, OutgoingRecord, from_record
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


class NotAcknowledged(KafkaError):  # type: ignore[misc]
    """A record of a batch was refused, not acknowledged in time, or its connection was
    lost: the batch is not published, and the relay sends it again on a new producer."""


LOST = frozenset({confluent_kafka.KafkaError._TRANSPORT,
                  confluent_kafka.KafkaError._ALL_BROKERS_DOWN})
"""librdkafka's errors for a lost connection: the broker may come back empty."""


class BatchProducer:
    """librdkafka's idempotent producer (``confluent-kafka``), for the relay's batches.

    kafka-python's producer spent about 1 ms of CPU per event in the relay of ``wbl run``
    (record batches built, compressed and check-summed in Python), more than the event
    store's own write (decision 077). The contract is ``producer``'s: idempotent,
    ``acks=all``, one request in flight, gzip, and Java's murmur2 partitioner (librdkafka's
    default is CRC32), so that an aggregate's events go to the partition kafka-python and
    every other Kafka client would choose.

    Two things librdkafka does by itself are turned to the relay's rules:
    - it gets its producer id in the background, up to 0.5 s after it is made:
      ``wait_ready`` waits for it, so that the first batch is not the one that waits;
    - it retries inside the producer until ``message.timeout.ms``, across a lost
      connection. A broker that comes back empty would then get the retries before the
      relay has checked the topic (and tansu creates a topic it is sent to, with its own
      partition count). So a lost connection ends this producer: the batch in flight is
      purged and refused, every later call raises, and the relay starts a new session,
      which creates or checks the topic and refills it before it publishes again. A
      harmless disconnect (a broker closing an idle connection) costs the same restart:
      a new producer and its id, about half a second, and nothing published twice.
    """

    def __init__(self, bootstrap: str, client_id: str = "wbl-relay") -> None:
        self._ready = threading.Event()
        self._lost: str | None = None
        self._producer = confluent_kafka.Producer({
            "bootstrap.servers": bootstrap,
            "client.id": client_id,
            "enable.idempotence": True,
            "acks": "all",
            "max.in.flight.requests.per.connection": 1,
            "linger.ms": 5,
            "compression.type": "gzip",
            "partitioner": "murmur2_random",
            "allow.auto.create.topics": False,
            "request.timeout.ms": 10000,
            "message.timeout.ms": 30000,
            "logger": logging.getLogger("wbl.kafka.producer"),  # not librdkafka's stderr
            "error_cb": self._error,
            "statistics.interval.ms": 100,
            "stats_cb": self._statistics,
        })

    def _error(self, error: confluent_kafka.KafkaError) -> None:
        if self._lost is None and (error.code() in LOST or error.fatal()):
            self._lost = str(error)

    def _statistics(self, report: str) -> None:
        if not self._ready.is_set() and json.loads(report).get("eos", {}).get(
                "idemp_state") == "Assigned":
            self._ready.set()

    def _check(self) -> None:
        if self._lost is not None:
            raise NotAcknowledged(f"connection to the broker lost: {self._lost}")

    def wait_ready(self, timeout_s: float = 10.0) -> bool:
        """Wait until the broker gave this producer its id (``InitProducerId``); raise
        ``NotAcknowledged`` if the connection is lost meanwhile."""
        deadline = time.monotonic() + timeout_s
        while not self._ready.is_set() and time.monotonic() < deadline:
            self._producer.poll(0.02)
            self._check()
        return self._ready.is_set()

    def serve(self) -> None:
        """Take librdkafka's queued logs, errors and reports; the relay calls it when idle,
        so that a connection lost between batches is noticed before the next one."""
        self._producer.poll(0)
        self._check()

    def publish(self, topic: str, records: list[OutgoingRecord], timeout_s: float = 30.0
                ) -> None:
        """Send the records in order and wait until the broker acknowledged every one;
        raise ``NotAcknowledged`` otherwise."""
        self._producer.poll(0)
        self._check()
        refused: list[str] = []

        def delivered(error: confluent_kafka.KafkaError | None, _: object) -> None:
            if error is not None:
                refused.append(str(error))

        for record in records:
            while True:
                try:
                    self._producer.produce(topic, value=record.value, key=record.key,
                                           headers=list(record.headers), on_delivery=delivered)
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    self._producer.poll(0.05)
        deadline = time.monotonic() + timeout_s
        while self._producer.flush(0.1):
            if self._lost is not None or time.monotonic() > deadline:
                self._producer.purge()  # nothing of this batch is retried by librdkafka
                self._producer.flush(0)
                self._check()
                raise NotAcknowledged(f"records not acknowledged within {timeout_s} s")
        if refused:
            raise NotAcknowledged(f"{len(refused)} records refused: {refused[0]}")

    def close(self, timeout_s: float = 5.0) -> None:
        if self._lost is not None:
            self._producer.purge()
        self._producer.flush(timeout_s)


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
