"""Keys the embedded default keeps in its data folder when none is configured.

Production passes every key in the environment (`WBL_JWT_SECRET`, `WBL_PERSONAL_DATA_KEY`,
`WBL_RESEARCH_KEY`). On a laptop, the first process that needs a key makes it and keeps it
in `WBL_DATA_DIR` (mode 0600). Several processes may start at once (`wbl run` and its relay
and projector, `wbl tokens create`): each writes its candidate aside and links it into
place, which succeeds for exactly one of them; every process then reads the one file, so
all agree on one key and none reads a half-written file.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def kept_key(path: Path, make: bytes) -> bytes:
    """The content of ``path``, after writing ``make`` there if the file did not exist."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, make)
        finally:
            os.close(fd)
        try:
            os.link(aside, path)
        except FileExistsError:
            pass  # another process made it first: theirs is the key
        finally:
            aside.unlink()
    return path.read_bytes().strip()
