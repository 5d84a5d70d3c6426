"""Helpers of the worker-supervision scenarios (orphans, leases, first start): processes seen
through /proc, the relay's per-batch log, and the kill counts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

from infra.settings import Settings

FULL_COUNT = 20
REDUCED_COUNT = 3


def kill_count() -> int:
    """The full count (20) when the fault suite runs its full loop (``WBL_FAULT_ITERATIONS``
    set, as for every fault scenario), a reduced one (3) in the normal run."""
    return FULL_COUNT if os.environ.get("WBL_FAULT_ITERATIONS") else REDUCED_COUNT


def wbl_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment of a `wbl` process on the test's store and broker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WBL_")}
    env.update({
        "WBL_DATA_DIR": str(settings.data_dir),
        "WBL_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
        "WBL_TOPIC": settings.topic,
        "WBL_LOG_LEVEL": "WARNING",
        **overrides,
    })
    if settings.database_url:
        env["WBL_DATABASE_URL"] = settings.database_url
    return env


def wbl(args: list[str], env: dict[str, str], log: Path, *, own_group: bool = False
        ) -> subprocess.Popen[bytes]:
    """``wbl ARGS`` as a process, its output appended to ``log``; ``own_group`` puts it in a
    process group of its own (so the test can kill that group, and only that group)."""
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "services.cli", *args], env=env,
                                stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=own_group)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs: it exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` in the process tree, from /proc."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = parent_of(int(entry.name))
            if parent is not None:
                children[parent].append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def wait_until_gone(pids: set[int], timeout: float) -> set[int]:
    """The pids of ``pids`` still running after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        left = {p for p in pids if alive(p)}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def relay_spans(batch_log: Path) -> dict[int, tuple[float, float, int]]:
    """pid -> (first batch started, last batch acknowledged, batches), from the relay's
    per-batch log (``WBL_RELAY_BATCH_LOG``)."""
    spans: dict[int, tuple[float, float, int]] = {}
    if not batch_log.exists():
        return spans
    for line in batch_log.read_text().splitlines():
        pid_s, start_s, end_s, _first, _last = line.split()
        pid, start, end = int(pid_s), float(start_s), float(end_s)
        if pid in spans:
            first, last, count = spans[pid]
            spans[pid] = (min(first, start), max(last, end), count + 1)
        else:
            spans[pid] = (start, end, 1)
    return spans


def overlapping_relays(batch_log: Path) -> list[tuple[int, int]]:
    """Pairs of relay processes whose publishing overlapped in time (should be none)."""
    ordered = sorted(relay_spans(batch_log).items(), key=lambda item: item[1][0])
    return [(a, b) for (a, (_, a_end, _)), (b, (b_start, _, _)) in pairwise(ordered)
            if b_start < a_end]
