"""``infra/bulk_read.py`` (decision 070) against a real broker, with kafka-python as the
oracle: librdkafka must hand the set-based rebuild exactly the records kafka-python would
have, no more, no fewer, in offset order within each partition."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from domain.contract.cloudevents import MalformedRecord
from infra.bulk_read import BulkReadTimeout, read_ranges
from infra.consumer import RawDelivery, record_fields
from tests.integration.test_projections_support import create_topic, publish
from tests.unit.projections.history import generate

pytestmark = pytest.mark.integration


def _kafka_python(bootstrap: str, topic: str, partitions: int) -> dict[int, list[RawDelivery]]:
    """Every record of the topic, read with kafka-python (the oracle)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             group_id=None, auto_offset_reset="earliest")
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, 0)
    records: dict[int, list[RawDelivery]] = {p: [] for p in range(partitions)}
    idle = 0
    try:
        while idle < 3:
            batch = consumer.poll(timeout_ms=500)
            idle = 0 if batch else idle + 1
            for tp, got in batch.items():
                records[tp.partition] += [(tp.partition, r.offset, record_fields(r.headers),
                                           r.value) for r in got]
    finally:
        consumer.close()
    return records


def test_ranges_read_through_librdkafka_equal_kafka_python_record_for_record(
    kafka_bootstrap: str, topic_name: str,
) -> None:
    create_topic(kafka_bootstrap, topic_name, 3)
    sent = publish(kafka_bootstrap, topic_name, generate(40, seed=7).envelopes,
                   duplicates=0.1)
    oracle = _kafka_python(kafka_bootstrap, topic_name, 3)
    assert sum(len(r) for r in oracle.values()) == sent
    # the whole topic, then a window inside each partition (one partition left out)
    whole = {p: len(r) for p, r in oracle.items()}
    windows = {0: (3, whole[0] - 2), 1: (0, whole[1] // 2), 2: (whole[2], whole[2])}
    for starts, ends in (({p: 0 for p in whole}, whole),
                         ({p: s for p, (s, _) in windows.items()},
                          {p: e for p, (_, e) in windows.items()})):
        got: dict[int, list[RawDelivery]] = {p: [] for p in whole}
        for batch in read_ranges(kafka_bootstrap, topic_name, ends, starts=starts,
                                 deadline=time.monotonic() + 60):
            assert batch
            for delivery in batch:
                got[delivery[0]].append(delivery)
        for p in whole:
            expected = [d for d in oracle[p] if starts[p] <= d[1] < ends[p]]
            assert got[p] == expected, f"partition {p}"


def test_a_range_beyond_the_topic_times_out(kafka_bootstrap: str, topic_name: str) -> None:
    create_topic(kafka_bootstrap, topic_name, 1)
    publish(kafka_bootstrap, topic_name, generate(2, seed=3).envelopes)
    ends = {0: 10_000}
    started = time.monotonic()
    with pytest.raises(BulkReadTimeout):
        for _ in read_ranges(kafka_bootstrap, topic_name, ends,
                             deadline=time.monotonic() + 2):
            pass
    assert time.monotonic() - started < 30


def test_a_record_that_is_not_a_wbl_ledger_event_is_refused(
    kafka_bootstrap: str, topic_name: str,
) -> None:
    create_topic(kafka_bootstrap, topic_name, 1)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(topic_name, value=b"{}", headers=[("ce_id", b"x")])
    producer.flush()
    producer.close()
    with pytest.raises(MalformedRecord):
        for _ in read_ranges(kafka_bootstrap, topic_name, {0: 1},
                             deadline=time.monotonic() + 30):
            pass
