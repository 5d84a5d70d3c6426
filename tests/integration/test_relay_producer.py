"""The relay's librdkafka producer (``infra.kafka.BatchProducer``, decision 077), against a
real broker and read back with kafka-python, a client it does not share code with:

- every record lands on the partition kafka-python's (and Java's) default partitioner
  chooses for its key, in the order sent, with its headers;
- the first batch of a new producer is not the one that waits for its producer id;
- when the broker goes away the batch is refused at once, not retried into the broker that
  comes back: a broker restarted empty holds no topic this producer created by itself.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2

from domain.contract.cloudevents import OutgoingRecord
from infra import kafka as kafka_io
from infra.broker import LocalBroker
from tests.integration.test_projections_support import create_topic

pytestmark = pytest.mark.integration


def records(count: int, aggregates: int) -> list[OutgoingRecord]:
    keys = [str(uuid.uuid4()).encode() for _ in range(aggregates)]
    return [OutgoingRecord(key=keys[i % aggregates], value=f'{{"n": {i}}}'.encode(),
                           headers=[("ce_id", str(i).encode())], position=i + 1)
            for i in range(count)]


def read_back(bootstrap: str, topic: str, partitions: int, expected: int
              ) -> list[tuple[int, bytes, bytes, list[tuple[str, bytes]]]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             group_id=None, consumer_timeout_ms=1000)
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    consumer.seek_to_beginning()
    got: list[tuple[int, bytes, bytes, list[tuple[str, bytes]]]] = []
    deadline = time.monotonic() + 20
    try:
        while len(got) < expected and time.monotonic() < deadline:
            for r in consumer:
                got.append((r.partition, r.key, r.value, list(r.headers)))
    finally:
        consumer.close()
    return got


def test_records_land_where_kafka_python_would_put_them_in_order(
        kafka_bootstrap: str, topic_name: str) -> None:
    create_topic(kafka_bootstrap, topic_name, partitions=3)
    sent = records(600, aggregates=40)
    producer = kafka_io.BatchProducer(kafka_bootstrap)
    try:
        assert producer.wait_ready()
        producer.publish(topic_name, sent[:300])
        producer.publish(topic_name, sent[300:])
    finally:
        producer.close()
    got = read_back(kafka_bootstrap, topic_name, 3, len(sent))
    assert len(got) == len(sent)
    for partition, key, _, _ in got:
        assert partition == (murmur2(key) & 0x7FFFFFFF) % 3, "not Java's murmur2 partition"
    for key in {r.key for r in sent}:
        assert [v for _, k, v, _ in got if k == key] == [r.value for r in sent if r.key == key]
    assert {(k, v, tuple(h)) for _, k, v, h in got} == {
        (r.key, r.value, tuple(r.headers)) for r in sent}


def test_a_ready_producer_publishes_its_first_batch_at_once(
        kafka_bootstrap: str, topic_name: str) -> None:
    create_topic(kafka_bootstrap, topic_name)
    producer = kafka_io.BatchProducer(kafka_bootstrap)
    try:
        assert producer.wait_ready(timeout_s=10)
        started = time.monotonic()
        producer.publish(topic_name, records(1, 1))
        first = time.monotonic() - started
    finally:
        producer.close()
    # Without the wait the first batch took 0.50 s: librdkafka's producer-id timer.
    assert first < 0.4, f"the first batch waited {first:.2f} s"


@pytest.fixture
def own_broker() -> Iterator[LocalBroker]:
    """A broker of this test's own, since it will be stopped and restarted empty."""
    with LocalBroker() as broker:
        yield broker


def test_a_lost_broker_refuses_the_batch_and_never_creates_the_topic_on_its_return(
        own_broker: LocalBroker, topic_name: str) -> None:
    bootstrap = own_broker.bootstrap_servers
    create_topic(bootstrap, topic_name)
    producer = kafka_io.BatchProducer(bootstrap)
    try:
        assert producer.wait_ready()
        producer.publish(topic_name, records(10, 3))
        own_broker.stop()
        started = time.monotonic()
        with pytest.raises(kafka_io.NotAcknowledged):
            producer.publish(topic_name, records(10, 3))
        assert time.monotonic() - started < 10, "refused only after message.timeout.ms"
        own_broker.start()  # same port, no data
        time.sleep(3)  # librdkafka reconnects within this
        with pytest.raises(kafka_io.NotAcknowledged):  # this producer is done
            producer.serve()
        with pytest.raises(kafka_io.NotAcknowledged):
            producer.publish(topic_name, records(1, 1))
    finally:
        producer.close(timeout_s=1)
    admin = kafka_io.admin_client(bootstrap)
    try:
        assert topic_name not in admin.list_topics(), (
            "the old producer's retries re-created the topic on the empty broker")
    finally:
        admin.close()
