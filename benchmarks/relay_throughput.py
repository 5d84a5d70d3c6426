"""Relay throughput against raw producers, in the same run, same broker.

    python -m benchmarks.relay_throughput [--events 50000] [--rounds 3]

The raw baselines send the very records the relay would send (built beforehand, in memory),
then flush: with kafka-python's producer (the baseline of earlier versions, kept so that
figures stay comparable) and with the relay's own librdkafka producer (decision 077), the
fastest each can publish them.
The relay does its whole job: read the store's notification log in batches, decode each
stored event (upcasting), encode the CloudEvent, send, wait for every acknowledgement, and
record its position. Set WBL_BENCH_BOOTSTRAP to use another broker than a local tansu one,
and WBL_BENCH_DATABASE_URL to read events from PostgreSQL instead of an SQLite file.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.workload import write_history
from domain.contract.cloudevents import to_record
from infra import kafka as kafka_io
from infra.broker import LocalBroker
from infra.settings import Settings
from services.bootstrap import build_ledger
from services.ledger import BirthDatesInMemory, Ledger
from services.workers.relay import Relay


def raw_publish(bootstrap: str, topic: str, records: list) -> float:  # type: ignore[type-arg]
    producer = kafka_io.producer(bootstrap)
    try:
        started = time.perf_counter()
        futures = [producer.send(topic, key=r.key, value=r.value, headers=r.headers)
                   for r in records]
        producer.flush(timeout=120)
        for future in futures:
            future.get(timeout=30)
        return time.perf_counter() - started
    finally:
        producer.close()


def raw_librdkafka(bootstrap: str, topic: str, records: list) -> float:  # type: ignore[type-arg]
    producer = kafka_io.BatchProducer(bootstrap)
    try:
        producer.wait_ready()  # as the relay's session does, before its first batch
        started = time.perf_counter()
        producer.publish(topic, records, timeout_s=120)
        return time.perf_counter() - started
    finally:
        producer.close()


def relay_publish(ledger: Ledger, settings: Settings, bootstrap: str) -> float:
    relay = Relay(ledger, settings, bootstrap)
    producer = kafka_io.BatchProducer(bootstrap)
    try:
        producer.wait_ready()
        started = time.perf_counter()
        relay.publish_pending(producer, 0)
        return time.perf_counter() - started
    finally:
        producer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=Settings().relay_batch_size)
    args = parser.parse_args()

    broker = None
    bootstrap = os.environ.get("WBL_BENCH_BOOTSTRAP")
    if not bootstrap:
        broker = LocalBroker()
        broker.start()
        bootstrap = broker.bootstrap_servers
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=os.environ.get(
            "WBL_BENCH_DATABASE_URL"), relay_batch_size=args.batch_size)
        ledger = build_ledger(settings, birth_dates=BirthDatesInMemory())
        started = time.perf_counter()
        stored = write_history(ledger, args.events)
        print(f"history: {stored} events written in {time.perf_counter() - started:.1f} s "
              f"({'PostgreSQL' if settings.database_url else 'SQLite'})")
        notifications = ledger.recorder.select_notifications(start=0, limit=stored + 1,
                                                             inclusive_of_start=False)
        records = [to_record(ledger.mapper.to_domain_event(n), n.topic, n.id,
                             settings.event_source) for n in notifications]
        mean_bytes = statistics.mean(len(r.value) for r in records)
        raw_rates, rdk_rates, relay_rates = [], [], []
        for round_ in range(args.rounds):
            for kind in ("raw", "librdkafka", "relay"):
                topic = f"bench-{kind}-{uuid.uuid4().hex[:8]}"
                round_settings = settings.model_copy(update={"topic": topic})
                admin = kafka_io.admin_client(bootstrap)
                kafka_io.ensure_topic(admin, round_settings)
                admin.close()
                if kind == "raw":
                    raw_rates.append(stored / raw_publish(bootstrap, topic, records))
                elif kind == "librdkafka":
                    rdk_rates.append(stored / raw_librdkafka(bootstrap, topic, records))
                else:
                    ledger.factory.tracking_recorder()  # fresh topic -> fresh tracking name
                    relay_rates.append(stored / relay_publish(ledger, round_settings, bootstrap))
            print(f"round {round_ + 1}: raw {raw_rates[-1]:,.0f} ev/s, "
                  f"raw librdkafka {rdk_rates[-1]:,.0f} ev/s, relay {relay_rates[-1]:,.0f} ev/s")
        ledger.close()
    if broker is not None:
        broker.stop()
    raw, relay = statistics.median(raw_rates), statistics.median(relay_rates)
    rdk = statistics.median(rdk_rates)
    print(f"\nevents: {stored}, mean body {mean_bytes:.0f} B, relay batch {args.batch_size}, "
          f"producers: acks=all idempotent gzip, 1 in flight")
    print(f"raw kafka-python producer: {raw:,.0f} events/s (median of {args.rounds})")
    print(f"raw librdkafka producer:   {rdk:,.0f} events/s (median of {args.rounds})")
    print(f"relay (librdkafka):        {relay:,.0f} events/s (median of {args.rounds})")
    print(f"ratio relay/raw:           {relay / raw:.2f}")
    print(f"ratio relay/librdkafka:    {relay / rdk:.2f}")


if __name__ == "__main__":
    main()
