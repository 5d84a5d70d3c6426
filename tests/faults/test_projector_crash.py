"""The projector, a process of its own, killed with SIGKILL at random moments (between a
read-model write and the next poll, mid-transaction, while idle) again and again while
events keep arriving with duplicates; afterwards every total is exact and the audit trail
verifies: the read models and the positions only ever move together."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from infra.database import read_model_engine
from infra.settings import Settings
from projections.apprenticeship_hours import ApprenticeshipHoursProjection
from projections.audit_trail import AuditTrailProjection
from services.workers.projector import Projector
from tests.faults.processes import role_process
from tests.integration.test_projections_support import (
    audit_entries,
    create_topic,
    publish,
    running,
    wait_until_applied,
)
from tests.unit.projections.history import generate

pytestmark = pytest.mark.integration


def projector_process(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    # Small transactions, so a round's events take several and a kill lands between two of
    # them (at full size one transaction would take the whole round).
    return role_process("projector", settings, log, WBL_PROJECTOR_MAX_BATCH="200")


def test_projector_killed_again_and_again_keeps_totals_exact(
    store_settings: Settings, kafka_bootstrap: str, topic_name: str, iterations: int,
    tmp_path: Path,
) -> None:
    settings = store_settings.model_copy(
        update={"kafka_bootstrap_servers": kafka_bootstrap, "topic": topic_name})
    history = generate(100 * iterations, seed=31)
    events = history.envelopes
    create_topic(kafka_bootstrap, topic_name)
    engine = read_model_engine(settings)
    Projector(engine, bootstrap=kafka_bootstrap, topic=topic_name)  # creates the tables
    rng = random.Random(20261123)
    chunk = -(-len(events) // iterations)
    killed_behind = 0
    for i in range(iterations):
        # this round's events, with copies (relay retries) and a re-sent stretch (refill)
        publish(kafka_bootstrap, topic_name, events[i * chunk:(i + 1) * chunk],
                duplicates=0.05, replay_head=0.1, seed=i)
        before = audit_entries(engine)
        process = projector_process(settings, tmp_path / "projector.log")
        # Strike once it has committed a batch, a moment later: between a read-model write
        # and the next poll, or inside the next transaction (it applies ~10k events/s).
        deadline = time.monotonic() + 60
        while audit_entries(engine) == before:
            assert process.poll() is None, (tmp_path / "projector.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the projector applied nothing in 60 s"
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.1))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        if audit_entries(engine) < min((i + 1) * chunk, len(events)):
            killed_behind += 1

    # A last projector run without faults drains what is left.
    projector = Projector(engine, bootstrap=kafka_bootstrap, topic=topic_name)
    with running(projector):
        wait_until_applied(engine, len(events), timeout=120)
    with engine.connect() as conn:
        progress = ApprenticeshipHoursProjection().progress(
            conn, apprenticeships_only=False, limit=10**6)
        report = AuditTrailProjection().verify(conn)
    engine.dispose()
    assert len(progress) == len(history.expected)
    for p in progress:
        want = history.expected[p.placement_id]
        assert (p.approved_ojl_minutes, p.pending_ojl_minutes, p.rejected_ojl_minutes,
                p.approved_ri_minutes, p.rejected_ri_minutes, p.prior_learning_credit_minutes,
                p.status) == (want.approved_ojl, want.pending_ojl, want.rejected_ojl,
                              want.approved_ri, want.rejected_ri, want.credited, want.status)
    assert report.ok and report.entries == len(events), report
    print(f"\nprojector SIGKILL x{iterations}: {len(events)} events, {killed_behind} kills "
          f"while behind the topic, totals exact, audit chain intact")
    assert killed_behind >= 1, "no kill landed while the projector had work to do"
