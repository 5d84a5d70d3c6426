"""State scale (issue 18): one run that measures a generated state-year replayed, imported
beside, reported over and served, each against its raw baseline in the same run, and writes
one table into docs/performance.md.

    python -m benchmarks.state_scale                      # 200,000 events: 10-20 minutes
    python -m benchmarks.state_scale --events 1000000 --import-rows 100000 --write-docs
    python -m benchmarks.state_scale --events 2000000 --skip commands,import --write-docs
    python -m benchmarks.state_scale --events 5000000 --rounds 1 --keep DIR  # store kept

1. **History.** ``benchmarks/state_year.py`` generates ``--events`` events; they are stored in
   a fresh SQLite event store (through the ``eventsourcing`` mapper and recorder), the
   learners' profiles put in the vault, and the same events published to a fresh topic on a
   local tansu broker (3 partitions, 2% duplicate records, as ``replay_projections`` does).
2. **Replay.** Alternated in one run: raw kafka-python consumer, replay of all projections
   from offset 0 into an empty read-model database, raw, replay (the last replay's read
   models are the ones the reads below use). Rate over the whole replay, over its first and
   last fifth (flatness), and resident memory (``replay_projections.replay``). ``--replay
   set-based``: the set-based rebuild (``wbl projections rebuild --set-based``, decision 065)
   instead of the folds; its flatness is its whole rate at one size against another.
3. **Import.** ``wbl import placements`` then ``wbl import timesheets`` of ``--import-rows``
   rows (one entry per row, approved, rejected or pending) as a subprocess on a fresh store;
   the raw baseline stores the very events that import stored, again, in a fresh store
   through the recorder in batches of 5,000 (the ``eventsourcing`` application's own write
   path, no rules), before and after the import.
4. **Commands.** ``benchmarks.api_commands``: the raw ledger in-process, then HTTP on
   ``wbl run`` closed loop, raw, closed loop again, and an open loop at ``--rate`` (150/s).
5. **Reads.** ``wbl api`` on the generated store and the replayed read models; an admin
   token; sequential GETs of random placements (``/placements/{id}``, from the store), learners'
   transcripts and schools' lists (``/transcripts/experiences?organisation_id=``,
   ``/apprenticeship-hours?organisation_id=``), each p50/p99 over ``--reads`` requests.
6. **Report.** ``wbl report state`` for the school year over the generated store, as a
   subprocess (stopped after ``--report-timeout``, recorded as not finished): wall time and
   peak resident memory (its VmHWM, read every 50 ms).

Prints the figures as JSON (``--json FILE`` keeps them); ``--write-docs`` replaces the
generated table in docs/performance.md (between its markers).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert

from benchmarks import api_commands, api_workers
from benchmarks.replay_candidates import topic_ends
from benchmarks.replay_projections import PARTITIONS, raw_consume, replay
from benchmarks.state_year import StateYear, write_profiles, write_store
from domain.actor import Role
from domain.contract.envelope import Envelope
from infra.broker import LocalBroker, free_port
from infra.database import read_model_engine
from infra.settings import Settings
from projections.tables import consumer_positions, metadata
from services.api.auth import issue_token, token_key
from services.bootstrap import build_ledger, build_vault
from services.ledger import BirthDatesInMemory
from tests.integration.test_projections_support import create_topic, publish

DOCS = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


def markers(section: str) -> tuple[str, str]:
    """Where a run's table goes in docs/performance.md (``--section``: several runs, e.g. the
    replay at 1 M events and the report at a smaller size, each keep their own table)."""
    name = "state-scale" if section == "main" else f"state-scale-{section}"
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _chunks(envelopes: Iterator[Envelope], size: int) -> Iterator[list[Envelope]]:
    chunk: list[Envelope] = []
    for e in envelopes:
        chunk.append(e)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def prepare(data_dir: Path, bootstrap: str, topic: str, events: int, seed: int
            ) -> dict[str, Any]:
    """Store, vault and topic hold the same generated history."""
    settings = Settings(data_dir=data_dir)
    ledger = build_ledger(settings, birth_dates=BirthDatesInMemory())
    year = StateYear(events, seed=seed)
    create_topic(bootstrap, topic, PARTITIONS)
    started = time.perf_counter()
    sent = stored = 0
    store_s = publish_s = 0.0
    placements: list[str] = []
    for n, chunk in enumerate(_chunks(year.envelopes(), 50_000)):
        t = time.perf_counter()
        stored += write_store(ledger, chunk) if n == 0 else _append(ledger, chunk)
        store_s += time.perf_counter() - t
        t = time.perf_counter()
        sent += publish(bootstrap, topic, chunk, duplicates=0.02, seed=n)
        publish_s += time.perf_counter() - t
        placements.extend(e.aggregate_id for e in chunk if e.event_type == "LearnerMatched")
    ledger.close()
    learners = write_profiles(build_vault(settings), year.profiles())
    return {"events": stored, "records_on_topic": sent, "placements": len(placements),
            "learners": learners, "schools": len(year.schools),
            "districts": len(year.districts), "event_types": dict(year.counts.most_common()),
            "generate_store_publish_seconds": round(time.perf_counter() - started, 1),
            "store_seconds": round(store_s, 1), "publish_seconds": round(publish_s, 1),
            "_placement_ids": placements, "_schools": year.schools,
            "_learner_ids": [learner.id for learner in year.learners]}


def _append(ledger: Any, chunk: list[Envelope]) -> int:
    from benchmarks.state_year import domain_event

    events = [ledger.mapper.to_stored_event(domain_event(e)) for e in chunk]
    for start in range(0, len(events), 5000):
        ledger.recorder.insert_events(events[start:start + 5000])
    return len(events)


def _window_rates(samples: list[tuple[int, float]], distinct: int, seconds: float
                  ) -> tuple[float, float]:
    """Events a second over the first and the last fifth of the replay (samples are taken
    once a second, the n-th about n seconds in; the replay ended after ``seconds``)."""
    first = next((i for i, (n, _) in enumerate(samples) if n >= distinct // 5),
                 len(samples) - 1)
    last_start = next((i for i, (n, _) in enumerate(samples) if n >= distinct * 4 // 5),
                      len(samples) - 1)
    early = samples[first][0] / max(first, 1)
    late = (distinct - samples[last_start][0]) / max(seconds - last_start, 1e-3)
    return early, late


def _replay_figures(sent: int, distinct: int, seconds: float,
                    samples: list[tuple[int, float]]) -> dict[str, Any]:
    early, late = _window_rates(samples, distinct, seconds)
    memory = [m for _, m in samples]
    return {"records_per_s": round(sent / seconds), "seconds": round(seconds, 1),
            "first_fifth_events_per_s": round(early),
            "last_fifth_events_per_s": round(late),
            "rss_mb_at_10_percent": round(next(
                (m for k, m in samples if k >= distinct // 10), memory[-1]), 1),
            "rss_mb_peak": round(max(memory), 1),
            "rss_mb_end": round(memory[-1], 1)}


def set_based_replay(settings: Settings, bootstrap: str, topic: str, *, apart: bool = False
                     ) -> tuple[float, list[tuple[int, float]]]:
    """``wbl projections rebuild --set-based`` (decision 065) as typed, in a process of its
    own, over the whole topic into ``settings``' read-model database, whose live projector
    is first put at the topic's end (unmeasured) so that the rebuild reads every record:
    seconds, and the rebuild process's own resident memory (VmRSS) sampled once a second,
    its peak (VmHWM) last. In this process the memory would include what generating the
    history left behind (1.9 GB at 5 M events), which hid the rebuild's own."""
    engine = read_model_engine(settings)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(delete(consumer_positions).where(
                consumer_positions.c.consumer == "live"))
            for partition, end in topic_ends(bootstrap, topic).items():
                conn.execute(insert(consumer_positions).values(
                    consumer="live", topic=topic, partition=partition, next_offset=end,
                    last_event_id=None))
    finally:
        engine.dispose()
    samples: list[float] = []
    seconds, peak, _ = _wbl(settings.data_dir, "projections", "rebuild", "--set-based",
                            "--quiet", env_extra={
                                "WBL_KAFKA_BOOTSTRAP_SERVERS": bootstrap, "WBL_TOPIC": topic,
                                "WBL_REBUILD_PLACEMENTS_APART": "true" if apart else "false"},
                            rss_samples=samples)
    return seconds, [(0, m) for m in samples] + [(0, peak)]


def _set_based_figures(sent: int, seconds: float, samples: list[tuple[int, float]]
                       ) -> dict[str, Any]:
    memory = [m for _, m in samples]
    return {"records_per_s": round(sent / seconds), "seconds": round(seconds, 1),
            "rss_mb_at_10_percent": round(memory[len(memory) // 10], 1),
            "rss_mb_peak": round(max(memory), 1), "rss_mb_end": round(memory[-1], 1)}


def measure_replay(bootstrap: str, topic: str, sent: int, distinct: int, folder: Path,
                   data_dir: Path, rounds: int, prefetch: str = "both",
                   how: str = "folds") -> dict[str, Any]:
    """Each round: the raw consumer, then a replay in one process and/or one that fetches
    and decodes in a child process (``prefetch``: off, on, both; decision 063), or
    (``how="set-based"``) the set-based rebuild of all projections (decision 065)."""
    if how in ("set-based", "set-based-apart"):
        return _measure_set_based(bootstrap, topic, sent, folder, data_dir, rounds,
                                  apart=how == "set-based-apart")
    modes = {"off": [False], "on": [True], "both": [False, True]}[prefetch]
    raws: list[float] = []
    replays: dict[bool, list[dict[str, Any]]] = {m: [] for m in modes}
    for n in range(rounds):
        log(f"replay round {n + 1}: raw consumer")
        raws.append(sent / raw_consume(bootstrap, topic, sent))
        for mode in modes:
            last = n == rounds - 1 and mode == modes[-1]
            target = data_dir if last else folder / f"replay-{n}-{int(mode)}"
            target.mkdir(exist_ok=True)
            log(f"replay round {n + 1}: all projections{' (prefetch)' if mode else ''}")
            seconds, samples = replay(Settings(data_dir=target), bootstrap, topic, distinct,
                                      prefetch=mode)
            replays[mode].append(_replay_figures(sent, distinct, seconds, samples))
            log(f"  raw {raws[-1]:,.0f} rec/s, replay {replays[mode][-1]['records_per_s']:,} "
                f"rec/s")
    result: dict[str, Any] = {"raw_records_per_s": [round(r) for r in raws]}
    for mode in modes:
        key = "_prefetch" if mode else ""
        result[f"replays{key}"] = replays[mode]
        result[f"ratios{key}"] = [round(r["records_per_s"] / raw, 3)
                                  for r, raw in zip(replays[mode], raws, strict=True)]
    return result


def _measure_set_based(bootstrap: str, topic: str, sent: int, folder: Path, data_dir: Path,
                       rounds: int, *, apart: bool = False) -> dict[str, Any]:
    raws: list[float] = []
    rebuilds: list[dict[str, Any]] = []
    for n in range(rounds):
        log(f"replay round {n + 1}: raw consumer")
        raws.append(sent / raw_consume(bootstrap, topic, sent))
        target = data_dir if n == rounds - 1 else folder / f"replay-{n}-set-based"
        target.mkdir(exist_ok=True)
        log(f"replay round {n + 1}: set-based rebuild of all projections")
        seconds, samples = set_based_replay(Settings(data_dir=target), bootstrap, topic,
                                            apart=apart)
        rebuilds.append(_set_based_figures(sent, seconds, samples))
        log(f"  raw {raws[-1]:,.0f} rec/s, set-based {rebuilds[-1]['records_per_s']:,} rec/s, "
            f"resident memory peak {rebuilds[-1]['rss_mb_peak']:,} MB")
    return {"raw_records_per_s": [round(r) for r in raws], "replays_set_based": rebuilds,
            "ratios_set_based": [round(r["records_per_s"] / raw, 3)
                                 for r, raw in zip(rebuilds, raws, strict=True)]}


def _csv_text(header: list[str], rows: list[list[str]]) -> str:
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _peak_mb(pid: int) -> float | None:
    """The process's peak resident set since its exec (VmHWM), or None once it is gone."""
    return _status_mb(pid, "VmHWM")


def _tree_rss_mb(pid: int) -> float | None:
    """VmRSS of the process and its children (the set-based rebuild's placement pass runs
    in one, decision 076), or None once the process is gone."""
    own = _status_mb(pid, "VmRSS")
    if own is None:
        return None
    children: list[str] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            children += (task / "children").read_text().split()
    except OSError:
        pass
    return own + sum(_status_mb(int(c), "VmRSS") or 0.0 for c in children)


def _status_mb(pid: int, field: str) -> float | None:
    """A memory field of ``/proc/PID/status`` (VmRSS, VmHWM) in MB, or None once the
    process is gone (a zombie has none)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class TimedOut(RuntimeError):
    def __init__(self, seconds: float, peak: float) -> None:
        super().__init__(f"not finished in {seconds:.0f} s")
        self.seconds, self.peak = seconds, peak


def _wbl(data_dir: Path, *args: str, timeout: float | None = None,
         env_extra: dict[str, str] | None = None, rss_samples: list[float] | None = None
         ) -> tuple[float, float, str]:
    """Run ``wbl ARGS`` on ``data_dir``; (seconds, peak RSS MB, stderr tail). The peak is
    VmHWM read every 50 ms (``ru_maxrss`` would count the parent's pages the child had
    between fork and exec). Past ``timeout`` the child is stopped and ``TimedOut`` raised.
    ``rss_samples``: the child's VmRSS (with its own children's) is appended to it once a
    second, from a second in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WBL_")}
    env.update({"WBL_DATA_DIR": str(data_dir), **(env_extra or {})})
    with tempfile.TemporaryFile() as err_file:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "services.cli", *args], env=env,
                                   stdout=subprocess.DEVNULL, stderr=err_file)
        peak = 0.0
        last_sample = started
        while process.poll() is None:
            peak = max(peak, _peak_mb(process.pid) or 0.0)
            if rss_samples is not None and time.perf_counter() - last_sample >= 1.0:
                last_sample = time.perf_counter()
                rss = _tree_rss_mb(process.pid)
                if rss is not None:
                    rss_samples.append(rss)
            if timeout is not None and time.perf_counter() - started > timeout:
                process.kill()
                process.wait()
                raise TimedOut(time.perf_counter() - started, peak)
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        err_file.seek(0)
        err = err_file.read().decode()
    if process.returncode != 0:
        raise Failed(f"wbl {' '.join(args)} failed: {err[-3000:]}", seconds, peak)
    return seconds, peak, err[-500:]


class Failed(RuntimeError):
    """A ``wbl`` command exited with an error, after ``seconds``, at ``peak`` MB."""

    def __init__(self, message: str, seconds: float, peak: float) -> None:
        super().__init__(message)
        self.seconds, self.peak = seconds, peak


def measure_import(folder: Path, rows: int) -> dict[str, Any]:
    """``wbl import timesheets`` against the raw recorder storing the same events."""
    placements = max(rows // 100, 1)
    data_dir = folder / "import"
    data_dir.mkdir()
    start = date(2025, 1, 6)
    tracker = _csv_text(
        ["placement_ref", "student_number", "given_name", "family_name", "birth_date", "sex",
         "race_ethnicity", "title", "employer_name", "worksite", "wbl_type", "paid",
         "hourly_wage", "start_date", "end_date", "supervisor_id", "status", "ended_on",
         "end_reason"],
        [[f"P-{n}", f"S-{n}", "Ada", f"Learner{n}", "2005-03-02", "F", "White",
          "Machinist intern", "Acme", "Main St", "PaidInternship", "yes", "16.50",
          start.isoformat(), "2025-12-19", f"sup-{n % 50}", "active", "", ""]
         for n in range(placements)])
    rng = random.Random(7)
    sheet_rows = []
    for n in range(rows):
        p = n % placements
        work = start + timedelta(days=n // placements)
        fate = rng.random()
        decision = "approved" if fate < 0.8 else "rejected" if fate < 0.88 else "pending"
        sheet_rows.append([f"P-{p}", work.isoformat(), str(rng.choice([120, 240, 360, 480])),
                           "on_the_job", decision,
                           f"sup-{p % 50}" if decision != "pending" else "",
                           (work + timedelta(days=1)).isoformat()
                           if decision != "pending" else "",
                           "not on the rota" if decision == "rejected" else ""])
    sheet = _csv_text(["placement_ref", "work_date", "minutes", "kind", "decision",
                       "decided_by", "decided_on", "reason"], sheet_rows)
    (folder / "tracker.csv").write_text(tracker)
    (folder / "timesheets.csv").write_text(sheet)
    common = ["--organisation", "district-import", "--actor-id", "coord-import"]
    _wbl(data_dir, "import", "placements", str(folder / "tracker.csv"), *common)
    settings = Settings(data_dir=data_dir)
    ledger = build_ledger(settings, birth_dates=BirthDatesInMemory())
    before = ledger.recorder.max_notification_id() or 0
    ledger.close()
    log(f"import: {rows} timesheet rows")
    seconds, peak, _ = _wbl(data_dir, "import", "timesheets", str(folder / "timesheets.csv"),
                            *common)
    ledger = build_ledger(settings, birth_dates=BirthDatesInMemory())
    after = ledger.recorder.max_notification_id() or 0
    stored = ledger.recorder.select_notifications(start=before, limit=after - before + 1,
                                                  inclusive_of_start=False)
    ledger.close()

    def raw(n: int) -> float:
        target = build_ledger(Settings(data_dir=folder / f"raw-import-{n}"),
                              birth_dates=BirthDatesInMemory())
        from eventsourcing.persistence import StoredEvent

        copies = [StoredEvent(s.originator_id, s.originator_version, s.topic, s.state)
                  for s in stored]
        t = time.perf_counter()
        for i in range(0, len(copies), 5000):
            target.recorder.insert_events(copies[i:i + 5000])
        elapsed = time.perf_counter() - t
        target.close()
        return elapsed

    (folder / "raw-import-0").mkdir()
    (folder / "raw-import-1").mkdir()
    raw_s = [raw(0), raw(1)]
    raw_rows = [rows / s for s in raw_s]
    return {"rows": rows, "placements": placements, "events_stored": len(stored),
            "import_seconds": round(seconds, 1), "import_rows_per_s": round(rows / seconds),
            "import_peak_rss_mb": round(peak, 1),
            "raw_rows_per_s": [round(r) for r in raw_rows],
            "raw_events_per_s": [round(len(stored) / s) for s in raw_s],
            "ratio": round((rows / seconds) / (sum(raw_rows) / 2), 4)}


def measure_commands(folder: Path, seconds: float, rate: float) -> dict[str, Any]:
    data_dir, port = folder / "commands", free_port()
    token = issue_token(token_key(Settings(data_dir=data_dir)), actor_id="coord-bench",
                        role=Role.COORDINATOR, organisation_id="district-042",
                        ttl_seconds=3600)
    raws, closed = [], []
    raws.append(api_commands.raw_ledger(3000, folder / "raw-cmd-0"))
    service = api_commands.start_service(data_dir, port, folder / "wbl-run.log")
    try:
        asyncio.run(api_commands.closed_loop(port, token, 2.0, 16))  # warm up
        closed.append(asyncio.run(api_commands.closed_loop(port, token, seconds, 16)))
        raws.append(api_commands.raw_ledger(3000, folder / "raw-cmd-1"))
        closed.append(asyncio.run(api_commands.closed_loop(port, token, seconds, 16)))
        time.sleep(2)
        opened = asyncio.run(api_commands.open_loop(port, token, seconds, rate))
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=60)
    ratios = [c["commands_per_s"] / r["commands_per_s"] for c, r in zip(closed, raws,
                                                                       strict=True)]
    return {"raw": raws, "http_closed_loop": closed, "http_open_loop": opened,
            "ratios": [round(r, 3) for r in ratios]}


def measure_report(data_dir: Path, folder: Path, timeout: float) -> dict[str, Any]:
    log("report: wbl report state")
    tree: list[float] = []  # with the suppression's worker processes (decision 078)
    try:
        seconds, peak, _ = _wbl(data_dir, "report", "state", "--period", "2025-26",
                                "--starts", "2025-07-01", "--ends", "2026-06-30",
                                "--out", str(folder / "report.json"), "--no-save",
                                timeout=timeout, rss_samples=tree)
    except TimedOut as late:
        return {"seconds": round(late.seconds, 1), "peak_rss_mb": round(late.peak, 1),
                "finished": False, "figures": None, "cutoff": None}
    except Failed as failed:  # written down with the rest, not lost with it
        last = str(failed).strip().splitlines()[-1:] or [""]
        return {"seconds": round(failed.seconds, 1), "peak_rss_mb": round(failed.peak, 1),
                "finished": False, "figures": None, "cutoff": None, "failed": last[0][:300]}
    report = json.loads((folder / "report.json").read_text())
    rows = report.get("figures", [])
    log(f"  report finished in {seconds:,.1f} s, peak {peak:,.0f} MB")
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(peak, 1),
            "peak_tree_rss_mb": round(max(tree, default=peak), 1), "finished": True,
            "figures": len(rows), "hidden": sum(1 for r in rows if r.get("suppressed")),
            "cutoff": report.get("cutoff")}


def _get_latencies(port: int, token: str, paths: list[str]) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies = []
    errors = 0
    for path in paths:
        t = time.perf_counter()
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - t)
        errors += response.status != 200
    connection.close()
    return {"requests": len(paths), "errors": errors,
            **api_commands.percentiles(latencies)}


def measure_reads(data_dir: Path, folder: Path, history: dict[str, Any], count: int
                  ) -> dict[str, Any]:
    port = free_port()
    token = issue_token(token_key(Settings(data_dir=data_dir)), actor_id="admin-bench",
                        role=Role.ADMIN, organisation_id="state-agency", ttl_seconds=3600)
    rng = random.Random(11)
    placements = history["_placement_ids"]
    learners = history["_learner_ids"]
    schools = history["_schools"]
    routes = {
        "placement": [f"/placements/{rng.choice(placements)}" for _ in range(count)],
        "learner_transcript": [f"/learners/{rng.choice(learners)}/transcript"
                               for _ in range(count)],
        "school_experiences": [f"/transcripts/experiences?organisation_id={rng.choice(schools)}"
                               for _ in range(count)],
        "school_apprenticeship_hours": [
            f"/apprenticeship-hours?organisation_id={rng.choice(schools)}"
            for _ in range(count)],
    }
    service = api_commands.start_service(data_dir, port, folder / "wbl-api.log", role="api")
    try:
        for paths in routes.values():  # warm up
            _get_latencies(port, token, paths[:20])
        return {name: _get_latencies(port, token, paths) for name, paths in routes.items()}
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=60)


def _peak(mb: float | None) -> str:
    return "" if mb is None else f", peak {mb} MB"


def table(figures: dict[str, Any], section: str = "main") -> str:
    """The generated part of docs/performance.md."""
    begin, end = markers(section)
    h, rp = figures["history"], figures.get("replay")
    lines = [begin, "",
             f"Generated by `python -m benchmarks.state_scale {figures['arguments']}` on "
             f"{figures['date']} ({figures['cpus']} cores, shared; load average "
             f"{figures['load_average_start']:.1f} at the start, "
             f"{figures['load_average_end']:.1f} at the end). History: {h['events']:,} events, "
             f"{h['placements']:,} placements, {h['learners']:,} learners, {h['schools']:,} "
             f"schools in {h['districts']:,} districts; {h['records_on_topic']:,} records on "
             f"the topic (2% duplicates).", "",
             "| measure | ours | raw baseline, same run | ratio | target (issue 18) |",
             "|---|---|---|---|---|"]
    if rp:
        for key, label in (("", ""), ("_prefetch", ", fetching in a child process"),
                           ("_set_based", ", set-based rebuild")):
            if f"replays{key}" not in rp:
                continue
            for n, (r, raw, ratio) in enumerate(zip(rp[f"replays{key}"],
                                                   rp["raw_records_per_s"],
                                                   rp[f"ratios{key}"], strict=True)):
                lines.append(f"| replay, all projections{label}, round {n + 1} | "
                             f"{r['records_per_s']:,} rec/s ({r['seconds']} s) | {raw:,} rec/s "
                             f"(kafka-python) | **{ratio:.2f}** | ≥ 0.5 |")
        last = (rp.get("replays_prefetch") or rp.get("replays") or rp["replays_set_based"]
                )[-1]
        if "first_fifth_events_per_s" in last:
            flat = last["last_fifth_events_per_s"] / max(last["first_fifth_events_per_s"], 1)
            lines.append(f"| replay rate, first fifth → last fifth (last round) | "
                         f"{last['first_fifth_events_per_s']:,} → "
                         f"{last['last_fifth_events_per_s']:,} ev/s | | {flat:.2f} | "
                         f"within 20% (≥ 0.8) |")
        lines.append(f"| replay memory (RSS at 10% / peak / end) | {last['rss_mb_at_10_percent']}"
                     f" / {last['rss_mb_peak']} / {last['rss_mb_end']} MB | | | flat |")
    im = figures.get("import")
    if im:
        lines.append(f"| `wbl import timesheets`, {im['rows']:,} rows ({im['events_stored']:,} "
                     f"events) | {im['import_rows_per_s']:,} rows/s ({im['import_seconds']} s"
                     f"{_peak(im['import_peak_rss_mb'])}) | "
                     f"{' / '.join(f'{r:,}' for r in im['raw_rows_per_s'])} rows/s (recorder, "
                     f"batches of 5,000) | **{im['ratio']:.3f}** | ≥ 20,000 rows/s |")
    cm = figures.get("commands")
    if cm:
        for n, (c, r, ratio) in enumerate(zip(cm["http_closed_loop"], cm["raw"], cm["ratios"],
                                              strict=True)):
            lines.append(f"| HTTP commands, `wbl run`, closed loop 16, round {n + 1} | "
                         f"{c['commands_per_s']:,} cmd/s (p99 {c['p99_ms']} ms) | "
                         f"{r['commands_per_s']:,} cmd/s (raw ledger) | **{ratio:.2f}** | "
                         f"≥ 0.3 |")
        o = cm["http_open_loop"]
        lines.append(f"| HTTP commands, open loop at {o['target_per_s']:.0f}/s | "
                     f"{o['achieved_per_s']} cmd/s, p50 {o['p50_ms']} ms, "
                     f"**p99 {o['p99_ms']} ms** | | | p99 ≤ 25 ms |")
    wk = figures.get("workers")
    if wk:
        for n, w in sorted(wk["by_workers"].items(), key=lambda kv: int(kv[0])):
            lines.append(
                f"| `wbl api --workers {n}` on PostgreSQL, closed loop 16 | "
                f"{w['commands_per_s']:,} cmd/s (p50 {w['p50_ms']} ms, p99 {w['p99_ms']} ms; "
                f"{wk['scaling'][n]:.2f} of N = 1) | raw ledger on the same database | "
                f"**{w['ratio_to_raw']:.2f}** | N = 1, 2: scaling |")
    rep = figures.get("report")
    if rep:
        if rep.get("finished", True):
            lines.append(f"| `wbl report state` 2025-26, whole history | {rep['seconds']} s, "
                         f"peak {rep['peak_rss_mb']} MB (with its workers "
                         f"{rep.get('peak_tree_rss_mb', '-')} MB), {rep['figures']:,} figures "
                         f"| | | "
                         f"time and peak memory |")
        elif rep.get("failed"):
            lines.append(f"| `wbl report state` 2025-26, whole history | **failed** after "
                         f"{rep['seconds']} s ({rep['peak_rss_mb']} MB): {rep['failed']} "
                         f"| | | time and peak memory |")
        else:
            lines.append(f"| `wbl report state` 2025-26, whole history | **not finished** "
                         f"in {rep['seconds']} s (stopped; {rep['peak_rss_mb']} MB by then) "
                         f"| | | time and peak memory |")
    rd = figures.get("reads")
    if rd:
        for name, r in rd.items():
            lines.append(f"| GET {name.replace('_', ' ')} ({r['requests']} sequential) | "
                         f"p50 {r['p50_ms']} ms, **p99 {r['p99_ms']} ms** | | | "
                         f"p99 ≤ 50 ms |")
    lines += ["", end]
    return "\n".join(lines)


def write_docs(text: str, section: str = "main") -> None:
    begin, end = markers(section)
    current = DOCS.read_text() if DOCS.exists() else "# Performance\n"
    if begin not in current:
        current += f"\n{begin}\n{end}\n"
    head, _, rest = current.partition(begin)
    _, _, tail = rest.partition(end)
    DOCS.write_text(head + text + tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--rounds", type=int, default=2, help="replay rounds (raw, replay)")
    parser.add_argument("--import-rows", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0, help="per command measure")
    parser.add_argument("--rate", type=float, default=150.0, help="open-loop commands/s")
    parser.add_argument("--reads", type=int, default=300, help="GETs per read route")
    parser.add_argument("--report-timeout", type=float, default=600.0,
                        help="stop wbl report state after this many seconds (its suppression "
                             "audit grows fast with the organisations: docs/performance.md)")
    parser.add_argument("--skip", default="", help="comma-separated: replay, import, "
                                                   "commands, workers, report, reads")
    parser.add_argument("--prefetch", choices=["off", "on", "both"], default="both",
                        help="replays in one process, fetching in a child process, or both "
                             "(decision 063)")
    parser.add_argument("--replay", choices=["folds", "set-based", "set-based-apart"],
                        default="folds",
                        help="rebuild the read models with the live projector's folds, or "
                             "with the set-based rebuild (decision 065), its placement pass "
                             "in a child process with set-based-apart (decision 076)")
    parser.add_argument("--keep", type=Path,
                        help="work in this folder and keep it (the generated store, vault and "
                             "replayed read models: a report can be timed on them again)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--write-docs", action="store_true",
                        help="replace the generated table in docs/performance.md")
    parser.add_argument("--section", default="main",
                        help="which generated table of docs/performance.md to replace")
    args = parser.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    figures: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(),
        "arguments": " ".join(sys.argv[1:]), "load_average_start": os.getloadavg()[0]}
    broker: LocalBroker | None = LocalBroker()
    assert broker is not None
    broker.start()
    topic = f"wbl.bench-state-{uuid.uuid4().hex[:8]}.v1"
    try:
        with tempfile.TemporaryDirectory(prefix="wbl-state-scale-") as tmp:
            folder = Path(tmp) if args.keep is None else args.keep
            folder.mkdir(parents=True, exist_ok=True)
            data_dir = folder / "state"
            data_dir.mkdir()  # a kept folder is used once: a second run would add to its store
            log(f"history: {args.events:,} events")
            history = prepare(data_dir, broker.bootstrap_servers, topic, args.events,
                              args.seed)
            figures["history"] = {k: v for k, v in history.items() if not k.startswith("_")}
            log(f"history ready in {history['generate_store_publish_seconds']} s")

            def keep_so_far() -> None:
                """A long run's figures so far, written after each phase: a run stopped
                later (or a report that outlasts the session) keeps what it measured."""
                if args.json:
                    args.json.write_text(json.dumps(figures, indent=2, default=str))

            keep_so_far()
            if "replay" not in skip:
                figures["replay"] = measure_replay(
                    broker.bootstrap_servers, topic, history["records_on_topic"],
                    history["events"], folder, data_dir, args.rounds, args.prefetch,
                    args.replay)
                keep_so_far()
            broker.stop()
            broker = None
            if "reads" not in skip and "replay" not in skip:
                log("reads")
                figures["reads"] = measure_reads(data_dir, folder, history, args.reads)
                keep_so_far()
            if "report" not in skip:
                figures["report"] = measure_report(data_dir, folder, args.report_timeout)
                keep_so_far()
            if "import" not in skip:
                figures["import"] = measure_import(folder, args.import_rows)
                keep_so_far()
            if "commands" not in skip:
                log("commands")
                figures["commands"] = measure_commands(folder, args.seconds, args.rate)
                keep_so_far()
            if "workers" not in skip:
                log("wbl api --workers 1, 2 on PostgreSQL")
                (folder / "workers").mkdir()
                figures["workers"] = api_workers.measure_workers(
                    folder / "workers", args.seconds, [1, 2], rate=args.rate)
    finally:
        if broker is not None:
            broker.stop()
    figures["load_average_end"] = os.getloadavg()[0]
    text = table(figures, args.section)
    print(text)
    print(json.dumps(figures, indent=2, default=str))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    if args.write_docs:
        write_docs(text, args.section)


if __name__ == "__main__":
    main()
