"""The set-based rebuild's placement pass in a process of its own (decision 076).

The set-based rebuild (``set_rebuild.py``) does its steps one after the other on one core:
stage every record, fold the placements' read models, derive the audit trail, build the
indexes. The placement pass and the audit trail read the same records and write different
tables, so on a machine with a second core they can run side by side. The child cannot read
the parent's staging table (a temporary table of the parent's connection), so it reads the
topic itself, through librdkafka, up to the same offsets, and stages only the records of
placements, opportunities and programs into a temporary table of its own. Then it runs the
same ``load_placement_models`` the one-process rebuild runs, and reports how many events it
read. The parent derives the audit trail meanwhile, then waits for the child.

The child ends with the parent (``PR_SET_PDEATHSIG``), and a failure in either stops both:
the rebuild's fresh tables are dropped by the caller, as for any failed rebuild.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection as Pipe
from typing import Any

from sqlalchemy import MetaData

from infra import bulk_read
from infra.database import engine_for_url
from projections.registry import REGISTRY
from services.workers import set_rebuild
from services.workers.supervisor import PARENT_PID, bind_to_parent


@dataclass(frozen=True)
class PlacementJob:
    """What the child needs: plain values only (it is started with ``spawn``)."""

    database_url: str
    """The read models' engine URL, password included (``engine_for_url``)."""
    bootstrap: str
    topic: str
    targets: dict[int, int]
    """Per partition, the offset to read up to (the parent's staging targets)."""
    suffix: str
    """The fresh tables' suffix, so that the child writes into the rebuild's own tables."""
    names: tuple[str, ...]
    """The projections to fold (those among the rebuild's that the placement pass makes)."""
    deadline_seconds: float
    parent_pid: int


def stage_placement_records(conn: Any, name: str, job: PlacementJob) -> int:
    """The records below ``job.targets`` of placements, opportunities and programs, read
    through librdkafka, appended to ``name`` on ``conn``; returns how many."""
    wanted = set(set_rebuild.PLACEMENT_PASS_AGGREGATES)
    staged = 0
    pending: list[tuple[Any, ...]] = []
    deadline = time.monotonic() + job.deadline_seconds
    for batch in bulk_read.read_ranges(job.bootstrap, job.topic, job.targets,
                                       deadline=deadline):
        pending.extend((*fields, value) for _, _, fields, value in batch
                       if fields[2] in wanted)
        if len(pending) >= set_rebuild.FLUSH_ROWS:
            set_rebuild.append_staged(conn, name, pending)
            staged += len(pending)
            pending.clear()
    set_rebuild.append_staged(conn, name, pending)
    return staged + len(pending)


def run_placement_pass(job: PlacementJob) -> dict[str, float]:
    """Stage and fold, in this process; returns the events read and the seconds taken."""
    engine = engine_for_url(job.database_url)
    projections = [REGISTRY[n].fresh(MetaData(), job.suffix)[0] for n in job.names]
    stage = set_rebuild.stage_table_name(f"{job.suffix}_placements")
    gc.disable()  # as ``set_rebuild.load``: nothing here makes cycles worth collecting
    try:
        with engine.connect() as staging:
            set_rebuild.create_stage(staging, stage)
            try:
                started = time.perf_counter()
                staged = stage_placement_records(staging, stage, job)
                staged_after = time.perf_counter() - started
                read = set_rebuild.load_placement_models(engine, staging, stage, projections)
            finally:
                set_rebuild.drop_stage(staging, stage)
    finally:
        engine.dispose()
    return {"staged": staged, "read": read, "staging": staged_after,
            "seconds": time.perf_counter() - started}


def _child(job: PlacementJob, pipe: Pipe) -> None:
    os.environ[PARENT_PID] = str(job.parent_pid)
    bind_to_parent(threading.Event())
    try:
        pipe.send(("ok", run_placement_pass(job)))
    except set_rebuild.StagedGap as gap:
        pipe.send(("gap", str(gap)))
    except BaseException:  # everything goes back to the parent, which raises it
        pipe.send(("error", traceback.format_exc(limit=20)))
    finally:
        pipe.close()


class PlacementPassFailed(RuntimeError):
    """The child's placement pass failed; its traceback is the message."""


class PlacementsApart:
    """The placement pass running in a child process, from ``start`` to ``result``."""

    def __init__(self, job: PlacementJob) -> None:
        context = multiprocessing.get_context("spawn")  # no copy of the parent's connections
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_child, args=(job, send),
                                        name="wbl-rebuild-placements", daemon=True)
        self._process.start()
        send.close()
        self.started = time.perf_counter()

    def result(self) -> dict[str, float]:
        """Wait for the child: its figures, or ``StagedGap`` / ``PlacementPassFailed``."""
        while not self._receive.poll(0.5):
            if not self._process.is_alive() and not self._receive.poll(0):
                raise PlacementPassFailed(
                    f"the placement pass's process ended (exit code "
                    f"{self._process.exitcode}) without an answer")
        kind, value = self._receive.recv()
        self._process.join()
        if kind == "gap":
            raise set_rebuild.StagedGap(value)
        if kind != "ok":
            raise PlacementPassFailed(f"the placement pass failed:\n{value}")
        figures: dict[str, float] = value
        return figures

    def stop(self) -> None:
        """End the child if it still runs (the parent's own step failed)."""
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._receive.close()
