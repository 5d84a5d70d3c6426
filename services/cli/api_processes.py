"""`wbl api --workers N`: several API processes serving one port (decision 061).

One CPython process runs one thread of Python at a time; on PostgreSQL, whose writers run
concurrently, more API processes serve more commands. The parent (`wbl api`) checks the
settings, sets up the schema and the key files once, binds the port, and lets uvicorn's
process manager start N children (``multiprocessing`` spawn), replace one that dies, and
stop them all on SIGINT or SIGTERM. Each child builds its own runtime from the same
``WBL_*`` settings (``worker_site``), binds itself to the parent so that none outlives it
(invariant 11), and accepts connections on the shared socket; the kernel hands each new
connection to one of them.

What makes several processes safe is in the store, not here: the aggregate cache of each
process fast-forwards to the store's events on every load (decision 035), a command that
another process overtook is run again on the record as it now is (``RerunWhenOvertaken``
in ``services/api/deps.py``), idempotency keys and command keys live in the database
(decisions 032, 036), and the schema and key files are made once under a lock or by an
atomic link (decision 040, ``infra/key_files.py``).

The embedded SQLite store is refused above one process (``refusal``): SQLite takes one
writer at a time, and the queue that spares a process's writers SQLite's sleeping busy
handler (``OneWriterAtATime``) orders the writers of one process only.
"""

from __future__ import annotations

import os
import threading

from fastapi import FastAPI

from infra.settings import Settings
from services.workers.supervisor import PARENT_PID, bind_to_parent


def refusal(settings: Settings, workers: int) -> str | None:
    """Why ``workers`` API processes must not start on these settings, or None."""
    if workers > 1 and not settings.uses_postgres:
        return (
            f"--workers {workers} needs PostgreSQL (WBL_DATABASE_URL). The embedded SQLite "
            "store commits one writer at a time: one API process queues its commands without "
            "waiting, but several processes would wait for each other in SQLite's sleeping "
            "busy handler, slower than one process, and time out under load. Run one process "
            "(--workers 1), or set WBL_DATABASE_URL to a PostgreSQL database.")
    return None


def prepare(settings: Settings) -> None:
    """What every child needs, done once before they start: the tables (they would wait for
    each other's lock otherwise, decision 040) and the embedded default's key files (each
    child would find the same ones anyway: ``infra/key_files.py`` links one candidate)."""
    from services.api.auth import token_key
    from services.api.identities import identity_key
    from services.schema import ensure_schema

    ensure_schema(settings)
    token_key(settings)
    identity_key(settings)


def serve(settings: Settings, workers: int) -> None:
    """Run ``workers`` API processes on the settings' host and port until stopped."""
    import uvicorn

    prepare(settings)
    os.environ[PARENT_PID] = str(os.getpid())  # the children read it (bind_to_parent)
    # The children build their settings from the environment: what this command was told
    # on its command line goes there too.
    os.environ["WBL_DATA_DIR"] = str(settings.data_dir)
    os.environ["WBL_API_PORT"] = str(settings.api_port)
    uvicorn.run("services.cli.api_processes:worker_site", factory=True, workers=workers,
                host=settings.api_host, port=settings.api_port, log_level="warning",
                access_log=False)


def worker_site() -> FastAPI:
    """One child's app: the API and the pages (as `wbl api` serves them), built from the
    environment's settings; the runtime is built in the app's lifespan."""
    from services.bootstrap import build_settings, settle_heap
    from services.web.site import create_site

    bind_to_parent(threading.Event())  # nothing to stop in order: a dead parent kills us
    site = create_site(build_settings())
    settle_heap()
    return site
