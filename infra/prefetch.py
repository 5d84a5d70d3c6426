"""Fetching and decoding in another process, while this one folds (decision 063).

A replay's time is two halves that each hold one core: kafka-python's fetching and record
decoding (pure Python), and the projections' folds and writes. ``PrefetchingReader`` runs the
first half in a child process, a ``TopicReader`` of its own, which hands each batch over as
plain tuples (partition, offset, header fields, body bytes: cheap to pickle, where pickling
the envelopes themselves cost more than decoding them); this process builds the envelopes
(orjson) and folds. The child fetches at most one batch ahead (the pipe blocks it), so
memory stays flat.

It reads like a ``TopicReader`` to the projector: the same ``poll``/``advance``/``lag``/
``highwater``/``partition_count``, the same positions, and the same checks of saved
positions against the topic (done in the child, with its resets reported back).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import time
from multiprocessing.connection import Connection
from typing import Any

from domain.contract.cloudevents import MalformedRecord
from infra import kafka as kafka_io
from infra.consumer import Delivery, PartitionPosition, RawDelivery, TopicReader, envelope_of

log = logging.getLogger(__name__)

LAYOUT_CHECK_S = 5.0
"""How often the child asks the broker how many partitions the topic has."""


def _fetch(out: Connection, bootstrap: str, topic: str, partitions: int,
           positions: dict[int, tuple[int, str | None]], client_id: str, batch: int,
           timeout_ms: int) -> None:
    """The child: poll, gather up to ``batch`` records, send; until the parent goes away."""
    consumer = kafka_io.consumer(bootstrap, client_id=client_id)
    try:
        reader = TopicReader(consumer, topic, partitions,
                             {p: PartitionPosition(*pos) for p, pos in positions.items()})
        count, next_layout_check = partitions, 0.0
        while True:
            raws: list[RawDelivery] = reader.poll_raw(timeout_ms)
            while raws and len(raws) < batch:
                more = reader.poll_raw(0)
                if not more:
                    break
                raws.extend(more)
            if time.monotonic() >= next_layout_check:
                count = reader.partition_count()
                next_layout_check = time.monotonic() + LAYOUT_CHECK_S
            resets, reader.reset_partitions = reader.reset_partitions, []
            out.send(("batch", raws, {p: reader.highwater(p) for p in range(partitions)},
                      resets, count))
    except (BrokenPipeError, EOFError, KeyboardInterrupt):
        pass  # the parent stopped reading
    except MalformedRecord as error:
        _send_quietly(out, ("malformed", str(error)))
    except Exception as error:  # the broker went away, or anything else: the parent reconnects
        _send_quietly(out, ("failed", f"{type(error).__name__}: {error}"))
    finally:
        consumer.close()


def _send_quietly(out: Connection, message: tuple[str, str]) -> None:
    with contextlib.suppress(OSError):
        out.send(message)


class PrefetchingReader:
    """A ``TopicReader`` whose fetching and record decoding run in a child process."""

    def __init__(self, bootstrap: str, topic: str, partitions: int,
                 positions: dict[int, PartitionPosition], *, client_id: str,
                 batch: int = 5000, timeout_ms: int = 200) -> None:
        self.topic = topic
        self.positions = {p: positions.get(p, PartitionPosition()) for p in range(partitions)}
        self.resets = 0
        self._partitions = partitions
        self._count = partitions
        self._highwaters: dict[int, int | None] = dict.fromkeys(range(partitions))
        # spawn, not fork: the parent holds database connections and other threads.
        context = multiprocessing.get_context("spawn")
        self._in, out = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_fetch, name=f"{client_id}-fetch", daemon=True,
            args=(out, bootstrap, topic, partitions,
                  {p: (pos.next_offset, pos.last_event_id) for p, pos in self.positions.items()},
                  client_id, batch, timeout_ms))
        self.process.start()
        out.close()  # the child's end: closing ours lets a dead child show as end of file

    def poll(self, timeout_ms: int, max_records: int | None = None) -> list[Delivery]:
        """The next batch the child fetched (all of it: ``max_records`` is the child's
        ``batch``), or nothing after ``timeout_ms``."""
        try:
            if not self._in.poll(timeout_ms / 1000):
                return []
            message: tuple[Any, ...] = self._in.recv()
        except (EOFError, OSError):
            raise ConnectionError("the fetching process stopped") from None
        if message[0] == "malformed":
            raise MalformedRecord(message[1])
        if message[0] == "failed":
            raise ConnectionError(f"the fetching process failed: {message[1]}")
        _, raws, highwaters, resets, count = message
        self._highwaters.update(highwaters)
        self._count = count
        for partition in resets:
            self.resets += 1
            self.positions[partition] = PartitionPosition()
        return [Delivery(partition, offset, envelope_of(fields, value))
                for partition, offset, fields, value in raws]

    def advance(self, delivery: Delivery) -> None:
        self.positions[delivery.partition] = PartitionPosition(
            delivery.offset + 1, delivery.envelope.event_id)

    def highwater(self, partition: int) -> int | None:
        return self._highwaters.get(partition)

    def partition_count(self) -> int:
        return self._count

    def lag(self) -> int | None:
        total = 0
        for partition, position in self.positions.items():
            end = self._highwaters.get(partition)
            if end is None:
                return None
            total += max(end - position.next_offset, 0)
        return total

    def close(self) -> None:
        self._in.close()
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
