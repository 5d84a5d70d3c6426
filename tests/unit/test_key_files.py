"""Keys made on first use: processes starting at once agree on one key."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from infra.key_files import kept_key


def test_the_first_key_made_is_the_one_every_process_reads(tmp_path: Path) -> None:
    path = tmp_path / "data" / "some.key"
    results: list[bytes] = []
    start = threading.Barrier(8)

    def make(n: int) -> None:
        start.wait()
        results.append(kept_key(path, f"candidate-{n}".encode()))

    threads = [threading.Thread(target=make, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and results[0].startswith(b"candidate-")
    assert path.read_bytes() == results[0]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["some.key"]  # nothing left aside
    assert kept_key(path, b"another") == results[0]
