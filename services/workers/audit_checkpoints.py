"""Signed checkpoints of the audit trail, published on Kafka and read back to verify it
(decision 041; the document and its signature are in ``projections/audit_checkpoints.py``).

Who publishes: the live projector, right after the transaction that advanced the global
chain (``after_commit``, at least every ``WBL_AUDIT_CHECKPOINT_EVERY_EVENTS`` events or
``WBL_AUDIT_CHECKPOINT_EVERY_MINUTES`` minutes), and ``wbl audit checkpoint`` on demand.
Who verifies: ``wbl audit verify`` and ``GET /audit-trail/verify`` (``verify_trail``).

The signing key is a secret like the JWT key: ``WBL_AUDIT_SIGNING_KEY`` in production, a key
file in the data folder on the embedded default (``infra.key_files.kept_key``, so `wbl run`
and its children agree on one key). It is never logged and never put in a checkpoint; a
checkpoint names its key by kid, and ``GET /audit-trail/checkpoint-keys`` publishes the
public keys, retired ones included.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kafka import KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from domain.contract.cloudevents import MalformedRecord
from infra import kafka as kafka_io
from infra.consumer import from_record
from infra.key_files import kept_key
from infra.settings import Settings
from projections.audit_checkpoints import (
    Checkpoint,
    KeyRing,
    NotACheckpoint,
    RewrittenEntry,
    first_rewritten,
    parse,
    public_key_from_x,
    sign,
)
from projections.audit_trail import (
    LIVE_TABLES,
    Anchor,
    AuditTrailProjection,
    Problem,
    VerifyReport,
)
from projections.audit_trail import canonical_bytes as audit_canonical_bytes

if TYPE_CHECKING:
    from services.workers.projector import Projector

log = logging.getLogger(__name__)

KEY_FILE = "audit-signing.key"
RETRY_AFTER_S = 5.0


# -- keys ------------------------------------------------------------------------------------


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    """``WBL_AUDIT_SIGNING_KEY`` (base64 of the 32-byte private key), else the key file in
    the data folder, made on first use by whichever process comes first."""
    if settings.audit_signing_key is not None:
        text = settings.audit_signing_key.get_secret_value().strip()
        raw = base64.urlsafe_b64decode(
            text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4))
    else:
        raw = base64.b64decode(kept_key(Path(settings.data_dir) / KEY_FILE,
                                        base64.b64encode(os.urandom(32))))
    if len(raw) != 32:
        raise ValueError("the audit signing key must be 32 bytes (base64)")
    return Ed25519PrivateKey.from_private_bytes(raw)


def key_ring(settings: Settings) -> KeyRing:
    """The signing key's public half and the retired public keys: what verifies."""
    retired = [public_key_from_x(x) for x in (settings.audit_retired_public_keys or "").split(",")
               if x.strip()]
    return KeyRing(signing_key(settings).public_key(), retired)


# -- the topic -------------------------------------------------------------------------------


def ensure_topic(bootstrap: str, settings: Settings) -> None:
    """One partition (checkpoints stay in the order they were made), kept for ever."""
    admin = kafka_io.admin_client(bootstrap)
    try:
        name = settings.audit_checkpoint_topic
        if name not in admin.list_topics():
            with contextlib.suppress(TopicAlreadyExistsError):  # another process was first
                admin.create_topics([NewTopic(name, 1, settings.topic_replication_factor,
                                              topic_configs=kafka_io.TOPIC_CONFIG)])
        kafka_io.check_topic_keeps_history(admin, name)
    finally:
        admin.close()


def _topic_exists(bootstrap: str, topic: str) -> bool:
    admin = kafka_io.admin_client(bootstrap)
    try:
        return topic in admin.list_topics()
    finally:
        admin.close()


def _read_to_end(bootstrap: str, topic: str, partitions: int,
                 take: Callable[[int, bytes | None, list[tuple[str, bytes]]], None]) -> None:
    """Every record of ``topic`` from offset 0 to the high watermark seen at the start."""
    consumer = kafka_io.consumer(bootstrap, client_id="wbl-audit-verify")
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = kafka_io.high_watermarks(consumer, tps)
        todo = [tp for tp in tps if ends[tp] > 0]
        if not todo:
            return
        consumer.assign(todo)
        consumer.seek_to_beginning(*todo)
        deadline = time.monotonic() + 600
        while any(consumer.position(tp) < ends[tp] for tp in todo):
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {topic} did not deliver its records in time")
            for tp, records in consumer.poll(timeout_ms=200).items():
                for record in records:
                    if record.offset < ends[tp]:
                        take(record.offset, record.value, list(record.headers or []))
    finally:
        consumer.close()


def read_checkpoints(bootstrap: str, topic: str) -> list[tuple[int, bytes]]:
    """(offset, document) of every checkpoint published so far."""
    if not _topic_exists(bootstrap, topic):
        return []
    found: list[tuple[int, bytes]] = []
    _read_to_end(bootstrap, topic, 1, lambda offset, value, _: found.append((offset, value or b"")))
    return found


def original_events(bootstrap: str, topic: str, after: int, upto: int) -> dict[int, bytes]:
    """The audit trail's canonical bytes of the events of positions ``after + 1 .. upto``,
    as they are on the placement-events topic (the copy a table rewrite does not reach).
    Reads the whole topic: positions are not offsets, and a refill or a relay retry puts
    a position at more than one offset."""
    admin = kafka_io.admin_client(bootstrap)
    try:
        partitions = kafka_io.partition_count(admin, topic)
    finally:
        admin.close()
    found: dict[int, bytes] = {}

    def take(_offset: int, value: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        try:
            envelope = from_record(headers, value)
        except MalformedRecord:
            return
        if after < envelope.position <= upto:
            found.setdefault(envelope.position, audit_canonical_bytes(envelope))

    _read_to_end(bootstrap, topic, partitions, take)
    return found


# -- publishing ------------------------------------------------------------------------------


def make_checkpoint(engine: Engine, key: Ed25519PrivateKey) -> Checkpoint | None:
    """Sign the audit trail's committed global head (None while the trail is empty)."""
    with engine.connect() as conn:
        head = AuditTrailProjection(LIVE_TABLES).global_head(conn)
    if head is None:
        return None
    position, global_hash = head
    return sign(key, position=position, global_hash=global_hash, count=position,
                created_at=datetime.now(UTC).isoformat())


def send(producer: KafkaProducer, topic: str, checkpoint: Checkpoint) -> None:
    producer.send(topic, key=b"audit-checkpoint", value=checkpoint.to_json(),
                  headers=[("content-type", b"application/json")]).get(timeout=15)


def checkpoint_producer(bootstrap: str) -> KafkaProducer:
    # Not idempotent: a checkpoint sent twice is harmless, and a plain producer survives a
    # broker restart (BROKER-NOTES.md: an idempotent one must be replaced).
    return kafka_io.producer(bootstrap, client_id="wbl-audit-checkpoints",
                             enable_idempotence=False, linger_ms=0)


def publish_now(settings: Settings, bootstrap: str, engine: Engine) -> Checkpoint | None:
    """``wbl audit checkpoint``: sign the current head and publish it."""
    checkpoint = make_checkpoint(engine, signing_key(settings))
    if checkpoint is None:
        return None
    ensure_topic(bootstrap, settings)
    producer = checkpoint_producer(bootstrap)
    try:
        send(producer, settings.audit_checkpoint_topic, checkpoint)
    finally:
        producer.close(timeout=5)
    return checkpoint


@dataclass
class CheckpointPublisher:
    """The live projector's checkpoints: after a committed batch, once enough events or
    enough time have gone by, sign the head the batch committed and publish it."""

    settings: Settings
    bootstrap: str
    engine: Engine
    published: int = 0
    last_position: int | None = None
    _key: Ed25519PrivateKey | None = None
    _topic_ready: bool = False
    _applied_at_last: int = 0
    _last_at: float = field(default_factory=time.monotonic)
    _not_before: float = 0.0

    def due(self, applied_total: int, now: float) -> bool:
        grown = applied_total - self._applied_at_last
        if now < self._not_before or grown <= 0:
            return False
        if self.last_position is None:
            return True  # the first batch after a start: anchor what is there now
        return (grown >= self.settings.audit_checkpoint_every_events
                or now - self._last_at >= self.settings.audit_checkpoint_every_minutes * 60)

    def after_commit(self, applied_total: int) -> None:
        now = time.monotonic()
        if not self.due(applied_total, now):
            return
        try:
            if self._key is None:
                self._key = signing_key(self.settings)
            checkpoint = make_checkpoint(self.engine, self._key)
            if checkpoint is not None and checkpoint.position != self.last_position:
                if not self._topic_ready:
                    ensure_topic(self.bootstrap, self.settings)
                    self._topic_ready = True
                # A producer per checkpoint (one every few minutes at most): nothing stays
                # open between them, and a broker restart in between costs nothing.
                producer = checkpoint_producer(self.bootstrap)
                try:
                    send(producer, self.settings.audit_checkpoint_topic, checkpoint)
                finally:
                    producer.close(timeout=5)
                self.published += 1
                self.last_position = checkpoint.position
                log.info("audit checkpoint published",
                         extra={"position": checkpoint.position, "kid": checkpoint.kid})
        except (KafkaError, OSError, SQLAlchemyError) as error:
            # Read models are committed; the checkpoint waits for the next batch.
            log.warning("audit checkpoint not published; retrying later",
                        extra={"error": f"{type(error).__name__}: {error}"})
            self._topic_ready = False
            self._not_before = now + RETRY_AFTER_S
            return
        self._applied_at_last = applied_total
        self._last_at = now


_publishers: weakref.WeakKeyDictionary[Projector, CheckpointPublisher] = (
    weakref.WeakKeyDictionary())


def attach(projector: Projector, settings: Settings) -> CheckpointPublisher:
    """Make ``projector`` publish checkpoints (the composition root does this for the live
    projector; rebuilds and tests' bare projectors publish none)."""
    publisher = CheckpointPublisher(settings, projector.bootstrap, projector.engine)
    _publishers[projector] = publisher
    return publisher


def after_commit(projector: Projector) -> None:
    """The projector's one call after a committed batch."""
    publisher = _publishers.get(projector)
    if publisher is not None:
        publisher.after_commit(projector.status.applied_total)


# -- verifying -------------------------------------------------------------------------------


@dataclass
class TrailVerdict:
    """What ``wbl audit verify`` and ``GET /audit-trail/verify`` report."""

    report: VerifyReport
    checkpoints_read: int | None
    """None: the checkpoint topic was not read (no broker configured)."""
    refused: list[str] = field(default_factory=list)
    """Checkpoints naming a known key whose signature does not verify (forgeries), and
    records that are not checkpoints at all: each named by its offset. They fail the
    verification."""
    ignored: list[str] = field(default_factory=list)
    """Checkpoints signed by a key this service does not know: never trusted, reported,
    but not a failure (another deployment's, or a retired key missing from
    WBL_AUDIT_RETIRED_PUBLIC_KEYS)."""

    @property
    def ok(self) -> bool:
        return self.report.ok and not self.refused


@dataclass
class Readback:
    anchors: list[Anchor] = field(default_factory=list)
    read: int = 0
    refused: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def trusted_anchors(settings: Settings, bootstrap: str) -> Readback:
    """Read back every checkpoint; keep those whose signature verifies with a known key."""
    ring = key_ring(settings)
    topic = settings.audit_checkpoint_topic
    found = Readback()
    documents = read_checkpoints(bootstrap, topic)
    found.read = len(documents)
    for offset, raw in documents:
        try:
            checkpoint = parse(raw)
        except NotACheckpoint as error:
            found.refused.append(f"{topic} offset {offset}: {error}")
            continue
        why = ring.refusal(checkpoint)
        if why is not None:
            where = f"{topic} offset {offset} (position {checkpoint.position}): {why}"
            (found.refused if ring.knows(checkpoint) else found.ignored).append(where)
            continue
        found.anchors.append(Anchor(checkpoint.position, checkpoint.global_hash,
                                    checkpoint.count, f"of {checkpoint.created_at} (offset "
                                    f"{offset}, key {checkpoint.kid})"))
    return found


def verify_trail(settings: Settings, engine: Engine, bootstrap: str | None) -> TrailVerdict:
    """The chains, the stored columns and, with a broker, the signed checkpoints; when a
    checkpoint disagrees, the placement-events topic names the first rewritten entry."""
    projection = AuditTrailProjection(LIVE_TABLES)
    if bootstrap is None:
        with engine.connect() as conn:
            return TrailVerdict(projection.verify(conn), None)
    readback = trusted_anchors(settings, bootstrap)
    anchors = readback.anchors
    with engine.connect() as conn:
        report = projection.verify(conn, anchors)
        problem = report.problem
        if problem is not None and problem.kind == "rewritten" and problem.position:
            after = problem.since or 0
            stored = projection.stored_between(conn, after, problem.position)
    if problem is not None and problem.kind == "rewritten" and problem.position:
        found = first_rewritten(stored, original_events(bootstrap, settings.topic, after,
                                                        problem.position),
                                after, problem.position)
        if found is not None:
            report.problem = _located(found, problem)
    return TrailVerdict(report, readback.read, readback.refused, readback.ignored)


def _located(found: RewrittenEntry, problem: Problem) -> Problem:
    return Problem(found.position, "rewritten",
                   f"{found.detail}; {problem.detail}", found.aggregate_type,
                   found.aggregate_id, found.event_type, problem.since)
