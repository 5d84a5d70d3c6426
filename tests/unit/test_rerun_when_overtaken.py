"""A command that another writer overtook is run again, with the same command key, unless
the client named the version it expects (``RerunWhenOvertaken``, decision 061). Over HTTP
with two processes: tests/integration/test_api_workers.py."""

from __future__ import annotations

from typing import Any

import pytest

from domain.errors import ConcurrentChange
from infra.command_log import never_wait_for_writers
from services.api import deps
from services.api.deps import RerunWhenOvertaken
from services.ledger.command_keys import CURRENT, keyed_commands


class Overtaken:
    """Stands in for the ledger: its approval loses ``losses`` races, then succeeds."""

    def __init__(self, losses: int) -> None:
        self.losses = losses
        self.keys: list[str | None] = []

    def approve_hours(self, actor: str, placement_id: str, *, entry_id: str,
                      expected_version: int | None = None) -> str:
        scope = CURRENT.get()
        self.keys.append(scope.next_key() if scope is not None else None)
        if self.losses:
            self.losses -= 1
            raise ConcurrentChange("Another change was recorded at the same time.")
        return "approved"

    def get_placement(self, placement_id: str) -> str:
        return "a placement"


def wrapped(target: Overtaken, patience_s: float = 5.0) -> Any:
    return RerunWhenOvertaken(target, object(), patience_s)  # type: ignore[arg-type]


def test_an_overtaken_command_runs_again_with_the_same_command_key() -> None:
    target = Overtaken(losses=3)
    with keyed_commands("actor", "key", "hash", "1") as scope:
        assert wrapped(target).approve_hours("sup", "p", entry_id="e") == "approved"
        assert scope.issued == 1  # one command, one key, however many runs
    assert len(target.keys) == 4 and len(set(target.keys)) == 1


def test_without_a_key_it_runs_again_too() -> None:
    target = Overtaken(losses=2)
    assert wrapped(target).approve_hours("sup", "p", entry_id="e") == "approved"
    assert target.keys == [None, None, None]


def test_with_if_match_the_refusal_stands() -> None:
    target = Overtaken(losses=1)
    with pytest.raises(ConcurrentChange):
        wrapped(target).approve_hours("sup", "p", entry_id="e", expected_version=7)
    assert len(target.keys) == 1


def test_after_its_patience_the_refusal_stands() -> None:
    target = Overtaken(losses=1000)
    with pytest.raises(ConcurrentChange):
        wrapped(target, patience_s=0.05).approve_hours("sup", "p", entry_id="e")
    assert 1 < len(target.keys) < 1000


def test_queries_pass_through() -> None:
    target = Overtaken(losses=0)
    assert wrapped(target).get_placement.__self__ is target


def test_on_the_event_loop_it_runs_once_and_says_so() -> None:
    """Inside ``never_wait_for_writers`` (a command on the API's event loop, decision 080)
    no pause is taken: the overtaken command is handed back, to run in the thread pool."""
    target = Overtaken(losses=1)
    with never_wait_for_writers(), pytest.raises(deps.Overtaken):
        wrapped(target).approve_hours("sup", "p", entry_id="e")
    assert len(target.keys) == 1
    assert wrapped(target).approve_hours("sup", "p", entry_id="e") == "approved"
