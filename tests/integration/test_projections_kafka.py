"""Projections on a real broker and both stores: exact totals over thousands of generated
placements delivered with duplicates, rebuild == live while the live projector keeps
going, and the audit trail's tamper check over the stored entries."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, select, text, update

from infra.settings import Settings
from projections.apprenticeship_hours import ApprenticeshipHoursProjection
from projections.audit_trail import LIVE_TABLES as AUDIT
from projections.audit_trail import AuditTrailProjection
from projections.transcript import TranscriptProjection
from services.workers.projector import Projector
from services.workers.rebuild import PROJECTION_KINDS, Rebuild
from tests.integration.test_projections_support import (
    create_topic,
    publish,
    running,
    wait_until_applied,
)
from tests.unit.projections.history import generate

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("prefetch", [False, True], ids=["one-process", "prefetch"])
def test_totals_are_exact_over_thousands_of_placements_with_duplicates(
    engine: Engine, kafka_bootstrap: str, topic_name: str, prefetch: bool,
) -> None:
    """``prefetch``: the projector fetches and decodes in a child process (decision 063)."""
    history = generate(2000, seed=42)
    create_topic(kafka_bootstrap, topic_name)
    sent = publish(kafka_bootstrap, topic_name, history.envelopes, duplicates=0.05,
                   replay_head=0.2)
    assert sent > len(history.envelopes) * 1.2
    projector = Projector(engine, bootstrap=kafka_bootstrap, topic=topic_name,
                          prefetch=prefetch)
    with running(projector):
        wait_until_applied(engine, len(history.envelopes))
        deadline = time.monotonic() + 30
        while projector.status.lag != 0 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert projector.status.applied_total == len(history.envelopes)
    assert projector.status.duplicates_skipped == sent - len(history.envelopes)

    with engine.connect() as conn:
        progress = ApprenticeshipHoursProjection().progress(
            conn, apprenticeships_only=False, limit=10**6)
        experiences = TranscriptProjection().experiences(conn, limit=10**6)
        report = AuditTrailProjection().verify(conn)
    assert len(progress) == len(history.expected) == len(experiences)
    for p in progress:
        want = history.expected[p.placement_id]
        assert (p.approved_ojl_minutes, p.pending_ojl_minutes, p.rejected_ojl_minutes,
                p.approved_ri_minutes, p.pending_ri_minutes, p.rejected_ri_minutes,
                p.prior_learning_credit_minutes, p.status) == (
            want.approved_ojl, want.pending_ojl, want.rejected_ojl, want.approved_ri,
            want.pending_ri, want.rejected_ri, want.credited, want.status)
        assert {w.name: w.approved_minutes for w in p.work_processes
                if w.approved_minutes} == want.by_work_process
        if p.program_id:
            assert p.program_known
    by_learner: dict[str, int] = {}
    for x in experiences:
        by_learner[x.learner_id] = by_learner.get(x.learner_id, 0) + x.approved_minutes
        assert x.employer_name == "Acme Robotics"  # joined from the opportunity's row
        assert len(x.credentials) == history.expected[x.placement_id].credentials
    for learner, totals in history.learner_totals().items():
        want_all = sum(e.approved_ojl + e.approved_ri for e in history.expected.values()
                       if e.learner_id == learner)
        assert by_learner[learner] == want_all, learner
        assert totals["approved_ojl"] <= want_all
    assert report.ok and report.chained == len(history.envelopes), report


def test_a_killed_fetching_process_is_replaced_and_nothing_is_lost_or_doubled(
    engine: Engine, kafka_bootstrap: str, topic_name: str,
) -> None:
    """With ``prefetch``, SIGKILL the child that fetches (twice, mid-replay): the projector
    reconnects from its saved positions with a new child, and the totals are exact."""
    history = generate(1500, seed=11)
    create_topic(kafka_bootstrap, topic_name)
    publish(kafka_bootstrap, topic_name, history.envelopes, duplicates=0.05)
    projector = Projector(engine, bootstrap=kafka_bootstrap, topic=topic_name, prefetch=True,
                          max_batch=500)
    killed: set[int] = set()
    with running(projector):
        deadline = time.monotonic() + 60
        while len(killed) < 2 and time.monotonic() < deadline:
            children = [c for c in multiprocessing.active_children()
                        if c.name.endswith("-fetch") and c.pid not in killed]
            if children and projector.status.applied_total > 2000 * (len(killed) + 1):
                assert children[0].pid is not None
                os.kill(children[0].pid, signal.SIGKILL)
                killed.add(children[0].pid)
            time.sleep(0.05)
        assert len(killed) == 2, "the replay ended before both kills"
        wait_until_applied(engine, len(history.envelopes))
    assert projector.status.applied_total == len(history.envelopes)
    assert "fetching process" in (projector.status.last_error or "")
    with engine.connect() as conn:
        progress = ApprenticeshipHoursProjection().progress(
            conn, apprenticeships_only=False, limit=10**6)
        report = AuditTrailProjection().verify(conn)
    assert {p.placement_id: p.approved_ojl_minutes for p in progress} == {
        k: v.approved_ojl for k, v in history.expected.items()}
    assert report.ok and report.chained == len(history.envelopes), report


def test_rebuild_equals_live_while_live_keeps_serving(
    engine: Engine, store_settings: Settings, kafka_bootstrap: str, topic_name: str,
) -> None:
    history = generate(400, seed=7)
    first, rest = history.envelopes[:6000], history.envelopes[6000:]
    create_topic(kafka_bootstrap, topic_name)
    publish(kafka_bootstrap, topic_name, first, duplicates=0.05)
    projector = Projector(engine, bootstrap=kafka_bootstrap, topic=topic_name)
    with running(projector):
        wait_until_applied(engine, len(first))
        # more events arrive while the rebuild replays: the live projector keeps applying
        writer = threading.Thread(target=publish, args=(kafka_bootstrap, topic_name, rest),
                                  kwargs={"duplicates": 0.05, "seed": 2})
        writer.start()
        checked = Rebuild(engine, bootstrap=kafka_bootstrap, topic=topic_name).run(swap=False)
        assert checked.equal, checked.differences
        every_table = {t.name for kind in PROJECTION_KINDS.values() for t in kind.live_tables()}
        assert {d.table for d in checked.differences} == every_table
        assert checked.events_applied > 0
        swapped = Rebuild(engine, bootstrap=kafka_bootstrap, topic=topic_name).run(swap=True)
        assert swapped.swapped
        writer.join()
        wait_until_applied(engine, len(history.envelopes))
    after = Rebuild(engine, bootstrap=kafka_bootstrap, topic=topic_name).run(swap=False)
    assert after.equal, after.differences
    assert sum(after.positions.values()) >= len(history.envelopes)
    with engine.connect() as conn:
        assert AuditTrailProjection().verify(conn).ok
        leftovers = conn.execute(text(
            "SELECT count(*) FROM applied_versions WHERE consumer <> 'live'")).scalar()
    assert leftovers == 0
    # the command line does the same, with a progress bar (quiet here)
    env = _env(store_settings)
    env.update({"WBL_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "WBL_TOPIC": topic_name})
    for command in ("rebuild", "check"):
        done = subprocess.run([sys.executable, "-m", "services.cli", "projections", command,
                               "transcripts", "audit_trail", "--quiet"], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
    assert "rebuilt == live for transcripts, audit_trail" in done.stdout


def _env(store_settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WBL_")}
    env["WBL_DATA_DIR"] = str(store_settings.data_dir)
    env["WBL_LOG_LEVEL"] = "WARNING"
    if store_settings.database_url:
        env["WBL_DATABASE_URL"] = store_settings.database_url
    return env


def _verify(engine: Engine) -> tuple[int | None, str | None]:
    with engine.connect() as conn:
        report = AuditTrailProjection().verify(conn)
    return (report.problem.position, report.problem.kind) if report.problem else (None, None)


def test_verify_finds_altered_dropped_and_swapped_stored_entries(
    engine: Engine, store_settings: Settings, kafka_bootstrap: str, topic_name: str,
) -> None:
    history = generate(60, seed=9)
    create_topic(kafka_bootstrap, topic_name)
    publish(kafka_bootstrap, topic_name, history.envelopes)
    with running(Projector(engine, bootstrap=kafka_bootstrap, topic=topic_name)):
        wait_until_applied(engine, len(history.envelopes))
    assert _verify(engine) == (None, None)
    e = AUDIT.entry
    columns = [c.name for c in e.columns if c.name != "position"]
    for i, column in enumerate(columns):  # one byte (or one unit) of one entry, every column
        with engine.begin() as conn:
            rows = conn.execute(select(e).where(e.c[column].is_not(None))
                                .order_by(e.c.position)).mappings().all()
            row = rows[i * 37 % len(rows)]
            position, original = row["position"], row[column]
            if isinstance(original, int):
                changed: object = original + 1000  # stays unique
            else:
                k = len(original) // 2
                changed = original[:k] + chr(ord(original[k]) ^ 1) + original[k + 1:]
            conn.execute(update(e).where(e.c.position == position).values({column: changed}))
        assert _verify(engine) == (position, "altered"), column
        with engine.begin() as conn:
            conn.execute(update(e).where(e.c.position == position).values({column: original}))
    assert _verify(engine) == (None, None)
    # drop one entry
    with engine.begin() as conn:
        dropped = dict(conn.execute(select(e).where(e.c.position == 17)).mappings().one())
        conn.execute(delete(e).where(e.c.position == 17))
    assert _verify(engine) == (17, "dropped")
    with engine.begin() as conn:
        conn.execute(e.insert().values(**dropped))
    # swap two entries' contents (positions stay the keys)
    with engine.begin() as conn:
        a = dict(conn.execute(select(e).where(e.c.position == 20)).mappings().one())
        b = dict(conn.execute(select(e).where(e.c.position == 31)).mappings().one())
        conn.execute(delete(e).where(e.c.position.in_([20, 31])))
        conn.execute(e.insert().values(**{**b, "position": 20}))
        conn.execute(e.insert().values(**{**a, "position": 31}))
    assert _verify(engine) == (20, "reordered")
    # the CLI says the same, with exit code 1
    done = subprocess.run([sys.executable, "-m", "services.cli", "audit", "verify"],
                          env=_env(store_settings),
                          capture_output=True, text=True, timeout=60, cwd=Path.cwd())
    assert done.returncode == 1, done.stderr
    assert "position 20 was reordered" in done.stdout
