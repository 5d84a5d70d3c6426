"""The Idempotency-Key of the request being handled, as the ledger's commands see it.

The HTTP layer opens a ``CommandScope`` around a keyed request (``keyed_commands``); every
ledger command the request runs takes the next key of the scope, so a request that runs
several commands (a supervisor's bulk approval) has one key per command, in order. The
ledger stores each key with the command's events, in one transaction
(``infra/command_log.py``), and answers a retried command from what was stored instead of
running it again. Outside a scope (the CLI, imports, tests of the domain) nothing changes.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from domain.errors import DomainError
from infra.command_log import recorded_command
from services.ledger.results import CommandResult


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


# -- keyed commands ----------------------------------------------------------------------

log = logging.getLogger(__name__)
C = TypeVar("C", bound=Callable[..., CommandResult])


def command(method: C) -> C:
    """A command that a retried HTTP request (same Idempotency-Key) runs at most once.

    Inside a request's ``CommandScope`` the command takes the scope's next key; if the store
    already recorded that key (the first attempt committed, then its process died before
    answering) the stored result is the answer and the command does not run again. Else
    ``_save_all`` stores the key with the events, in their transaction.
    """

    @functools.wraps(method)
    def run(self: Any, *args: Any, **kwargs: Any) -> CommandResult:
        scope = CURRENT.get()
        if scope is None or getattr(self._local, "unit", None) is not None:
            return method(self, *args, **kwargs)
        key = scope.next_key()
        done = recorded_command(self.recorder, key) if scope.may_be_recorded else None
        if done is not None:
            log.info("command already recorded: answered from the command log",
                     extra={"command": method.__name__, "command_key": key[:12]})
            return CommandResult.recorded(done)
        self._local.command_key = key
        try:
            return method(self, *args, **kwargs)
        except DomainError:
            # Refused because the same command, run at the same time by a retry that took
            # over, has just been recorded (the entry now overlaps itself): its answer stands.
            done = recorded_command(self.recorder, key)
            if done is None:
                raise
            return CommandResult.recorded(done)
        finally:
            self._local.command_key = None

    return cast(C, run)
