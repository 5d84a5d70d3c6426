"""Reading a range of a topic's records as fast as the machine allows, for bulk loads.

The set-based rebuild (decision 065) stages every record of the topic up to the live
projector's positions before it computes anything. Read through kafka-python, that staging
cost as much as a raw kafka-python consumer reading the same topic (decision 068: its record
parsing, varints and CRC-32C are pure Python). librdkafka, through ``confluent-kafka``,
fetches, decompresses and checks the batches in C on its own threads, while this process
turns the records it has into rows: decision 070.

Only the bulk load reads this way. The live projector, the relay and the catch-up after a
load keep kafka-python (``infra/kafka.py``): their reading is not what limits them, and one
client for the paths that commit positions is simpler to reason about.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import cast

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from infra.consumer import RawDelivery, record_fields

BATCH = 10_000
"""Records taken from librdkafka's queue per call: enough to amortise the call, few enough
that a batch's rows stay small."""


def bulk_consumer(bootstrap: str, *, client_id: str = "wbl-bulk-read") -> Consumer:
    """A librdkafka consumer set up to read as kafka-python's does by default
    (``read_uncommitted``, CRCs checked), for partitions assigned by hand: it joins no
    group and commits nothing. The raw baseline in ``benchmarks/replay_candidates.py``
    uses the same, so the two measure one client the same way."""
    return Consumer({
        "bootstrap.servers": bootstrap,
        # Required by the client even when partitions are assigned by hand; never joined,
        # never committed to.
        "group.id": f"wbl-bulk-read-{uuid.uuid4().hex[:8]}",
        "client.id": client_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "isolation.level": "read_uncommitted",
        "check.crcs": True,
        "enable.partition.eof": False,
        "queued.max.messages.kbytes": 65536,
    })


class BulkReadTimeout(TimeoutError):
    """The topic did not deliver the records up to the ends asked for in time."""


def read_ranges(bootstrap: str, topic: str, ends: dict[int, int], *, deadline: float,
                starts: dict[int, int] | None = None, poll_timeout: float = 0.2
                ) -> Iterator[list[RawDelivery]]:
    """Every record of ``topic`` at an offset in ``[starts[p], ends[p])`` of each partition
    ``p`` (``starts`` 0 by default), in offset order within a partition, in batches; the
    partitions interleave as the broker delivers them. A record delivered twice (after a
    refetch) is given once. Raises ``BulkReadTimeout`` when ``deadline`` (``time.monotonic``)
    passes first, ``MalformedRecord`` for a record that is not a wbl-ledger CloudEvent.

    Reads as kafka-python's consumer does by default (``read_uncommitted``, CRCs checked),
    with no consumer group: nothing is committed anywhere."""
    next_offset = {p: (starts or {}).get(p, 0) for p in ends}
    wanted = {p for p, end in ends.items() if next_offset[p] < end}
    if not wanted:
        return
    consumer = bulk_consumer(bootstrap)
    try:
        consumer.assign([TopicPartition(topic, p, next_offset[p]) for p in sorted(wanted)])
        while wanted:
            if time.monotonic() > deadline:
                raise BulkReadTimeout(
                    "the topic did not deliver the records up to the live projector's "
                    "positions in time")
            batch: list[RawDelivery] = []
            finished: list[int] = []
            for message in consumer.consume(num_messages=BATCH, timeout=poll_timeout):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(error)
                partition, offset = message.partition(), message.offset()
                if partition is None or offset is None:  # only error events lack them
                    continue
                if partition not in wanted or offset < next_offset[partition]:
                    continue  # past its end already, or delivered again
                if offset >= ends[partition]:
                    wanted.discard(partition)
                    finished.append(partition)
                    continue
                headers = cast("list[tuple[str, bytes]] | None", message.headers())
                batch.append((partition, offset, record_fields(headers), message.value()))
                next_offset[partition] = offset + 1
                if next_offset[partition] >= ends[partition]:
                    wanted.discard(partition)
                    finished.append(partition)
            if finished:
                consumer.pause([TopicPartition(topic, p) for p in finished])
            if batch:
                yield batch
    finally:
        consumer.close()
