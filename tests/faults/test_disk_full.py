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
from services.runtime import build_ledger
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

    # Nothing half-written: every stored event reads back and every aggregate rebuilds.
    ledger.close()
    reopened = build_ledger(settings)
    events = stored_events(reopened)
    versions: dict[str, int] = {}
    for aggregate_id, version in sorted(events, key=lambda k: (k[0], k[1])):
        assert version == versions.get(aggregate_id, 0) + 1, "a gap in an aggregate's history"
        versions[aggregate_id] = version
    for aggregate_id, version in versions.items():
        import uuid

        assert reopened.repository.get(uuid.UUID(aggregate_id)).version == version

    # Space comes back: the ledger carries on.
    ballast.unlink()
    placement_story(reopened, learner="after-the-disk-was-freed", days=2)
    assert len(stored_events(reopened)) > len(events)
    reopened.close()
