"""Replay candidates of issue 18, measured against each other and the raw consumer in one run.

    python -m benchmarks.replay_candidates [--events 200000] [--batches 5000,20000] [--rounds 2]
    python -m benchmarks.replay_candidates --events 200000 --batches 5000 \
        --rebuilds python,set-based [--per-projection] [--check]
    python -m benchmarks.replay_candidates --events 1000000 --batches none --rebuilds set-based

Fills one topic with a generated state-year (benchmarks/state_year.py, 2% duplicates), then
alternates, round after round: the raw kafka-python consumer, and a replay of all projections
into an empty read-model database for each candidate. Candidates so far: the projector's
``max_batch`` (events taken into one transaction when the topic is behind: 5,000 today).

``--rebuilds``: after each round's replays, ``wbl projections rebuild``'s own code
(``Rebuild(...).run(swap=True)``) on the last replay's database, from offset 0 to the live
positions (the whole topic): ``python`` folds poll after poll as the live projector does,
``set-based`` stages the records and computes the tables set-wise (decision 065).
``--batches none`` (decision 068): no live replay; the rebuilds run on one database whose
live positions are set at the topic's end and whose live tables an unmeasured set-based
rebuild fills first (so every measured rebuild swaps out and drops full tables, as after a
live replay). ``--per-projection`` also rebuilds
each projection alone with each; ``--check`` runs ``wbl projections check --set-based``
against the tables the live Python folds wrote (row for row) before any rebuild swaps them
out, and its verdict goes into the JSON. Beside each rate, this process's CPU time per record
(the broker's apart), which the other engineers' load on the shared cores moves less than
wall time. Prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from itertools import islice
from pathlib import Path
from typing import Any

from confluent_kafka import TopicPartition as CTopicPartition
from kafka import TopicPartition
from sqlalchemy import insert

from benchmarks import replay_projections
from benchmarks.replay_projections import PARTITIONS, raw_consume
from benchmarks.state_year import StateYear
from infra import kafka as kafka_io
from infra.broker import LocalBroker
from infra.bulk_read import bulk_consumer
from infra.database import read_model_engine
from infra.settings import Settings
from projections.tables import consumer_positions, metadata
from services.workers.rebuild import PROJECTION_KINDS, Rebuild
from tests.integration.test_projections_support import create_topic, publish


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batches", default="5000,20000",
                        help="comma-separated max_batch values of the live replays, or none")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rebuilds", default="",
                        help="comma-separated: python, set-based (none by default)")
    parser.add_argument("--per-projection", action="store_true")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--raw-librdkafka", action="store_true",
                        help="also a raw confluent-kafka (librdkafka) consumer each round: the "
                             "bulk read's own baseline (decision 070)")
    args = parser.parse_args()
    batches = [] if args.batches == "none" else [int(b) for b in args.batches.split(",")]
    rebuilds = [r for r in args.rebuilds.split(",") if r]
    unknown = set(rebuilds) - set(REBUILDS)
    if unknown:
        parser.error(f"unknown rebuilds: {', '.join(sorted(unknown))}")
    details: dict[str, list[Any]] = {}
    cpu: dict[str, list[float]] = {}
    """This process's CPU seconds (all its threads; the broker's are apart) per candidate:
    less sensitive than wall time to the other engineers' load on the shared cores."""
    checked: dict[str, Any] | None = None
    broker = LocalBroker()
    broker.start()
    topic = f"wbl.bench-candidates-{uuid.uuid4().hex[:8]}.v1"
    results: dict[str, list[float]] = {"raw": [], **{f"max_batch={b}": [] for b in batches}}
    try:
        create_topic(broker.bootstrap_servers, topic, PARTITIONS)
        envelopes = StateYear(args.events).envelopes()
        sent = 0
        while chunk := list(islice(envelopes, 50_000)):
            sent += publish(broker.bootstrap_servers, topic, chunk, duplicates=0.02)
        load = [os.getloadavg()[0]]
        with tempfile.TemporaryDirectory() as tmp:
            if not batches:
                _prepare(Settings(data_dir=Path(tmp) / "rebuilds"), broker.bootstrap_servers,
                         topic)
            for round_ in range(args.rounds):
                cpu_started = time.process_time()
                results["raw"].append(sent / raw_consume(broker.bootstrap_servers, topic,
                                                         sent))
                cpu.setdefault("raw", []).append(time.process_time() - cpu_started)
                if args.raw_librdkafka:
                    cpu_started = time.process_time()
                    results.setdefault("raw librdkafka", []).append(
                        sent / raw_librdkafka(broker.bootstrap_servers, topic, sent))
                    cpu.setdefault("raw librdkafka", []).append(
                        time.process_time() - cpu_started)
                for b in batches:
                    folder = Path(tmp) / f"{round_}-{b}"
                    folder.mkdir()
                    cpu_started = time.process_time()
                    seconds, _ = replay_projections.replay(
                        Settings(data_dir=folder), broker.bootstrap_servers, topic,
                        args.events, max_batch=b)
                    results[f"max_batch={b}"].append(sent / seconds)
                    cpu.setdefault(f"max_batch={b}", []).append(
                        time.process_time() - cpu_started)
                last = Settings(data_dir=Path(tmp) / (f"{round_}-{batches[-1]}" if batches
                                                      else "rebuilds"))
                if args.check and checked is None:  # before any rebuild swaps its tables in
                    checked = _check(last, broker.bootstrap_servers, topic)
                for kind in rebuilds:
                    names: list[list[str] | None] = [None]
                    if args.per_projection:
                        names += [[n] for n in PROJECTION_KINDS]
                    for only in names:
                        label = f"rebuild {kind}" + (f" {only[0]}" if only else "")
                        cpu_started = time.process_time()
                        rate, figures = _rebuild(last, broker.bootstrap_servers, topic, sent,
                                                 only, **REBUILDS[kind])
                        results.setdefault(label, []).append(rate)
                        cpu.setdefault(label, []).append(time.process_time() - cpu_started)
                        if figures is not None:
                            details.setdefault(label, []).append(figures)
                load.append(os.getloadavg()[0])
    finally:
        broker.stop()
    summary: dict[str, Any] = {"events": args.events, "records": sent,
                               "load_average": [round(x, 1) for x in load],
                               "records_per_s": {k: [round(v) for v in vs]
                                                 for k, vs in results.items()},
                               "ratio_to_raw": {
                                   k: [round(v / r, 3) for v, r in zip(vs, results["raw"],
                                                                       strict=False)]
                                   for k, vs in results.items() if k != "raw"},
                               "date": time.strftime("%Y-%m-%d")}
    summary["cpu_us_per_record"] = {k: [round(v * 1e6 / sent, 1) for v in vs]
                                    for k, vs in cpu.items()}
    summary["cpu_ratio_raw_to_candidate"] = {
        k: [round(r / v, 3) for v, r in zip(vs, cpu["raw"], strict=False)]
        for k, vs in cpu.items() if k != "raw"}
    if details:
        summary["set_based_seconds"] = details
    if checked is not None:
        summary["check_set_based_against_python_folds"] = checked
    print(json.dumps(summary, indent=2))


REBUILDS: dict[str, dict[str, bool]] = {
    "python": {"set_based": False},
    "set-based": {"set_based": True},
    "set-based-kafka-python": {"set_based": True, "bulk_read": False},
    "set-based-apart": {"set_based": True, "placements_apart": True},
}
"""``--rebuilds`` choices: ``Rebuild``'s options for each."""


def _prepare(settings: Settings, bootstrap: str, topic: str) -> None:
    """A read-model database whose live projector is at the topic's end (the high watermark
    after reading every partition to its end) and whose live tables are full (an unmeasured
    set-based rebuild), without a live replay."""
    engine = read_model_engine(settings)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            for partition, end in topic_ends(bootstrap, topic).items():
                conn.execute(insert(consumer_positions).values(
                    consumer="live", topic=topic, partition=partition, next_offset=end,
                    last_event_id=None))
        Rebuild(engine, bootstrap=bootstrap, topic=topic, set_based=True).run(swap=True)
    finally:
        engine.dispose()


def raw_librdkafka(bootstrap: str, topic: str, records: int) -> float:
    """Seconds for a bare confluent-kafka consumer to take the topic's ``records`` (no
    header or body touched): what librdkafka alone costs."""
    consumer = bulk_consumer(bootstrap, client_id="raw-librdkafka")
    consumer.assign([CTopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    left = records
    started = time.perf_counter()
    try:
        while left > 0:
            left -= sum(1 for m in consumer.consume(num_messages=10_000, timeout=0.5)
                        if m.error() is None)
        return time.perf_counter() - started
    finally:
        consumer.close()


def topic_ends(bootstrap: str, topic: str) -> dict[int, int]:
    """Each partition's end, read (tansu's ``end_offsets`` is wrong: BROKER-NOTES.md)."""
    consumer = kafka_io.consumer(bootstrap)
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, 0)
    ends = dict.fromkeys(range(PARTITIONS), 0)
    try:
        idle = 0
        while idle < 3:
            batch = consumer.poll(timeout_ms=1000)
            idle = 0 if batch else idle + 1
            for tp, records in batch.items():
                ends[tp.partition] = records[-1].offset + 1
    finally:
        consumer.close()
    return ends


def _rebuild(settings: Settings, bootstrap: str, topic: str, records: int,
             names: list[str] | None, *, set_based: bool, bulk_read: bool = True,
             placements_apart: bool = False) -> tuple[float, dict[str, Any] | None]:
    """Records on the topic per second of ``wbl projections rebuild`` (swap included) over
    the whole topic, and the set-based load's own times."""
    engine = read_model_engine(settings)
    try:
        result = Rebuild(engine, bootstrap=bootstrap, topic=topic, names=names,
                         set_based=set_based, bulk_read=bulk_read,
                         placements_apart=placements_apart).run(swap=True)
    finally:
        engine.dispose()
    figures = None
    if result.set_based is not None:
        figures = {"total": round(result.seconds, 2), "staged": result.set_based.staged,
                   **{k: round(v, 2) for k, v in result.set_based.seconds.items()}}
    return records / result.seconds, figures


def _check(settings: Settings, bootstrap: str, topic: str) -> dict[str, Any]:
    """``wbl projections check --set-based``: the set-based tables against the live ones."""
    engine = read_model_engine(settings)
    try:
        result = Rebuild(engine, bootstrap=bootstrap, topic=topic, set_based=True
                         ).run(swap=False)
    finally:
        engine.dispose()
    return {"equal": result.equal, "tables": {
        d.table: {"live_rows": d.live_rows, "rebuilt_rows": d.rebuilt_rows,
                  "first_difference": d.first_difference} for d in result.differences}}


if __name__ == "__main__":
    main()
