"""The Idempotency-Key of the request being handled, as the ledger's commands see it.

The HTTP layer opens a ``CommandScope`` around a keyed request (``keyed_commands``); every
ledger command the request runs takes the next key of the scope, so a request that runs
several commands (a supervisor's bulk approval) has one key per command, in order. The
ledger stores each key with the command's events, in one transaction
(``infra/command_log.py``), and answers a retried command from what was stored instead of
running it again. Outside a scope (the CLI, imports, tests of the domain) nothing changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class CommandScope:
    base: str
    may_be_recorded: bool = True
    """False for a request's first attempt: its keys are new, so looking them up before
    each command can be skipped (a concurrent duplicate is still caught on save)."""
    issued: int = 0

    def next_key(self) -> str:
        key = hashlib.sha256(f"{self.base}\0{self.issued}".encode()).hexdigest()
        self.issued += 1
        return key


CURRENT: ContextVar[CommandScope | None] = ContextVar("wbl_command_scope", default=None)


@contextmanager
def keyed_commands(*parts: str, may_be_recorded: bool = True) -> Iterator[CommandScope]:
    """Commands run inside take keys derived from ``parts`` (actor, Idempotency-Key, request
    hash, claim): the same parts give the same keys, so a retry meets its first attempt."""
    scope = CommandScope(hashlib.sha256("\0".join(parts).encode()).hexdigest(),
                         may_be_recorded)
    token = CURRENT.set(scope)
    try:
        yield scope
    finally:
        CURRENT.reset(token)
