"""Replay throughput of all projections together, from offset 0, against a raw kafka-python
consumer reading the same topic in the same run; and the projector's memory over the replay.

    python -m benchmarks.replay_projections [--events 1000000] [--store sqlite|postgres]

The topic is filled with a generated history (tests/unit/projections/history.py: programs,
opportunities, placements with hour logs, approvals, rejections, corrections, credits,
evaluations, credentials), 3 partitions, keyed by aggregate, CloudEvents binary mode, plus
2% duplicate records. The raw baseline assigns every partition, seeks to 0 and polls every
record to the end: what kafka-python can deliver, nothing decoded. The replay is a fresh
``Projector`` (the live one's code) with every default projection, on an empty read-model
database, from offset 0 until every distinct event is applied. Memory is the process's
resident set size, sampled every second during the replay (not tracemalloc, which would
slow the replay several-fold). Set WBL_BENCH_BOOTSTRAP to use another broker and
WBL_BENCH_DATABASE_URL for PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from infra.broker import LocalBroker
from infra.database import read_model_engine
from infra.settings import Settings
from services.workers.projector import Projector
from tests.integration.test_projections_support import create_topic, publish
from tests.unit.projections.history import generate

PARTITIONS = 3


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def fill(bootstrap: str, topic: str, events: int) -> tuple[int, int]:
    """Publish about ``events`` distinct events (plus 2% copies); return (distinct, sent)."""
    create_topic(bootstrap, topic, PARTITIONS)
    distinct = sent = 0
    seed = 0
    while distinct < events:
        history = generate(2000, seed=seed, first_position=distinct + 1)
        envelopes = history.envelopes[:events - distinct]
        sent += publish(bootstrap, topic, envelopes, duplicates=0.02, seed=seed)
        distinct += len(envelopes)
        seed += 1
    return distinct, sent


def raw_consume(bootstrap: str, topic: str, records: int) -> float:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             group_id=None, auto_offset_reset="earliest",
                             max_poll_records=1000)
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, 0)
    seen = 0
    started = time.perf_counter()
    try:
        while seen < records:
            for batch in consumer.poll(timeout_ms=500).values():
                seen += len(batch)
        return time.perf_counter() - started
    finally:
        consumer.close()


def replay(settings: Settings, bootstrap: str, topic: str, distinct: int,
           max_batch: int | None = None, prefetch: bool = False
           ) -> tuple[float, list[tuple[int, float]]]:
    """``max_batch``: the projector's events per transaction (None: its default);
    ``prefetch``: fetch and decode in a child process (decision 063)."""
    engine = read_model_engine(settings)
    projector = Projector(engine, bootstrap=bootstrap, topic=topic, poll_timeout_ms=200,
                          prefetch=prefetch)
    if max_batch is not None:
        projector.max_batch = max_batch
    stop = threading.Event()
    samples: list[tuple[int, float]] = [(0, rss_mb())]
    thread = threading.Thread(target=projector.run, args=(stop,), daemon=True)
    started = time.perf_counter()
    thread.start()
    next_sample = started + 1.0
    try:
        # Check for the end every 20 ms (a 1 s check made short replays look up to a second
        # slower); sample memory every second.
        while projector.status.applied_total < distinct:
            time.sleep(0.02)
            if time.perf_counter() >= next_sample:
                samples.append((projector.status.applied_total, rss_mb()))
                next_sample += 1.0
            if projector.status.fatal:
                raise RuntimeError(projector.status.last_error)
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        thread.join(timeout=30)
        engine.dispose()
    samples.append((projector.status.applied_total, rss_mb()))
    return elapsed, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    broker = None
    bootstrap = os.environ.get("WBL_BENCH_BOOTSTRAP")
    if not bootstrap:
        broker = LocalBroker()
        broker.start()
        bootstrap = broker.bootstrap_servers
    topic = f"wbl.bench-replay-{uuid.uuid4().hex[:8]}.v1"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp), database_url=(
                os.environ.get("WBL_BENCH_DATABASE_URL") if args.store == "postgres" else None))
            t = time.perf_counter()
            distinct, sent = fill(bootstrap, topic, args.events)
            fill_s = time.perf_counter() - t
            raw_s = raw_consume(bootstrap, topic, sent)
            replay_s, samples = replay(settings, bootstrap, topic, distinct)
    finally:
        if broker is not None:
            broker.stop()
    raw_rate = sent / raw_s
    rate = sent / replay_s
    tenth = next((m for n, m in samples if n >= distinct // 10), samples[-1][1])
    result = {
        "store": args.store, "distinct_events": distinct, "records_on_topic": sent,
        "fill_seconds": round(fill_s, 1),
        "raw_consumer_records_per_s": round(raw_rate), "raw_seconds": round(raw_s, 1),
        "replay_records_per_s": round(rate), "replay_seconds": round(replay_s, 1),
        "ratio_to_raw": round(rate / raw_rate, 3),
        "rss_mb_at_10_percent": round(tenth, 1), "rss_mb_peak": round(max(m for _, m in
                                                                          samples), 1),
        "rss_mb_end": round(samples[-1][1], 1),
        "rss_samples": [(n, round(m, 1)) for n, m in samples[:: max(len(samples) // 12, 1)]],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
