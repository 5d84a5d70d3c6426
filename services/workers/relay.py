"""Event store -> Kafka, in order, with nothing lost.

The relay follows the store's notification log (a gap-free, ordered sequence of
every stored event), publishes each event with librdkafka's idempotent producer
(``infra.kafka.BatchProducer``, decision 077), and only
after the whole batch is acknowledged records how far it got, using the
`eventsourcing` library's tracking recorder in the event store's own database.
A crash therefore repeats at most one batch (readers deduplicate by aggregate id and
version); it never skips one.

Each time it connects it compares the topic with its recorded position: a topic
holding less than the relay had published (a broker that lost its data, a topic
re-created) is refilled from the first stored event (docs/decisions/003).

Only one relay publishes a store's events at a time: each holds the store's relay lease
(``infra/leases.py``) and a second one waits for it (docs/decisions/039).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from eventsourcing.persistence import PersistenceError, Tracking
from kafka.errors import KafkaError

from domain.contract.cloudevents import OutgoingRecord, to_record
from infra import kafka as kafka_io
from infra.leases import Lease, LeaseLost
from infra.settings import Settings
from services.ledger import Ledger

log = logging.getLogger(__name__)


@dataclass
class RelayStatus:
    running: bool = False
    phase: str = "stopped"
    """waiting_for_lease, starting, refilling (republishing what the topic lost), publishing."""
    resume_position: int = 0
    """The position recorded before this start: refilling ends once the relay is back there."""
    connected: bool = False
    stored_position: int = 0
    acknowledged_position: int = 0
    published_total: int = 0
    refills: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    fatal: bool = False
    last_published_at: float | None = None
    errors_total: int = 0
    samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=120))

    def record_published(self, count: int) -> None:
        now = time.monotonic()
        self.published_total += count
        self.last_published_at = time.time()
        self.samples.append((now, self.published_total))

    def throughput(self) -> float:
        """Events per second over the last minute of publishing."""
        now = time.monotonic()
        recent = [(t, n) for t, n in self.samples if now - t <= 60]
        if len(recent) < 2 or recent[-1][0] == recent[0][0]:
            return 0.0
        return (recent[-1][1] - recent[0][1]) / (recent[-1][0] - recent[0][0])

    @property
    def lag(self) -> int:
        """Events stored but not yet acknowledged by Kafka."""
        return max(self.stored_position - self.acknowledged_position, 0)


class Relay:
    def __init__(self, ledger: Ledger, settings: Settings, bootstrap: str) -> None:
        self.ledger = ledger
        self.settings = settings
        self.bootstrap = bootstrap
        self.topic = settings.topic
        self.tracking = ledger.factory.tracking_recorder()
        self.tracking_name = f"relay:{self.topic}"
        self.status = RelayStatus()
        self.lease = Lease.for_settings(settings, self.tracking_name)
        self.tracked = 0
        self.refresh_stored_position()

    # -- positions -------------------------------------------------------------------

    def recorded_position(self) -> int:
        return self.tracking.max_tracking_id(self.tracking_name) or 0

    def refresh_stored_position(self) -> None:
        self.status.stored_position = self.ledger.recorder.max_notification_id() or 0

    def starting_position(self, partitions: int) -> int:
        """Where to publish from: the recorded position, or 0 when the topic lost history."""
        self.tracked = self.recorded_position()
        if self.tracked == 0:
            return 0
        on_topic = kafka_io.max_published_position(self.bootstrap, self.topic, partitions)
        if on_topic < self.tracked:
            log.warning(
                "topic holds events up to position %d but the relay had published up to %d: "
                "refilling the topic from the event store",
                on_topic,
                self.tracked,
            )
            self.status.refills += 1
            return 0
        return self.tracked

    # -- publishing ------------------------------------------------------------------

    def publish_batch(self, producer: kafka_io.BatchProducer, after: int) -> int:
        """Publish the next batch after position ``after``; return the new position."""
        notifications = self.ledger.recorder.select_notifications(
            start=after, limit=self.settings.relay_batch_size, inclusive_of_start=False
        )
        if not notifications:
            return after
        started = time.time()
        batch: list[OutgoingRecord] = []
        for notification in notifications:
            domain_event = self.ledger.mapper.to_domain_event(notification)
            record = to_record(
                domain_event, notification.topic, notification.id, self.settings.event_source
            )
            batch.append(record)
        producer.publish(self.topic, batch)  # raises unless every record was acknowledged
        last = notifications[-1].id
        if self.settings.relay_batch_log is not None:
            self._log_batch(started, notifications[0].id, last)
        if last > self.tracked:
            self.tracking.insert_tracking(Tracking(self.tracking_name, last))
            self.tracked = last
        self.status.acknowledged_position = last
        self.status.record_published(len(notifications))
        if self.status.phase == "refilling" and last >= self.status.resume_position:
            self.status.phase = "publishing"
        return last

    def _log_batch(self, started: float, first: int, last: int) -> None:
        """One line per acknowledged batch, in one append: which process published which
        positions when (the fault tests check that no two relays overlap)."""
        assert self.settings.relay_batch_log is not None
        line = f"{os.getpid()} {started:.6f} {time.time():.6f} {first} {last}\n"
        with self.settings.relay_batch_log.open("a") as out:
            out.write(line)

    def publish_pending(self, producer: kafka_io.BatchProducer, after: int) -> int:
        """Publish everything stored after ``after``; return the last position published."""
        while True:
            position = self.publish_batch(producer, after)
            if position == after:
                return position
            after = position

    # -- the loop ----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set, while holding the relay lease; on broker trouble back
        off, reconnect and check; when the lease is lost, stop publishing and wait for it."""
        self.status.running = True
        backoff = 0.2
        try:
            while not stop.is_set():
                if not self.lease.held:
                    self.status.phase = "waiting_for_lease"
                    if not self.lease.acquire(stop):
                        return
                    log.info("relay lease acquired", extra={"lease": self.lease.name})
                try:
                    self._session(stop)
                    backoff = 0.2
                except LeaseLost as error:
                    self._error(error)
                    log.warning("relay lost its lease; waiting for it again")
                except kafka_io.TopicWouldLoseHistory as error:
                    self._error(error)
                    self.status.fatal = True
                    log.error("relay stopped: %s", error)
                    return
                except (KafkaError, OSError, TimeoutError, PersistenceError) as error:
                    # Broker or event store unreachable: nothing was recorded as published
                    # that was not acknowledged, so starting the session again is safe.
                    self._error(error)
                    log.warning("relay interrupted (%s); retrying in %.1f s",
                                type(error).__name__, backoff)
                    self._refresh_lag()
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            self.lease.release()
            self.status.running = False
            self.status.connected = False
            self.status.phase = "stopped"

    def _refresh_lag(self) -> None:
        """Keep the lag current while the broker is away: that is when operators look."""
        with contextlib.suppress(PersistenceError):  # the store failed: keep the last one
            self.refresh_stored_position()

    def _error(self, error: BaseException) -> None:
        self.status.connected = False
        self.status.last_error = f"{type(error).__name__}: {error}"
        self.status.last_error_at = time.time()
        self.status.errors_total += 1

    def _session(self, stop: threading.Event) -> None:
        self.status.phase = "starting"
        self.status.resume_position = self.recorded_position()
        self.refresh_stored_position()
        # Made first: librdkafka's idempotent producer gets its producer id in the
        # background, up to 0.5 s after it is made; the checks below overlap that wait.
        producer = kafka_io.BatchProducer(self.bootstrap)
        try:
            admin = kafka_io.admin_client(self.bootstrap)
            try:
                partitions = kafka_io.ensure_topic(admin, self.settings)
            finally:
                admin.close()
            position = self.starting_position(partitions)
            waiting_since = time.monotonic()
            while not producer.wait_ready(timeout_s=0.2):  # the lag stays current meanwhile
                self.refresh_stored_position()
                if stop.is_set():
                    return
                if time.monotonic() - waiting_since > 10:
                    raise TimeoutError("the broker gave the relay's producer no producer id")
            self.status.acknowledged_position = position
            self.status.phase = ("refilling" if position < self.status.resume_position
                                 else "publishing")
            self.status.connected = True
            idle = self.settings.relay_idle_sleep_ms / 1000
            while not stop.is_set():
                self.lease.check()
                self.refresh_stored_position()
                new_position = self.publish_batch(producer, position)
                if new_position == position:
                    producer.serve()
                    stop.wait(idle)
                position = new_position
        finally:
            producer.close(timeout_s=5)
