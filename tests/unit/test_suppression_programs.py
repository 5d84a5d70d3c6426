"""The fast audit inside ``suppress`` (decision 060) gives the verdicts of the plain one.

``suppress`` no longer solves two integer programs over a measure's every figure for each
hidden figure: it solves per group of hidden figures joined by relations, relaxations first
(warm-started), keeps whole-number solutions and verdicts between rounds, and falls back to
the integer program only when the relaxation cannot tell. These tests hold it to an oracle
written here, independently of that code: for each hidden figure, ``scipy.optimize.milp``
over all the figures (published ones fixed), whole numbers, each at least 1, no gap allowed;
protected when the range is at least the width needed. Randomised systems of the three kinds
of relations (sums, covers, parts), in one round and over several rounds; and reports on
generated state-year histories are the bytes the code before decision 060 made.
"""

from __future__ import annotations

import os
import random
from collections import defaultdict
from collections.abc import Mapping
from datetime import date
from itertools import pairwise
from typing import Any

import numpy as np
import pytest
from scipy.optimize import Bounds, LinearConstraint, milp

from benchmarks.state_year import StateYear
from projections.state_report import ReportingPeriod, build_report
from projections.suppression import (
    Key,
    _free_components,
    _Groups,
    _nearest_published,
    _Program,
    _Proofs,
    needed_width,
    relations,
    suppress,
)

KINDS = {"participants": "learners", "placements_completed": "count",
         "apprenticeship_completions": "count", "approved_hours": "hours",
         "apprenticeship_hours": "hours"}
SYSTEMS = int(os.environ.get("WBL_AUDIT_SYSTEMS", "12"))
"""Random systems per test (12 keeps the file near 20 s; set a few hundred for a longer
search)."""


def oracle(values: Mapping[Key, int], hidden: set[Key], parents: Mapping[str, str | None],
           min_cell: int) -> set[Key]:
    """The hidden figures whose whole-number range is narrower than needed: two integer
    programs each, over every figure, as decision 048 states the audit."""
    keys = sorted(values)
    index = {k: i for i, k in enumerate(keys)}
    rows: list[tuple[dict[int, float], float, float]] = []
    for rel in relations(keys, parents, KINDS):
        total, parts = index[rel.total], [index[p] for p in rel.parts]
        if rel.kind == "sum":
            rows.append(({total: 1.0, **{p: -1.0 for p in parts}}, 0.0, 0.0))
        elif rel.kind == "cover":
            rows.append(({total: 1.0, **{p: -1.0 for p in parts}}, -np.inf, 0.0))
            rows += [({p: 1.0, total: -1.0}, -np.inf, 0.0) for p in parts]
        else:
            rows.append(({parts[0]: 1.0, total: -1.0}, -np.inf, 0.0))
    matrix = np.zeros((len(rows), len(keys)))
    for r, (coefficients, _, _) in enumerate(rows):
        for i, coefficient in coefficients.items():
            matrix[r, i] = coefficient
    constraints = [LinearConstraint(matrix, [lo for _, lo, _ in rows],
                                    [hi for _, _, hi in rows])] if rows else []
    lower = np.array([1.0 if k in hidden else values[k] for k in keys])
    upper = np.array([np.inf if k in hidden else values[k] for k in keys])
    narrow = set()
    for key in sorted(hidden):
        objective = np.zeros(len(keys))
        objective[index[key]] = 1.0
        ends = []
        for sign in (1.0, -1.0):
            found = milp(sign * objective, constraints=constraints, bounds=Bounds(lower, upper),
                         integrality=np.ones(len(keys)),
                         # HiGHS's presolve called an unbounded integer program optimal
                         options={"mip_rel_gap": 0.0, "presolve": sign > 0})
            # The true figures are a solution: "unbounded or infeasible" is unbounded.
            unbounded = found.status == 3 or "nbounded" in str(found.message)
            assert found.status == 0 or (sign < 0 and unbounded), found.message
            ends.append(None if unbounded else round(sign * found.fun))
        assert ends[0] is not None
        width = None if ends[1] is None else ends[1] - ends[0]
        if width is not None and width < needed_width(KINDS[key[1]], min_cell):
            narrow.add(key)
    return narrow


def random_system(rng: random.Random) -> tuple[dict[Key, int], dict[str, str | None]]:
    """True figures of a small state from simulated learners, so every relation holds: a
    state, districts, schools (some learners at a district itself: its ``/own`` child),
    learners by sex and by the types they took part in (a cover), completions and hours
    with their apprenticeship parts."""
    parents: dict[str, str | None] = {"s": None}
    leaves = []
    for d in range(rng.randint(1, 3)):
        parents[f"d{d}"] = "s"
        schools = rng.randint(0, 3)
        for n in range(schools):
            parents[f"d{d}s{n}"] = f"d{d}"
            leaves.append(f"d{d}s{n}")
        if schools == 0:
            leaves.append(f"d{d}")
        elif rng.random() < 0.3:
            parents[f"d{d}/own"] = f"d{d}"
            leaves.append(f"d{d}/own")
    values: dict[Key, int] = {}

    def count(org: str, measure: str, dim: str, group: str, amount: int) -> None:
        while org is not None:
            key = (org, measure, dim, group)
            values[key] = values.get(key, 0) + amount
            org = parents[org]  # type: ignore[assignment]

    for _ in range(rng.randint(3, 30)):
        org = rng.choice(leaves)
        sex = rng.choice("FMN")
        types = rng.sample(["internship", "shadow", "apprentice"], rng.randint(1, 2))
        count(org, "participants", "all", "all", 1)
        count(org, "participants", "sex", sex, 1)
        for t in types:
            count(org, "participants", "wbl_type", t, 1)
        if rng.random() < 0.6:
            count(org, "placements_completed", "all", "all", 1)
            count(org, "placements_completed", "sex", sex, 1)
            if "apprentice" in types:
                count(org, "apprenticeship_completions", "all", "all", 1)
                count(org, "apprenticeship_completions", "sex", sex, 1)
        minutes = rng.choice([30, 90, 600, 1800])
        count(org, "approved_hours", "all", "all", minutes)
        count(org, "approved_hours", "sex", sex, minutes)
        if "apprentice" in types:
            part = rng.randint(1, minutes)
            count(org, "apprenticeship_hours", "all", "all", part)
            count(org, "apprenticeship_hours", "sex", sex, part)
    return values, parents


def random_hiding(rng: random.Random
                  ) -> tuple[dict[Key, int], dict[str, str | None], int, set[Key]]:
    """A random system, a ``min_cell`` and a random share of its figures hidden."""
    values, parents = random_system(rng)
    min_cell = rng.randint(2, 6)
    hidden = {k for k in values if rng.random() < rng.choice([0.2, 0.5, 0.8])}
    return values, parents, min_cell, hidden


def every_group_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every group "too large" for a program of its own, blocks of one and two districts,
    the blocks' threshold above every group (decisions 074, 078)."""
    monkeypatch.setattr(_Proofs, "WHOLE_LARGEST", 0)
    monkeypatch.setattr(_Proofs, "BLOCKS_ABOVE", 10_000)
    monkeypatch.setattr(_Proofs, "REGIONS", (1, 2))
    monkeypatch.setattr(_Proofs, "FEWEST_REGIONS", 0)


def withhold_solutions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The programs give their bounds and no solution: on these small systems their
    vertices are whole, at 5 M events they are not (decision 078). Information withheld
    from the code, never added: a proof it then makes is still its own."""
    relaxed = _Program.optimum

    def bound_only(program: _Program, target: Key, highest: bool, whole: bool
                   ) -> tuple[int | None, Any]:
        return relaxed(program, target, highest, whole)[0], None

    monkeypatch.setattr(_Program, "optimum", bound_only)
    monkeypatch.setattr(_Program, "attained", lambda program, target, bound: None)


def narrow_found(proofs: _Proofs, values: Mapping[Key, int], hidden: set[Key],
                 known: set[Key], parents: Mapping[str, str | None], min_cell: int
                 ) -> set[Key]:
    rels = relations(sorted(values), parents, KINDS)
    free = sorted(hidden - known)
    return {k for members, here in _free_components(free, rels)
            for k in proofs.narrow(members, here, values, KINDS, min_cell)}


@pytest.mark.parametrize("warm", [True, False], ids=["warm-started", "milp"])
def test_the_verdicts_are_the_integer_programs_on_random_systems(warm: bool) -> None:
    rng = random.Random(60)
    seen_narrow = seen_wide = 0
    for _ in range(SYSTEMS):
        values, parents, min_cell, hidden = random_hiding(rng)
        expected = oracle(values, hidden, parents, min_cell)
        found = narrow_found(_Proofs(values, warm), values, hidden, set(), parents, min_cell)
        assert found == expected
        seen_narrow += len(expected)
        seen_wide += len(hidden) - len(expected)
    assert seen_narrow > 20 and seen_wide > 20  # both verdicts are exercised


def test_the_verdicts_hold_when_open_figures_are_first_moved_together(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Decision 066: a large group's open figures are first moved all at once (one
    relaxation lowering them together, integer programs raising them together) and only
    what that leaves gets programs of its own. The random systems are small, so the step is
    switched on for every group here: the verdicts are still the oracle's, over rounds too,
    and the step does prove figures wide (else this would test nothing)."""
    monkeypatch.setattr(_Proofs, "TOGETHER_ABOVE", 0)
    rng = random.Random(66)
    moved = proven_together = 0
    for _ in range(SYSTEMS // 2):
        values, parents = random_system(rng)
        min_cell = rng.randint(2, 6)
        order = sorted(values)
        rng.shuffle(order)
        proofs = _Proofs(values)
        for share in (0.4, 0.8):
            hidden = set(order[: int(len(order) * share)])
            before = set(proofs.wide)
            integer_before = proofs.programs["integer"]
            expected = oracle(values, hidden, parents, min_cell)
            assert narrow_found(proofs, values, hidden, set(), parents, min_cell) == expected
            moved += proofs.programs["integer"] - integer_before
            proven_together += len(proofs.wide - before)
    assert moved > 0 and proven_together > 20


def test_the_verdicts_hold_when_blocks_are_looked_at_first(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Decision 069: a large group's figures are first looked at block by block (a region
    of districts and one measure): a whole solution with the rest of the group fixed proves
    a figure wide, a relaxation with the rest's other relations dropped proves it narrow,
    and only what neither proves goes to the group's program. The random systems are
    small, so blocks of one district are switched on for every group: the verdicts are
    still the oracle's over rounds, and blocks do prove figures both wide and narrow (else
    this would test nothing)."""
    monkeypatch.setattr(_Proofs, "BLOCKS_ABOVE", 0)
    monkeypatch.setattr(_Proofs, "REGIONS", (1, 2))
    monkeypatch.setattr(_Proofs, "FEWEST_REGIONS", 0)
    rng = random.Random(69)
    proven = {"wide": 0, "narrow": 0}
    for _ in range(SYSTEMS):
        values, parents = random_system(rng)
        min_cell = rng.randint(2, 6)
        order = sorted(values)
        rng.shuffle(order)
        proofs = _Proofs(values, parents=parents)
        for share in (0.4, 0.8):
            hidden = set(order[: int(len(order) * share)])
            expected = oracle(values, hidden, parents, min_cell)
            assert narrow_found(proofs, values, hidden, set(), parents, min_cell) == expected
        for verdict in proven:
            proven[verdict] += proofs.by_block[verdict]
    assert proven["wide"] > 20 and proven["narrow"] > 5


def test_what_one_round_proved_holds_in_the_next() -> None:
    """Verdicts and whole solutions are kept while more figures are hidden (one ``_Proofs``
    across rounds, as in ``suppress``); each round's verdicts are still the oracle's, also
    with figures known from the previous report (constants though hidden)."""
    rng = random.Random(61)
    for _ in range(SYSTEMS // 2):
        values, parents = random_system(rng)
        min_cell = rng.randint(2, 6)
        order = sorted(values)
        rng.shuffle(order)
        known = set(order[: len(order) // 6])
        proofs = _Proofs(values)
        for share in (0.2, 0.4, 0.6, 0.8):
            hidden = set(order[: int(len(order) * share)])
            expected = oracle(values, hidden - known, parents, min_cell)
            assert narrow_found(proofs, values, hidden, known, parents,
                                min_cell) == expected


def test_suppress_leaves_every_hidden_figure_the_width_the_oracle_requires() -> None:
    rng = random.Random(62)
    for _ in range(SYSTEMS // 2):
        values, parents = random_system(rng)
        learners = {k: v for k, v in values.items() if KINDS[k[1]] == "learners"}
        min_cell = rng.randint(2, 6)
        hidden = suppress(values, learners, parents, KINDS, min_cell)
        assert hidden == suppress(values, learners, parents, KINDS, min_cell, warm=False)
        assert oracle(values, hidden, parents, min_cell) == set()


@pytest.mark.parametrize("seed", [166, 195, 607, 907])
def test_a_narrow_figure_with_every_neighbour_hidden_gets_a_further_one(seed: int) -> None:
    """Seen at 1 M generated events: a narrow figure whose relations hold no published
    figure any more (a school's girls with credentials, 1-10 possible with every figure
    around it hidden). ``suppress`` gave up ("No published figure is left to hide"), so the
    state had no report; it now hides the nearest published figure through the hidden ones.
    These systems are ones where the code before did give up (found by search); every
    hidden figure is now as wide as the oracle requires."""
    rng = random.Random(seed)
    values, parents = random_system(rng)
    learners = {k: v for k, v in values.items() if KINDS[k[1]] == "learners"}
    min_cell = rng.randint(2, 12)
    hidden = suppress(values, learners, parents, KINDS, min_cell)
    assert oracle(values, hidden, parents, min_cell) == set()
    assert hidden != set(values)  # not simply everything hidden


PERIOD = ReportingPeriod("2025-26", date(2025, 7, 1), date(2026, 6, 30))


@pytest.mark.parametrize(("events", "seed", "min_cell", "groups", "content_hash"), [
    (3000, 7, 10, (),
     "sha256:cad928922b9dc91975a6a396c419db81e4fbbd2409b933ae1c408611e1ed16ba"),
    (6000, 11, 5, ("homeless",),
     "sha256:271f90567c0713ac5bcacfddde0639123b90a9c15a44a6c3e9c17e53d12809c7"),
])
def test_a_report_is_the_bytes_it_was_before_the_fast_audit(
        events: int, seed: int, min_cell: int, groups: tuple[str, ...],
        content_hash: str) -> None:
    """Content hashes computed with the plain audit (the code before decision 060, 22 s and
    more per report): the same history and options give the same bytes, so the same cells
    are hidden."""
    year = StateYear(events, seed=seed)
    history = list(year.envelopes())
    report = build_report(PERIOD, history, None, dict(year.profiles()),
                          cutoff_position=len(history),
                          cutoff_recorded_at="2026-07-01T00:00:00+00:00",
                          min_cell=min_cell, other_groups=groups)
    assert report["content_hash"] == content_hash


def test_a_group_too_large_for_programs_has_its_blocks_however_few_figures_are_open(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Decision 078: in a group too large for a program of its own, the blocks are all that
    can prove a figure wide, so they run even when fewer figures are open than
    ``BLOCKS_ABOVE`` (a later round's few). Every group is "too large" here and the blocks
    threshold above every group: the blocks still prove figures wide, and every verdict
    holds against the oracle."""
    every_group_too_large(monkeypatch)
    rng = random.Random(78)
    wide_in_blocks = 0
    for _ in range(SYSTEMS):
        values, parents, min_cell, hidden = random_hiding(rng)
        proofs = _Proofs(values, parents=parents)
        found = narrow_found(proofs, values, hidden, set(), parents, min_cell)
        assert oracle(values, hidden, parents, min_cell) <= found
        wide_in_blocks += proofs.by_block["wide"]
    assert wide_in_blocks > 20, wide_in_blocks


PLAIN_AUDIT_HASH = "sha256:271f90567c0713ac5bcacfddde0639123b90a9c15a44a6c3e9c17e53d12809c7"
"""The 6,000-event report's hash with every group looked at in this process."""


def report_with_two_workers() -> dict[str, Any]:
    """The 6,000-event report, its large groups in two worker processes."""
    year = StateYear(6000, seed=11)
    history = list(year.envelopes())
    return build_report(PERIOD, history, None, dict(year.profiles()),
                        cutoff_position=len(history),
                        cutoff_recorded_at="2026-07-01T00:00:00+00:00",
                        min_cell=5, other_groups=("homeless",), workers=2)


def test_a_report_is_the_same_bytes_with_its_groups_in_worker_processes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Decision 078: ``wbl report state`` looks at the large groups of hidden figures in
    worker processes, several at once. Every group goes to a worker here (two of them,
    started afresh, ``spawn``), and the report is the bytes of the plain audit above."""
    monkeypatch.setattr(_Proofs, "APART_ABOVE", 0)
    merged: list[int] = []
    merge = _Proofs._merge

    def counted(proofs: _Proofs, members: list[Key], outcome: Any) -> list[Key]:
        merged.append(len(members))
        return merge(proofs, members, outcome)

    monkeypatch.setattr(_Proofs, "_merge", counted)
    assert report_with_two_workers()["content_hash"] == PLAIN_AUDIT_HASH
    assert len(merged) > 10, merged


def test_groups_kept_from_round_to_round_are_those_made_afresh() -> None:
    """Decision 081: ``suppress`` keeps its groups of hidden figures between rounds and adds
    the figures hidden since; after every step they are ``_free_components``' groups made
    afresh, each with its figures and its relations in the same order."""
    rng = random.Random(81)
    steps = 0
    for _ in range(SYSTEMS):
        values, parents = random_system(rng)
        keys = sorted(values)
        rels = relations(keys, parents, KINDS)
        numbers: dict[Key, list[int]] = {}
        for number, rel in enumerate(rels):
            for term in rel.terms:
                numbers.setdefault(term, []).append(number)
        kept = _Groups(rels, numbers)
        hidden: set[Key] = set()
        order = keys[:]
        rng.shuffle(order)
        while order:
            hidden.update(order[:rng.randint(1, 4)])
            del order[:4]
            kept.grow(hidden)
            afresh = _free_components(sorted(hidden), rels)
            assert sorted(kept.groups()) == sorted(afresh)
            assert [members[0] for members, _ in kept.groups()] == \
                sorted(members[0] for members, _ in afresh)
            steps += 1
    assert steps > 100


def test_a_group_with_nothing_left_to_look_at_is_answered_without_a_worker(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Decision 081: in a later round most groups have every figure proven wide or narrow
    already; such a group is answered in the parent, not sent to a worker (its task was
    every figure of the group, each round, at 5 M events). Every group that goes to a
    worker has a figure still open, some do go, and the report's bytes are the same."""
    monkeypatch.setattr(_Proofs, "APART_ABOVE", 0)
    sent: list[bool] = []
    task = _Proofs._task

    def checked(proofs: _Proofs, members: list[Key], rels: list[Any],
                values: dict[Key, int], kinds: dict[str, str], min_cell: int) -> Any:
        sent.append(bool(proofs._open(members, kinds, min_cell)[2]))
        return task(proofs, members, rels, values, kinds, min_cell)

    monkeypatch.setattr(_Proofs, "_task", checked)
    assert report_with_two_workers()["content_hash"] == PLAIN_AUDIT_HASH
    assert len(sent) > 10 and all(sent), sent


class _AstraySolver:
    """HiGHS as it answered once at 5 M events: "Infeasible" for a program the true
    figures solve, after many warm-started runs. Answers so ``astray`` times in a row,
    then truthfully; everything else is the real solver's."""

    def __init__(self, solver: object, astray: int) -> None:
        self._solver = solver
        self.astray = astray

    def getModelStatus(self) -> object:  # HiGHS's own name
        from scipy.optimize._highspy import _core

        if self.astray > 0:
            self.astray -= 1
            return _core.HighsModelStatus.kInfeasible
        return self._solver.getModelStatus()  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._solver, name)


@pytest.mark.parametrize("astray", [1, 2], ids=["solved again", "solved afresh"])
def test_a_warm_relaxation_gone_astray_is_solved_again_with_the_same_bounds(
        astray: int) -> None:
    """A warm-started relaxation answering "Infeasible" (the true figures are a solution,
    so it cannot be) is solved again from no basis, then, if that too goes astray, afresh
    through ``milp``: every bound equals the one of a program that never went astray."""
    from projections.suppression import _Program

    rng = random.Random(5)
    checked = 0
    for _ in range(6):
        values, parents = random_system(rng)
        keys = sorted(values)
        hidden = set(rng.sample(keys, len(keys) // 2))
        rels = relations(keys, parents, KINDS)
        for members, rels_here in _free_components(sorted(hidden), rels):
            straight = _Program(members, rels_here, values)
            astray_program = _Program(members, rels_here, values)
            for target in members:
                for highest in (True, False):
                    expected, _ = straight.optimum(target, highest=highest, whole=False)
                    astray_program._solver = _AstraySolver(astray_program._highs(), astray)
                    found, _ = astray_program.optimum(target, highest=highest, whole=False)
                    assert found == expected, (target, highest)
                    checked += 1
            assert astray_program.restarts > 0
    assert checked > 50


def test_a_group_too_large_for_integer_programs_is_never_left_narrow_and_is_repeatable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Decisions 074 and 078: a group of more than ``WHOLE_LARGEST`` hidden figures gets no
    program over the whole group (at 5 M events one integer program ran for more than 18
    minutes, and each of thousands of relaxations took 0.1-0.25 s). A figure its blocks
    leave open is counted narrow without proof; one with nothing left to hide beside it
    goes to the group's programs in the next round instead of failing the report.

    The random systems are small, so every group is "too large" here, with blocks of one
    and two districts; and their relaxations' vertices are whole, which at 5 M they are
    not, so the group's relaxations here give their bounds and no solution (information
    withheld from the code, never added: a proof it then makes is still its own). Every
    figure the oracle finds narrow is still found narrow (none is left unprotected),
    ``suppress`` still leaves every hidden figure wide enough by the oracle, the verdicts
    are the same on a second run (no time limit decides one), and figures are counted
    narrow without proof and reopened (else this would test nothing)."""
    every_group_too_large(monkeypatch)
    withhold_solutions(monkeypatch)
    reopened: list[Key] = []
    reopen = _Proofs.reopen

    def counted(proofs: _Proofs, keys: list[Key]) -> bool:
        fresh = reopen(proofs, keys)
        if fresh:
            reopened.extend(keys)
        return fresh

    monkeypatch.setattr(_Proofs, "reopen", counted)
    rng = random.Random(74)
    unproven = 0
    for _ in range(SYSTEMS):
        values, parents, min_cell, hidden = random_hiding(rng)
        expected = oracle(values, hidden, parents, min_cell)
        proofs = _Proofs(values, parents=parents)
        found = narrow_found(proofs, values, hidden, set(), parents, min_cell)
        assert expected <= found
        assert found == narrow_found(_Proofs(values, parents=parents), values, hidden, set(),
                                     parents, min_cell)
        unproven += proofs.unproven
        learners = {k: v for k, v in values.items() if KINDS[k[1]] == "learners"}
        protected = suppress(values, learners, parents, KINDS, min_cell)
        assert oracle(values, protected, parents, min_cell) == set()
    assert unproven > 5, unproven
    # Decision 078: figures counted narrow without a proof, with nothing left to hide beside
    # them, went to their group's program instead of failing the report.
    assert reopened


@pytest.fixture(scope="module")
def year_30k() -> tuple[StateYear, list[Any]]:
    """A generated state-year of 30,000 events (17 organisations) and its history."""
    year = StateYear(30_000, seed=2026)
    return year, list(year.envelopes())


def state_report(year_history: tuple[StateYear, list[Any]]) -> dict[str, Any]:
    year, history = year_history
    return build_report(PERIOD, history, None, dict(year.profiles()),
                        cutoff_position=len(history),
                        cutoff_recorded_at="2026-07-01T00:00:00+00:00", min_cell=10)


def groups_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every group of more than 50 hidden figures "too large" for a program of its own,
    blocks of one and two districts (decisions 074, 078, 079)."""
    monkeypatch.setattr(_Proofs, "WHOLE_LARGEST", 50)
    monkeypatch.setattr(_Proofs, "REGIONS", (1, 2))
    monkeypatch.setattr(_Proofs, "FEWEST_REGIONS", 0)


def test_a_narrow_figure_of_a_group_too_large_with_nothing_beside_it_gets_a_further_one_at_once(
        monkeypatch: pytest.MonkeyPatch, year_30k: tuple[StateYear, list[Any]]) -> None:
    """Decision 079: at 5 M events about 22,000 figures a round were found narrow (counted
    so without a proof, in groups too large for programs of their own) with every figure in
    their relations hidden already, while a few hundred others had a neighbour left to
    hide; the nearest published figure further out was looked for only in a round where no
    narrow figure had a neighbour, so each round hid a few hundred figures and the report
    did not finish. Now such a figure has, by the next round, one of the published figures
    nearest to it through hidden ones hidden (found here by a breadth-first search of the
    test's own), whatever the other narrow figures had beside them. On this report the
    code before missed 11 of 48 such figures."""
    groups_too_large(monkeypatch)
    rounds: list[tuple[set[Key], list[Key], set[Key]]] = []
    seen_with: dict[str, Any] = {}
    narrow_groups = _Proofs.narrow_groups

    def recorded(proofs: _Proofs, groups: list[tuple[list[Key], list[Any]]],
                 values: Mapping[Key, int], kinds: Mapping[str, str], min_cell: int,
                 parents: Mapping[str, str | None], workers: int) -> list[Key]:
        found = narrow_groups(proofs, groups, values, kinds, min_cell, parents, workers)
        rounds.append(({k for members, _ in groups for k in members}, found,
                       set(proofs.beyond_exact)))
        seen_with.update(values=values, kinds=kinds, parents=parents)
        return found

    monkeypatch.setattr(_Proofs, "narrow_groups", recorded)
    state_report(year_30k)
    beside: dict[Key, set[Key]] = defaultdict(set)
    for rel in relations(sorted(seen_with["values"]), seen_with["parents"],
                         seen_with["kinds"]):
        for term in rel.terms:
            beside[term].update(rel.terms)
    looked = 0
    for (hidden, narrow, beyond_exact), (later, _, _) in pairwise(rounds):
        for key in narrow:
            if key not in beyond_exact or not beside[key] <= hidden:
                continue
            # The published figures nearest to ``key`` through hidden ones.
            seen, frontier, nearest = {key}, {key}, set[Key]()
            while frontier and not nearest:
                reach = {t for k in frontier for t in beside[k]}
                nearest = reach - hidden
                frontier = reach - seen
                seen |= reach
            if nearest:
                looked += 1
                assert nearest & later, key
    assert looked > 10, looked

def test_a_report_whose_groups_are_all_too_large_hides_little_more_than_exact_verdicts(
        monkeypatch: pytest.MonkeyPatch, year_30k: tuple[StateYear, list[Any]]) -> None:
    """Decision 079: a block's programs hold its state's figures (same measures) as
    variables as well as its own. With the state's figures fixed, a district's figure could
    move only against another district's in the same block: at 100,000 events, with every
    group "too large" for a program of its own, every figure the blocks left open was
    narrow in its block and wide in its group, and the report hid all 9,806 figures (exact
    verdicts: 8,332). Here (30,000 events, blocks of one and two districts) the same report
    with exact verdicts and with the blocks alone, in the same run: the blocks alone hide
    at most a tenth more figures (before: every figure)."""
    def hidden() -> int:
        report = state_report(year_30k)
        return sum(1 for row in report["figures"] if row["suppressed"])

    exact = hidden()
    groups_too_large(monkeypatch)
    by_blocks = hidden()
    assert exact < by_blocks <= exact * 1.1, (exact, by_blocks)


def test_the_nearest_published_figures_of_all_are_those_of_each_alone() -> None:
    """Decision 079: one search outwards from the published figures finds, for every hidden
    figure, what a search from that figure alone finds: the least (published last when
    known from elsewhere, totals last, then smallest) of the published figures nearest to
    it through hidden ones not known from elsewhere."""
    rng = random.Random(792)
    checked = 0
    for _ in range(SYSTEMS * 2):
        values, parents, _min_cell, hidden = random_hiding(rng)
        extra = {k: values[k] for k in values if rng.random() < 0.1}
        rels = relations(sorted(values), parents, KINDS)
        containing: dict[Key, list[Any]] = defaultdict(list)
        for rel in rels:
            for term in rel.terms:
                containing[term].append(rel)

        def rank(k: Key) -> tuple[bool, bool, int, Key]:
            return k in extra, k[2] == "all", values[k], k  # noqa: B023

        found = _nearest_published(hidden, extra, rels, containing, rank)
        for key in sorted(k for k in hidden if k not in extra):
            seen, frontier, expected = {key}, {key}, None
            while frontier and expected is None:
                reach = {t for k in frontier for rel in containing[k] for t in rel.terms}
                shown = reach - hidden
                expected = min(shown, key=rank) if shown else None
                frontier = {t for t in reach - seen if t not in extra}
                seen |= reach
            assert found.get(key) == expected, key
            checked += expected is not None
    assert checked > 100, checked
