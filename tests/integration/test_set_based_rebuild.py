"""``wbl projections rebuild|check --set-based`` (decision 065) from the user's side: the
command as typed, against a real broker, on both stores. The oracle is the live projector:
its Python folds write the live tables from the same topic (a generated state-year with
duplicate records, three partitions), and the set-based tables must equal them row for row,
while the live projector keeps applying events that keep arriving."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, inspect, text

from benchmarks.state_year import StateYear
from infra.settings import Settings
from projections.audit_trail import AuditTrailProjection
from projections.tables import consumer_positions, metadata
from services.workers.projector import Projector
from services.workers.rebuild import Rebuild
from tests.integration.test_projections_support import (
    create_topic,
    publish,
    running,
    wait_until_applied,
)
from tests.unit.projections.history import generate

pytestmark = pytest.mark.integration


def _wbl(store_settings: Settings, bootstrap: str, topic: str, *args: str,
         env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WBL_")}
    env.update({"WBL_DATA_DIR": str(store_settings.data_dir), "WBL_LOG_LEVEL": "WARNING",
                "WBL_KAFKA_BOOTSTRAP_SERVERS": bootstrap, "WBL_TOPIC": topic,
                **(env_extra or {})})
    if store_settings.database_url:
        env["WBL_DATABASE_URL"] = store_settings.database_url
    return subprocess.run([sys.executable, "-m", "services.cli", *args], env=env,
                          capture_output=True, text=True, timeout=240, cwd=Path.cwd())


def _leftovers(engine: Engine) -> list[str]:
    """Staging or fresh tables a rebuild left behind, and its bookkeeping rows."""
    names = [n for n in inspect(engine).get_table_names() if "__r" in n]
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT count(*) FROM applied_versions WHERE consumer <> 'live'")).scalar()
    return names + ([f"{rows} applied_versions rows"] if rows else [])


def test_set_based_rebuild_equals_the_python_folds_while_live_keeps_serving(
    engine: Engine, store_settings: Settings, kafka_bootstrap: str, topic_name: str,
) -> None:
    history = list(StateYear(4000, seed=5).envelopes())
    first, rest = history[:3000], history[3000:]
    create_topic(kafka_bootstrap, topic_name)
    publish(kafka_bootstrap, topic_name, first, duplicates=0.05)
    projector = Projector(engine, bootstrap=kafka_bootstrap, topic=topic_name)
    with running(projector):
        wait_until_applied(engine, len(first))
        # events keep arriving while the set-based check stages and computes: the live
        # projector applies them, the check catches up with the Python folds and compares;
        # with room for 7 chain heads, nearly every aggregate's head goes to the temporary
        # table and comes back from it (decision 073); the placement pass runs in a child
        # process of its own (decision 076), the rebuild below in one process
        writer = threading.Thread(target=publish, args=(kafka_bootstrap, topic_name, rest),
                                  kwargs={"duplicates": 0.05, "seed": 3})
        writer.start()
        checked = _wbl(store_settings, kafka_bootstrap, topic_name,
                       "projections", "check", "--set-based", "--quiet",
                       env_extra={"WBL_REBUILD_HEADS_IN_MEMORY": "7",
                                  "WBL_REBUILD_PLACEMENTS_APART": "true"})
        writer.join()
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "rebuilt == live for opportunities, transcripts, apprenticeship_hours, " \
               "audit_trail" in checked.stdout
        assert "set-based:" in checked.stdout
        assert "placements' read models folded in a child process" in checked.stdout
        for table in ("transcript_experience", "transcript_hour_entry",
                      "transcript_credential", "apprenticeship_hours_placement",
                      "apprenticeship_hours_entry", "audit_entry", "audit_chain_head",
                      "opportunity_view"):
            assert f"{table}: live" in checked.stdout and "DIFFERENT" not in checked.stdout
        wait_until_applied(engine, len(history))
        swapped = _wbl(store_settings, kafka_bootstrap, topic_name,
                       "projections", "rebuild", "--set-based", "--quiet",
                       env_extra={"WBL_REBUILD_PLACEMENTS_APART": "false"})
        assert swapped.returncode == 0, swapped.stdout + swapped.stderr
        assert "rebuilt opportunities, transcripts, apprenticeship_hours, audit_trail" \
               in swapped.stdout
        assert "child process" not in swapped.stdout
    # the swapped-in tables against the Python folds replayed afresh, and the trail's chains
    again = _wbl(store_settings, kafka_bootstrap, topic_name, "projections", "check",
                 "--quiet")
    assert again.returncode == 0, again.stdout + again.stderr
    with engine.connect() as conn:
        report = AuditTrailProjection().verify(conn)
    assert report.ok and report.chained == len(history), report
    assert _leftovers(engine) == []


def test_one_projection_alone_set_based(
    engine: Engine, store_settings: Settings, kafka_bootstrap: str, topic_name: str,
) -> None:
    history = list(StateYear(1500, seed=8).envelopes())
    create_topic(kafka_bootstrap, topic_name)
    publish(kafka_bootstrap, topic_name, history, duplicates=0.1)
    with running(Projector(engine, bootstrap=kafka_bootstrap, topic=topic_name)):
        wait_until_applied(engine, len(history))
        # what a rebuild killed between its swap's commit and its drops leaves (decision 070)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE opportunity_view__old__rdeadbeef (id INTEGER)"))
        for name in ("apprenticeship_hours", "transcripts", "audit_trail", "opportunities"):
            done = _wbl(store_settings, kafka_bootstrap, topic_name,
                        "projections", "check", name, "--set-based", "--quiet")
            assert done.returncode == 0, done.stdout + done.stderr
            assert f"rebuilt == live for {name}" in done.stdout
        swapped = _wbl(store_settings, kafka_bootstrap, topic_name,
                       "projections", "rebuild", "opportunities", "--set-based", "--quiet")
        assert swapped.returncode == 0, swapped.stdout + swapped.stderr
    assert _leftovers(engine) == []


def test_a_set_based_rebuild_of_an_empty_topic_swaps_in_empty_tables(
    engine: Engine, store_settings: Settings, kafka_bootstrap: str, topic_name: str,
) -> None:
    """A ledger with no events yet (a new state's first day): the rebuild succeeds, and the
    audit trail's pass, with no chain head to write, leaves nothing behind."""
    create_topic(kafka_bootstrap, topic_name, partitions=1)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(consumer_positions).values(
            consumer="live", topic=topic_name, partition=0, next_offset=0,
            last_event_id=None))
    done = _wbl(store_settings, kafka_bootstrap, topic_name,
                "projections", "rebuild", "--set-based", "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_chain_head")).scalar() == 0
    assert _leftovers(engine) == []


@pytest.mark.parametrize("apart", ["false", "true"], ids=["one-process", "placements-apart"])
def test_a_gap_on_the_topic_refuses_the_set_based_rebuild_and_leaves_nothing(
    engine: Engine, store_settings: Settings, kafka_bootstrap: str, topic_name: str,
    apart: str,
) -> None:
    """One event missing from the topic: the set-based rebuild stops as the projector would
    (it never skips a version), says why, and leaves no staging or fresh table behind; also
    when the placement pass, which finds the gap (an hours approval), runs in a child
    process (decision 076)."""
    history = list(StateYear(1000, seed=9).envelopes())
    missing = next(e for e in history if e.event_type == "HoursApproved")
    create_topic(kafka_bootstrap, topic_name, partitions=1)
    sent = publish(kafka_bootstrap, topic_name, [e for e in history if e is not missing])
    metadata.create_all(engine)
    with engine.begin() as conn:  # a live projector that claims to be at the topic's end
        conn.execute(insert(consumer_positions).values(
            consumer="live", topic=topic_name, partition=0, next_offset=sent,
            last_event_id=None))
    done = _wbl(store_settings, kafka_bootstrap, topic_name,
                "projections", "rebuild", "--set-based", "--quiet",
                env_extra={"WBL_REBUILD_PLACEMENTS_APART": apart})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "missing events" in done.stdout + done.stderr
    assert missing.aggregate_id in done.stdout + done.stderr
    assert _leftovers(engine) == []


@pytest.mark.parametrize("bulk_read", [True, False], ids=["librdkafka", "kafka-python"])
def test_a_position_missing_without_a_version_gap_stops_the_global_chain_as_live(
    engine: Engine, kafka_bootstrap: str, topic_name: str, bulk_read: bool,
) -> None:
    """One event missing from the middle of the topic, the last of its aggregate, so no
    version gap refuses it: the set-based audit trail (staged from three partitions, then
    taken in position order) leaves every global hash after it NULL, as the live
    projection's ``_extend_global_chain`` does, and equals live row for row; staged through
    either client (decision 070)."""
    history = generate(150, seed=11).envelopes
    lasts = {e.aggregate_id: e for e in history}
    middle = history[len(history) // 3:2 * len(history) // 3]
    missing = next(e for e in middle if lasts[e.aggregate_id] is e)
    kept = [e for e in history if e is not missing]
    create_topic(kafka_bootstrap, topic_name)
    publish(kafka_bootstrap, topic_name, kept, duplicates=0.05)
    with running(Projector(engine, bootstrap=kafka_bootstrap, topic=topic_name)):
        wait_until_applied(engine, len(kept))
        result = Rebuild(engine, bootstrap=kafka_bootstrap, topic=topic_name,
                         names=["audit_trail"], set_based=True,
                         bulk_read=bulk_read).run(swap=False)
        assert result.equal, [d.first_difference for d in result.differences]
        assert result.set_based is not None and result.set_based.distinct == len(kept)
    with engine.connect() as conn:
        unchained = conn.execute(text(
            "SELECT min(position), count(*) FROM audit_entry WHERE global_hash IS NULL")).one()
    assert tuple(unchained) == (missing.position + 1, len(history) - missing.position)
    assert _leftovers(engine) == []


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads processes from /proc")
def test_the_placement_pass_child_ends_when_the_rebuild_is_killed(
    engine: Engine, store_settings: Settings, kafka_bootstrap: str, topic_name: str,
) -> None:
    """``kill -9`` of ``wbl projections rebuild --set-based`` while its placement pass runs
    in a child process (decision 076): the child does not outlive it (it would go on
    writing into tables nobody will swap in), and the next rebuild succeeds."""
    history = list(StateYear(30_000, seed=12).envelopes())
    create_topic(kafka_bootstrap, topic_name, partitions=1)
    sent = publish(kafka_bootstrap, topic_name, history)
    metadata.create_all(engine)
    with engine.begin() as conn:  # a live projector that claims to be at the topic's end
        conn.execute(insert(consumer_positions).values(
            consumer="live", topic=topic_name, partition=0, next_offset=sent,
            last_event_id=None))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WBL_")}
    env.update({"WBL_DATA_DIR": str(store_settings.data_dir), "WBL_LOG_LEVEL": "WARNING",
                "WBL_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "WBL_TOPIC": topic_name,
                "WBL_REBUILD_PLACEMENTS_APART": "true"})
    if store_settings.database_url:
        env["WBL_DATABASE_URL"] = store_settings.database_url
    rebuild = subprocess.Popen([sys.executable, "-m", "services.cli", "projections",
                                "rebuild", "--set-based", "--quiet"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        children: list[int] = []
        while not children and rebuild.poll() is None and time.monotonic() < deadline:
            children = [c for c in _children(rebuild.pid)
                        if b"spawn_main" in (Path("/proc") / str(c) / "cmdline").read_bytes()
                        and b"resource_tracker" not in
                        (Path("/proc") / str(c) / "cmdline").read_bytes()]
            time.sleep(0.05)
        assert children, "the placement pass's child process was not seen"
        # The fresh tables held, so that the child cannot finish its work by itself
        # meanwhile: its next write waits (on SQLite for its busy timeout, 10 s).
        with engine.begin() as holder:
            if holder.dialect.name == "postgresql":
                fresh = [n for n in inspect(holder).get_table_names() if "__r" in n]
                holder.execute(text(f"LOCK TABLE {', '.join(fresh)} IN ACCESS EXCLUSIVE MODE"))
            else:
                holder.execute(text("DELETE FROM consumer_positions WHERE consumer = 'none'"))
            rebuild.kill()
            rebuild.wait()
            gone_by = time.monotonic() + 3
            while any(_alive(c) for c in children) and time.monotonic() < gone_by:
                time.sleep(0.05)
            assert not any(_alive(c) for c in children)
    finally:
        if rebuild.poll() is None:
            rebuild.kill()
    again = _wbl(store_settings, kafka_bootstrap, topic_name,
                 "projections", "rebuild", "--set-based", "--quiet",
                 env_extra={"WBL_REBUILD_PLACEMENTS_APART": "true"})
    assert again.returncode == 0, again.stdout + again.stderr
