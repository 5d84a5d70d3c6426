"""Disk full on the SQLite data directory: the command that no longer fits is refused with
a clear error, nothing is half-written, and once space is freed the ledger carries on.

The data directory is a small tmpfs mounted for the test (root, as on these machines).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from eventsourcing.persistence import PersistenceError

from infra.settings import Settings
from services.bootstrap import build_ledger
from tests.support import placement_story, stored_events

pytestmark = pytest.mark.integration


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_refuses_cleanly_and_loses_nothing(small_disk: Path) -> None:
    settings = Settings(data_dir=small_disk / "data")
    ledger = build_ledger(settings)
    ballast = small_disk / "ballast"
    ballast.write_bytes(os.urandom(1_000_000))  # room we can give back later
    stories, failure = 0, None
    for n in range(2000):
        try:
            placement_story(ledger, learner=f"learner-{n}", days=5)
            stories += 1
        except PersistenceError as error:
            failure = error
            break
    assert failure is not None, "the disk never filled up"
    assert "full" in str(failure).lower()
    assert stories > 0

    # Nothing half-written: with space given back (SQLite needs a little to open a database
    # in WAL mode, even to read it), read the event store's file as the full disk left it,
    # with SQLite alone and read-only, and find every aggregate's history whole.
    ledger.close()
    ballast.unlink()
    import sqlite3

    uri = f"file:{settings.data_dir / 'events.sqlite3'}?mode=ro"
    with sqlite3.connect(uri, uri=True) as raw:
        rows = raw.execute("SELECT originator_id, originator_version FROM stored_events "
                           "ORDER BY originator_id, originator_version").fetchall()
    versions: dict[str, int] = {}
    for originator_id, version in rows:
        assert version == versions.get(originator_id, 0) + 1, "a gap in an aggregate's history"
        versions[originator_id] = version
    assert len(versions) > 0

    # The ledger reopens, every aggregate rebuilds, and it carries on.
    reopened = build_ledger(settings)
    events = stored_events(reopened)
    assert len(events) == len(rows)
    import uuid

    for originator_id, version in versions.items():
        assert reopened.repository.get(uuid.UUID(originator_id)).version == version
    placement_story(reopened, learner="after-the-disk-was-freed", days=2)
    assert len(stored_events(reopened)) > len(events)
    reopened.close()


def test_the_api_answers_507_when_the_disk_is_full(small_disk: Path) -> None:
    from fastapi.testclient import TestClient

    from domain.actor import Role
    from services.api.app import create_app
    from services.api.auth import issue_token
    from services.bootstrap import Runtime
    from tests.integration.test_api_world import api_settings

    settings = api_settings(small_disk)
    runtime = Runtime.build(settings, relay=False, projector=False)
    body = {"organisation_id": "d", "title": "Intern", "employer_name": "Acme",
            "worksite": "W", "wbl_type": "JobShadowing", "starts_on": "2027-01-04",
            "ends_on": "2027-01-04"}
    try:
        with TestClient(create_app(runtime=runtime)) as client:
            token = issue_token(client.app.state.token_key,  # type: ignore[attr-defined]
                                actor_id="c", role=Role.COORDINATOR, organisation_id="d")
            auth = {"Authorization": f"Bearer {token}"}
            filler = small_disk / "filler"
            # fill what is left of the disk; unbuffered, so closing the file has nothing
            # left to flush (a buffered close would raise ENOSPC itself)
            with filler.open("wb", buffering=0) as out:
                try:
                    while True:
                        out.write(os.urandom(65536))
                except OSError:
                    pass
            before = runtime.ledger.recorder.max_notification_id() or 0
            answers = [client.post("/opportunities", headers=auth,
                                   json={**body, "title": f"Intern {n}"}).status_code
                       for n in range(50)]
            full = client.post("/opportunities", headers=auth, json=body)
            assert full.status_code == 507, full.text
            assert full.headers["content-type"].startswith("application/problem+json")
            assert full.json()["type"] == "/errors/storage-full"
            assert 500 not in answers
            assert set(answers) <= {201, 507}
            recorded = runtime.ledger.recorder.select_notifications(
                start=before, limit=100, inclusive_of_start=False)
            assert len(recorded) == answers.count(201)
            for n in recorded:  # what was accepted before the disk filled reads back whole
                assert runtime.ledger.get_opportunity(n.originator_id).version == 1
            filler.unlink()
            assert client.post("/opportunities", headers=auth, json=body).status_code == 201
    finally:
        runtime.stop()
