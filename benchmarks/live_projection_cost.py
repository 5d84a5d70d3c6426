"""Live per-event cost of the projections against the length of a placement's history.

    python -m benchmarks.live_projection_cost [--placements 20] [--histories 10,500]

In live operation the projector applies a few events per poll. This builds, for each
history length N, ``--placements`` placements that each already hold N hour entries (logged
and approved, applied in 1,000-event transactions), then times what the live projector does
next: one poll (one transaction) per placement, each holding one ``HoursLogged`` and its
``HoursApproved``, through ``Projector.apply_batch`` with all four projections on a SQLite
file. Reported: milliseconds per poll and microseconds per event, median over the polls.
The cost should not depend on N (decision 025); before it, every poll loaded, decoded,
re-encoded and rewrote the placement's whole entries document in two projections.
No broker: the events are built in memory as the topic would deliver them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from domain.contract.envelope import Envelope
from infra.consumer import Delivery
from infra.database import read_model_engine
from infra.settings import Settings
from services.workers.projector import Projector


class _Reader:
    """Stands in for the topic reader: the projector only tells it what it applied."""

    def advance(self, delivery: Delivery) -> None:
        pass


def _placement(placement_id: str, position: int) -> list[Envelope]:
    at = datetime(2026, 1, 5, tzinfo=UTC)
    coordinator = {"actor_id": "coord-1", "actor_role": "coordinator"}
    matched = {**coordinator, "business_date": "2026-01-02", "organisation_id": "org-1",
               "opportunity_id": "o-1", "learner_id": f"l-{placement_id[:8]}",
               "supervisor_id": "super-1", "wbl_type": "Apprenticeship",
               "pre_apprenticeship": False, "starts_on": "2026-01-05",
               "ends_on": "2030-01-05", "minor_during_placement": False,
               "program_id": "prog-1", "approach": "time_based",
               "ojl_minutes_required": 120000, "work_processes": ["Machine setup"],
               "competencies": [], "pre_apprenticeship_hours_count": False}
    started = {**coordinator, "business_date": "2026-01-05"}
    return [_env(placement_id, "LearnerMatched", matched, 1, position, at),
            _env(placement_id, "PlacementStarted", started, 2, position + 1, at)]


def _hours(placement_id: str, n: int, version: int, position: int) -> list[Envelope]:
    day = (date(2026, 1, 5) + timedelta(days=n % 1400)).isoformat()
    entry = f"e-{n}"
    logged = {"actor_id": "l-1", "actor_role": "learner", "business_date": day,
              "entry_id": entry, "minutes": 240, "kind": "on_the_job", "start_time": None,
              "end_time": None, "allocations": {"Machine setup": 240}, "school_day": False,
              "school_week": False, "child_labour_flags": []}
    approved = {"actor_id": "super-1", "actor_role": "supervisor", "business_date": day,
                "entry_id": entry}
    at = datetime(2026, 1, 5, tzinfo=UTC)
    return [_env(placement_id, "HoursLogged", logged, version, position, at),
            _env(placement_id, "HoursApproved", approved, version + 1, position + 1, at)]


def _env(aggregate_id: str, event_type: str, data: dict[str, Any], version: int,
         position: int, at: datetime) -> Envelope:
    return Envelope(f"{aggregate_id}/{version}", event_type, "Placement", aggregate_id,
                    version, position, 1, at, data)


def measure(history: int, placements: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = read_model_engine(Settings(data_dir=Path(tmp)))
        projector = Projector(engine, bootstrap="unused", topic="live-cost")
        ids = [str(uuid.uuid4()) for _ in range(placements)]
        position = 1
        backlog: list[Envelope] = []
        for pid in ids:
            backlog += _placement(pid, position)
            position += 2
        versions = dict.fromkeys(ids, 3)
        for n in range(history):
            for pid in ids:
                backlog += _hours(pid, n, versions[pid], position)
                versions[pid] += 2
                position += 2
        offset = 0
        for start in range(0, len(backlog), 1000):
            batch = [Delivery(0, offset + i, e) for i, e in enumerate(backlog[start:start + 1000])]
            projector.apply_batch(_Reader(), batch)  # type: ignore[arg-type]
            offset += len(batch)
        polls = []
        for pid in ids:
            events = _hours(pid, history, versions[pid], position)
            versions[pid] += 2
            position += 2
            batch = [Delivery(0, offset + i, e) for i, e in enumerate(events)]
            offset += len(batch)
            started = time.perf_counter()
            projector.apply_batch(_Reader(), batch)  # type: ignore[arg-type]
            polls.append(time.perf_counter() - started)
        engine.dispose()
    median = statistics.median(polls)
    return {"entries_per_placement": history, "polls": len(polls),
            "ms_per_poll_median": round(median * 1e3, 2),
            "us_per_event_median": round(median * 1e6 / 2, 1),
            "ms_per_poll_max": round(max(polls) * 1e3, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--placements", type=int, default=20)
    parser.add_argument("--histories", default="10,500")
    args = parser.parse_args()
    results = [measure(int(n), args.placements) for n in args.histories.split(",")]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
