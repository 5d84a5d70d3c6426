"""The readers' side of the topic contract, for projectors and outside readers alike.

A reader keeps, per partition, the next offset and the id of the last record it
took (so it can tell that the topic was re-created and refilled: the record at its
old offset is then another event), and per aggregate the last version it took.
With those it deduplicates (a version it has seen is skipped: relay crashes and
refills publish copies) and detects a gap or reorder within an aggregate, which
it refuses rather than skips: a missing hour entry is a wrong total.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from domain.contract.cloudevents import TYPE_PREFIX, MalformedRecord
from domain.contract.envelope import Envelope
from projections.common import loads

log = logging.getLogger(__name__)


Fields = tuple[str, str, str, str, int, int, int, str]
"""An envelope's header fields, as read from a record (``record_fields``): event id, type,
aggregate type and id, version, position, schema version, time (ISO 8601)."""


def record_fields(headers: list[tuple[str, bytes]] | None) -> Fields:
    """The header fields an envelope needs; ``MalformedRecord`` if one is missing."""
    h = dict(headers or ())  # the last of a repeated header wins, as in from_record
    try:
        return (h["ce_id"].decode(), h["ce_type"].decode().removeprefix(TYPE_PREFIX),
                h["ce_aggregatetype"].decode(), h["ce_subject"].decode(),
                int(h["ce_aggregateversion"]), int(h["ce_position"]),
                int(h["ce_schemaversion"]), h["ce_time"].decode())
    except (KeyError, ValueError, AttributeError) as error:
        raise MalformedRecord(f"not a wbl-ledger CloudEvent: {error}") from error


def envelope_of(fields: Fields, value: bytes | None) -> Envelope:
    """The envelope of a record's header fields and body."""
    try:
        recorded_at = datetime.fromisoformat(fields[7])
        data = loads(value or b"{}")
    except ValueError as error:
        raise MalformedRecord(f"not a wbl-ledger CloudEvent: {error}") from error
    # The frozen dataclass's __init__ sets each field through object.__setattr__; filling
    # its __dict__ at once gives the same object for a fraction of the cost.
    envelope = object.__new__(Envelope)
    envelope.__dict__.update(
        event_id=fields[0], event_type=fields[1], aggregate_type=fields[2],
        aggregate_id=fields[3], aggregate_version=fields[4], position=fields[5],
        schema_version=fields[6], recorded_at=recorded_at, data=data)
    return envelope


def from_record(headers: list[tuple[str, bytes]] | None, value: bytes | None) -> Envelope:
    """The envelope of one record: ``domain.contract.cloudevents.from_record`` for a reader that
    takes every record of a replay. It decodes only the headers an envelope needs and the
    body with orjson (the body decode was the largest part of a record's cost after
    kafka-python's own); the result is the same envelope, and a record that is not a
    wbl-ledger CloudEvent raises the same ``MalformedRecord``."""
    return envelope_of(record_fields(headers), value)


RawDelivery = tuple[int, int, Fields, bytes | None]
"""A record as ``TopicReader.poll_raw`` gives it: partition, offset, header fields, body.
Plain tuples, so that another process can hand them over cheaply (infra/prefetch.py)."""


class SequenceGap(RuntimeError):
    """An aggregate's events arrived out of order or with one missing."""


class Decision(Enum):
    APPLY = "apply"
    DUPLICATE = "duplicate"


def decide(envelope: Envelope, last_version: int) -> Decision:
    """Apply the next version, skip one already taken, refuse anything else."""
    if envelope.aggregate_version <= last_version:
        return Decision.DUPLICATE
    if envelope.aggregate_version == last_version + 1:
        return Decision.APPLY
    raise SequenceGap(
        f"{envelope.aggregate_type} {envelope.aggregate_id}: expected version "
        f"{last_version + 1} but read version {envelope.aggregate_version} "
        f"({envelope.event_type}, position {envelope.position}); stopping instead of skipping. "
        f"The topic is missing events: let the relay refill it, then restart this reader."
    )


@dataclass
class PartitionPosition:
    next_offset: int = 0
    last_event_id: str | None = None


@dataclass(frozen=True)
class Delivery:
    partition: int
    offset: int
    envelope: Envelope


class Reader(Protocol):
    """What a projector reads through: ``TopicReader``, or ``infra.prefetch``'s reader that
    fetches in another process."""

    positions: dict[int, PartitionPosition]
    resets: int

    def poll(self, timeout_ms: int, max_records: int | None = None) -> list[Delivery]: ...

    def advance(self, delivery: Delivery) -> None: ...

    def lag(self) -> int | None: ...

    def highwater(self, partition: int) -> int | None: ...

    def partition_count(self) -> int: ...

    def close(self) -> None: ...


class TopicReader:
    """Reads every partition of one topic from given positions, in offset order.

    On start it checks each saved position against the topic: if the partition is now
    shorter, or the record before the saved offset is another event than the one taken,
    the topic was re-created (a broker that lost its data, refilled by the relay), and that
    partition is read again from offset 0; the version check absorbs what was already taken.
    """

    def __init__(
        self,
        consumer: KafkaConsumer,
        topic: str,
        partitions: int,
        positions: dict[int, PartitionPosition],
    ) -> None:
        self.consumer = consumer
        self.topic = topic
        self.tps = [TopicPartition(topic, p) for p in range(partitions)]
        self.positions = {p: positions.get(p, PartitionPosition()) for p in range(partitions)}
        self._unverified: dict[int, PartitionPosition] = {}
        self.resets = 0
        self.reset_partitions: list[int] = []
        """Partitions read again from 0 since the owner last looked (infra/prefetch.py)."""
        consumer.assign(self.tps)
        for tp in self.tps:
            pos = self.positions[tp.partition]
            if pos.next_offset > 0 and pos.last_event_id is not None:
                consumer.seek(tp, pos.next_offset - 1)
                self._unverified[tp.partition] = pos
            else:
                consumer.seek(tp, pos.next_offset)

    def _reset(self, tp: TopicPartition, why: str) -> None:
        log.warning(
            "topic was re-created; reading partition again from offset 0",
            extra={"topic": self.topic, "partition": tp.partition, "why": why},
        )
        self.resets += 1
        self.reset_partitions.append(tp.partition)
        self._unverified.pop(tp.partition, None)
        self.positions[tp.partition] = PartitionPosition()
        self.consumer.seek(tp, 0)

    def poll(self, timeout_ms: int, max_records: int | None = None) -> list[Delivery]:
        return [Delivery(partition, offset, envelope_of(fields, value))
                for partition, offset, fields, value in self.poll_raw(timeout_ms, max_records)]

    def poll_raw(self, timeout_ms: int, max_records: int | None = None) -> list[RawDelivery]:
        """The next records in offset order per partition, their bodies not yet decoded."""
        batch = self.consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        deliveries: list[RawDelivery] = []
        for tp in self.tps:
            records: list[ConsumerRecord] = batch.get(tp, [])
            if tp.partition in self._unverified:
                expected = self._unverified[tp.partition]
                highwater = self.consumer.highwater(tp)
                if records:
                    first = records[0]
                    event_id = record_fields(first.headers)[0]
                    if (
                        first.offset == expected.next_offset - 1
                        and event_id == expected.last_event_id
                    ):
                        del self._unverified[tp.partition]
                        records = records[1:]
                    else:
                        self._reset(tp, "another event at the saved offset")
                        continue
                elif highwater is not None and highwater < expected.next_offset:
                    self._reset(tp, f"partition ends at {highwater}, before saved offset")
                    continue
                else:
                    continue
            for record in records:
                deliveries.append(
                    (tp.partition, record.offset, record_fields(record.headers), record.value))
        return deliveries

    def highwater(self, partition: int) -> int | None:
        """The partition's end as last fetched (None until known)."""
        end: int | None = self.consumer.highwater(self.tps[partition])
        return end

    def partition_count(self) -> int:
        """How many partitions the topic has now (its layout can change under a reader)."""
        return len(self.consumer.partitions_for_topic(self.topic) or set())

    def advance(self, delivery: Delivery) -> None:
        self.positions[delivery.partition] = PartitionPosition(
            delivery.offset + 1, delivery.envelope.event_id
        )

    def close(self) -> None:
        self.consumer.close()

    def lag(self) -> int | None:
        """Records behind the high watermark across partitions (None until known)."""
        total = 0
        for tp in self.tps:
            hw = self.highwater(tp.partition)
            if hw is None:
                return None
            total += max(hw - self.positions[tp.partition].next_offset, 0)
        return total


def read_all(reader: TopicReader, timeout_ms: int = 500, idle_polls: int = 3) -> Iterator[Delivery]:
    """Every delivery until the reader has seen nothing for ``idle_polls`` polls in a row."""
    idle = 0
    while idle < idle_polls:
        deliveries = reader.poll(timeout_ms)
        if not deliveries:
            idle += 1
            continue
        idle = 0
        for d in deliveries:
            reader.advance(d)
            yield d
