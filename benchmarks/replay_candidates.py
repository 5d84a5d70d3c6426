"""Replay candidates of issue 18, measured against each other and the raw consumer in one run.

    python -m benchmarks.replay_candidates [--events 200000] [--batches 5000,20000] [--rounds 2]

Fills one topic with a generated state-year (benchmarks/state_year.py, 2% duplicates), then
alternates, round after round: the raw kafka-python consumer, and a replay of all projections
into an empty read-model database for each candidate. Candidates so far: the projector's
``max_batch`` (events taken into one transaction when the topic is behind: 5,000 today).
Prints the figures as JSON.
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

from benchmarks import replay_projections
from benchmarks.replay_projections import PARTITIONS, raw_consume
from benchmarks.state_year import StateYear
from infra.broker import LocalBroker
from infra.settings import Settings
from tests.integration.test_projections_support import create_topic, publish


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batches", default="5000,20000")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
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
            for round_ in range(args.rounds):
                results["raw"].append(sent / raw_consume(broker.bootstrap_servers, topic,
                                                         sent))
                for b in batches:
                    folder = Path(tmp) / f"{round_}-{b}"
                    folder.mkdir()
                    seconds, _ = replay_projections.replay(
                        Settings(data_dir=folder), broker.bootstrap_servers, topic,
                        args.events, max_batch=b)
                    results[f"max_batch={b}"].append(sent / seconds)
                load.append(os.getloadavg()[0])
    finally:
        broker.stop()
    summary: dict[str, Any] = {"events": args.events, "records": sent,
                               "load_average": [round(x, 1) for x in load],
                               "records_per_s": {k: [round(v) for v in vs]
                                                 for k, vs in results.items()},
                               "ratio_to_raw": {
                                   k: [round(v / r, 3) for v, r in zip(vs, results["raw"],
                                                                       strict=True)]
                                   for k, vs in results.items() if k != "raw"},
                               "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
