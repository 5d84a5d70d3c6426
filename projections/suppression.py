"""Small-cell suppression that survives an attack, and the audit that proves it.

A published report is a system of linear facts: groups add up to their total, schools add
up to their district, districts to their state, apprenticeship completions are some of the
completions. Hiding a small cell is not enough when those facts pin it down: a district
hidden above published schools is their sum (and the state then gives the other district),
and two hidden cells whose sum is published as 2 are each 1, since a listed group has at
least one learner. What protects a hidden cell is the *range* of values it could take
given everything published, so that is what this module computes and requires
(docs/decisions/048-suppression-audited-by-lp.md):

- ``relations`` derives, from the figures' keys, the hierarchy and the measures' kinds
  alone, every linear fact a reader knows; the report file carries all three, so anyone
  can rerun the audit on a file without this software's data;
- ``audit`` solves, for every hidden figure, two integer linear programs (HiGHS, through
  ``scipy.optimize.milp``) over all published figures with non-negativity, whole counts
  and "a listed group has at least one learner", giving the lowest and highest value it
  could take; the range must be at least ``min_cell`` wide (hours: ``min_cell`` hours);
- ``suppress`` hides the small cells (primary), then complementary cells by the quick
  rules (no relation with one hidden term; hidden parts under a published total must
  leave room), then, until the audit passes, one more published figure beside each cell
  the audit finds too narrow. It reaches the audit's verdicts faster, not differently
  (decision 060): one program per group of hidden figures joined by relations, the LP
  relaxation first (warm-started HiGHS), whole solutions checked exactly, the integer
  program only where the relaxation cannot tell, and what a round proved kept for the next.

Keys are ``(organisation, measure, dimension, group)``; values are whole numbers in the
figure's unit (learners, things counted, or minutes for hours).
"""

from __future__ import annotations

import heapq
import logging
import multiprocessing
import pickle
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, Literal

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

try:  # HiGHS as scipy >= 1.15 bundles it: the bindings highspy publishes, under scipy's name
    from scipy.optimize._highspy import _core as _highs
except ImportError:  # pragma: no cover - older scipy: every program through ``milp``
    _highs = None

_ANSWERS: tuple[Any, ...] = () if _highs is None else (
    _highs.HighsModelStatus.kOptimal, _highs.HighsModelStatus.kUnbounded,
    _highs.HighsModelStatus.kUnboundedOrInfeasible)
"""What a warm-started relaxation may answer; anything else is solved again."""

log = logging.getLogger("wbl.suppression")
"""Progress of a long audit, in counts only (a 5 M-event report runs for an hour):
no organisation's or learner's id."""

Key = tuple[str, str, str, str]
Kind = Literal["learners", "count", "hours"]

SUBSETS = {
    "apprenticeship_completions": "placements_completed",
    "apprenticeship_hours": "approved_hours",
    "perkins_5s3_participated_in_wbl": "perkins_5s3_concentrators_graduating",
}
"""Measure -> the measure it is part of, for the same organisation and group: known to any
reader, so part of the audit."""

MULTI_GROUP_DIMENSIONS = frozenset({"wbl_type"})
"""Dimensions where one learner can sit in several groups (a learner with an internship
and a job shadow): for learner counts the groups cover the total but may add up to more."""


@dataclass(frozen=True)
class Relation:
    """``sum``: total = sum of parts; ``cover``: every part <= total <= sum of parts;
    ``le``: the one part <= total."""

    kind: Literal["sum", "cover", "le"]
    total: Key
    parts: tuple[Key, ...]

    @property
    def terms(self) -> tuple[Key, ...]:
        return (self.total, *self.parts)


def relations(keys: Iterable[Key], parents: Mapping[str, str | None],
              kinds: Mapping[str, str]) -> list[Relation]:
    """Every linear fact a reader of the figures knows. A figure absent from the report is
    zero (only groups with at least one learner are listed), so a parent's figure is the
    sum of its listed children's (each organisation's own placements are a child of their
    own, ``<id>/own``, so the sum is exact)."""
    present = sorted(set(keys))
    found: list[Relation] = []
    groups: dict[tuple[str, str, str], list[Key]] = defaultdict(list)
    by_parent: dict[tuple[str, str, str, str], list[Key]] = defaultdict(list)
    for key in present:
        org, measure, dim, _group = key
        if dim != "all":
            groups[(org, measure, dim)].append(key)
        parent = parents.get(org)
        if parent is not None:
            by_parent[(parent, measure, dim, key[3])].append(key)
    present_set = set(present)
    for (org, measure, dim), parts in sorted(groups.items()):
        total = (org, measure, "all", "all")
        if total not in present_set:
            continue
        cover = kinds.get(measure) == "learners" and dim in MULTI_GROUP_DIMENSIONS
        found.append(Relation("cover" if cover else "sum", total, tuple(parts)))
    for total in present:
        children = by_parent.get(total)
        if children:
            found.append(Relation("sum", total, tuple(children)))
    for key in present:
        org, measure, dim, group = key
        whole = SUBSETS.get(measure)
        if whole is not None:
            big = (org, whole, dim, group)
            if big in present_set:
                found.append(Relation("le", big, (key,)))
    return found


def needed_width(kind: str, min_cell: int) -> int:
    """How wide a hidden figure's possible range must be, in its own unit."""
    return min_cell * 60 if kind == "hours" else min_cell


@dataclass(frozen=True)
class Finding:
    key: Key
    lowest: int
    highest: int | None  # None: no upper bound
    needed: int

    @property
    def protected(self) -> bool:
        return self.highest is None or self.highest - self.lowest >= self.needed

    def as_json(self) -> dict[str, Any]:
        org, measure, dim, group = self.key
        return {"organisation_id": org, "measure": measure, "dimension": dim, "group": group,
                "lowest": self.lowest, "highest": self.highest, "needed_width": self.needed,
                "protected": self.protected}


def _components(keys: Iterable[Key], rels: list[Relation]) -> list[tuple[list[Key],
                                                                        list[Relation]]]:
    parent: dict[Key, Key] = {k: k for k in keys}

    def find(k: Key) -> Key:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for rel in rels:
        first = find(rel.total)
        for part in rel.parts:
            other = find(part)
            if other != first:
                parent[other] = first
    members: dict[Key, list[Key]] = defaultdict(list)
    for k in sorted(parent):
        members[find(k)].append(k)
    rels_of: dict[Key, list[Relation]] = defaultdict(list)
    for rel in rels:
        rels_of[find(rel.total)].append(rel)
    return [(members[root], rels_of[root]) for root in sorted(members)]


def _ranges(keys: list[Key], rels: list[Relation], known: Mapping[Key, tuple[int, int]],
            targets: list[Key]) -> dict[Key, tuple[int, int | None]]:
    """Lowest and highest whole value of each target, by HiGHS, given the relations, the
    known figures' ranges, and at least 1 for every other listed figure."""
    index = {k: i for i, k in enumerate(keys)}
    n = len(keys)
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    lower: list[float] = []
    upper: list[float] = []
    row = 0

    def add(coefficients: list[tuple[Key, float]], lo: float, hi: float) -> None:
        nonlocal row
        for k, c in coefficients:
            rows.append(row)
            cols.append(index[k])
            vals.append(c)
        lower.append(lo)
        upper.append(hi)
        row += 1

    for rel in rels:
        if rel.kind == "sum":
            add([(rel.total, 1.0)] + [(p, -1.0) for p in rel.parts], 0.0, 0.0)
        elif rel.kind == "cover":
            add([(rel.total, 1.0)] + [(p, -1.0) for p in rel.parts], -np.inf, 0.0)
            for p in rel.parts:
                add([(p, 1.0), (rel.total, -1.0)], -np.inf, 0.0)
        else:
            add([(rel.parts[0], 1.0), (rel.total, -1.0)], -np.inf, 0.0)
    lb = np.ones(n)
    ub = np.full(n, np.inf)
    for k, (lo, hi) in known.items():
        if k in index:
            lb[index[k]], ub[index[k]] = lo, hi
    constraints = []
    if row:
        matrix = coo_array((vals, (rows, cols)), shape=(row, n)).tocsr()
        constraints.append(LinearConstraint(matrix, lower, upper))
    integrality = np.ones(n)
    bounds = Bounds(lb, ub)
    found: dict[Key, tuple[int, int | None]] = {}
    for target in targets:
        c = np.zeros(n)
        c[index[target]] = 1.0
        low = milp(c, constraints=constraints, integrality=integrality, bounds=bounds)
        if low.status != 0:
            raise ValueError(f"The published figures around {target} are inconsistent "
                             f"(HiGHS: {low.message}).")
        high = milp(-c, constraints=constraints, integrality=integrality, bounds=bounds)
        highest: int | None
        if high.status == 0:
            highest = round(-high.fun)
        elif high.status in (3, 4) or "nbounded" in str(high.message):
            highest = None
        else:
            raise ValueError(f"HiGHS could not bound {target}: {high.message}")
        found[target] = (round(low.fun), highest)
    return found


def _top(org: str, parents: Mapping[str, str | None]) -> str:
    """The organisation's top-level ancestor (a district, under a state); a root is its own."""
    seen = 0
    while (parent := parents.get(org)) is not None and parents.get(parent) is not None:
        org = parent
        seen += 1
        if seen > len(parents):  # a cycle: keep it in one region
            break
    return org


def _regions(parents: Mapping[str, str | None], size: int) -> dict[str, str]:
    """Each organisation's region: its top-level ancestor's (a district's, under a state)
    place among its siblings, ``size`` siblings to a region; a root is its own region."""
    tops: dict[str, str] = {org: _top(org, parents) for org in parents}
    children: dict[str | None, list[str]] = defaultdict(list)
    for org in sorted(set(tops.values())):
        children[parents.get(org)].append(org)
    name: dict[str, str] = {}
    for root, orgs in children.items():
        for place, org in enumerate(orgs):
            name[org] = org if root is None else f"{root}#{place // size}"
    return {org: name[t] for org, t in tops.items()}


def _roots(parents: Mapping[str, str | None]) -> dict[str, str]:
    """Each organisation's root (a state): its top-level ancestor's parent, or itself."""
    roots: dict[str, str] = {}
    for org in parents:
        top = _top(org, parents)
        roots[org] = parents.get(top) or top
    return roots


def _nearest_published(hidden: set[Key], extra: Mapping[Key, int], rels: list[Relation],
                       containing: Mapping[Key, list[Relation]],
                       rank: Callable[[Key], Any]) -> dict[Key, Key]:
    """For every hidden figure (not known from elsewhere) linked to a published one
    through relations of hidden figures, the published figure nearest to it, the least by
    ``rank`` among the nearest: what ``suppress``'s ``further`` finds for one figure, for
    all of them in one breadth-first search outwards from the published figures (decision
    079: at 5 M events, one search per figure took more than ten minutes a round).

    The nearest published figures of a figure at distance ``d`` are those of its
    neighbours at distance ``d - 1`` (a neighbour nearer than that would make the figure
    nearer too), so each relation is looked at once, at the first level that reaches it."""
    through = {k for k in hidden if k not in extra}
    found: dict[Key, Key] = {}
    frontier: dict[Key, Key] = {}
    looked: set[int] = set()
    for rel in rels:
        shown = [t for t in rel.terms if t not in hidden]
        if not shown:
            continue
        looked.add(id(rel))
        choice = min(shown, key=rank)
        for t in rel.terms:
            if t in through and (t not in frontier or rank(choice) < rank(frontier[t])):
                frontier[t] = choice
    while frontier:
        found.update(frontier)
        reached: dict[Key, Key] = {}
        for node in frontier:
            for rel in containing[node]:
                if id(rel) in looked:
                    continue
                looked.add(id(rel))
                choice = min((frontier[t] for t in rel.terms if t in frontier), key=rank)
                for t in rel.terms:
                    if t in through and t not in found and \
                            (t not in reached or rank(choice) < rank(reached[t])):
                        reached[t] = choice
        frontier = reached
    return found


def _free_components(free: list[Key], rels: list[Relation]
                     ) -> list[tuple[list[Key], list[Relation]]]:
    """The hidden figures grouped by the relations that join them. A published figure is a
    constant, not a variable: two hidden figures interact only through a relation holding
    both (or a chain of such), so each group's ranges are those of its own program. The
    relations with no hidden term hold for the true figures and constrain nothing."""
    parent: dict[Key, Key] = {k: k for k in free}

    def find(k: Key) -> Key:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    holding: list[tuple[Key, Relation]] = []
    for rel in rels:
        terms = [t for t in rel.terms if t in parent]
        if not terms:
            continue
        first = find(terms[0])
        for term in terms[1:]:
            other = find(term)
            if other != first:
                parent[other] = first
        holding.append((terms[0], rel))
    members: dict[Key, list[Key]] = defaultdict(list)
    for k in free:
        members[find(k)].append(k)
    rels_of: dict[Key, list[Relation]] = defaultdict(list)
    for term, rel in holding:
        rels_of[find(term)].append(rel)
    return [(members[root], rels_of[root]) for root in sorted(members)]


class _Groups:
    """``_free_components`` kept from round to round of one ``suppress``: figures are only
    ever hidden there, never shown again, so groups only grow and merge, and a round needs
    to look only at the relations of the figures hidden since the last (decision 081; at
    5 M events the whole grouping, every round, was about 30% of each of the last 50
    rounds).
    The groups are those of ``_free_components``, each with its figures in key order and
    its relations in the order of ``rels``; the groups come in the order of their first
    figure."""

    def __init__(self, rels: list[Relation], numbers: Mapping[Key, list[int]]) -> None:
        self._rels = rels
        self._numbers = numbers
        self._parent: dict[Key, Key] = {}
        self._members: dict[Key, list[Key]] = {}  # by root
        self._holding: dict[Key, list[int]] = {}  # by root: relation numbers
        self._held: set[int] = set()
        self._made: dict[Key, tuple[list[Key], list[Relation]]] = {}  # by root, until it grows

    def _find(self, k: Key) -> Key:
        parent = self._parent
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    def _union(self, a: Key, b: Key) -> Key:
        if a == b:
            return a
        if len(self._members[a]) < len(self._members[b]):
            a, b = b, a
        self._parent[b] = a
        self._members[a] += self._members.pop(b)
        self._holding[a] += self._holding.pop(b)
        self._made.pop(a, None)
        self._made.pop(b, None)
        return a

    def grow(self, free: Iterable[Key]) -> None:
        """Add the figures of ``free`` not in a group yet."""
        new = [k for k in free if k not in self._parent]
        for k in new:
            self._parent[k] = k
            self._members[k] = [k]
            self._holding[k] = []
        for k in new:
            for number in self._numbers.get(k, ()):
                terms = [t for t in self._rels[number].terms if t in self._parent]
                root = self._find(terms[0])
                for term in terms[1:]:
                    root = self._union(root, self._find(term))
                if number not in self._held:
                    self._held.add(number)
                    self._holding[root].append(number)
                    self._made.pop(root, None)

    def groups(self) -> list[tuple[list[Key], list[Relation]]]:
        made = []
        for root in self._members:
            group = self._made.get(root)
            if group is None:
                group = self._made[root] = (sorted(self._members[root]), [
                    self._rels[n] for n in sorted(self._holding[root])])
            made.append(group)
        return sorted(made, key=lambda group: group[0][0])


class _Program:
    """The program of one group of hidden figures (``_free_components``): one whole variable
    at least 1 per hidden figure, the published figures as constants. Its matrix is built
    once; between the programs of its figures only the objective changes, and HiGHS starts
    each relaxation from the last one's basis."""

    TOLERANCE = 1e-6
    """Relative slack allowed to HiGHS's floating-point optimum when it is used as a bound:
    a looser bound only sends more figures to the integer program, never a wrong answer."""

    ATTEMPTS = 3
    """Vertices ``attained`` tries before the integer program (at 100,000 events: 129
    integer programs were left with one, 1 with three; 43 ms each against 1 ms)."""

    LARGE = 5000
    ATTEMPTS_LARGE = 1
    """Vertices tried in a program of more than ``LARGE`` figures, where each costs a
    relaxation from far away (about 0.75 s at 15,000 figures, 1 M events; decision 069)."""

    def __init__(self, keys: list[Key], rels: list[Relation], values: Mapping[Key, int],
                 warm: bool = True) -> None:
        self.keys = keys
        self.index = {k: i for i, k in enumerate(keys)}
        entries: list[tuple[int, int, int]] = []  # row, variable, coefficient
        lows: list[int | None] = []
        highs: list[int | None] = []

        def add(terms: list[tuple[Key, int]], lo: int | None, hi: int | None) -> None:
            constant = 0
            row = len(lows)
            for k, c in terms:
                if k in self.index:
                    entries.append((row, self.index[k], c))
                else:
                    constant += c * values[k]
            if entries and entries[-1][0] == row:
                lows.append(None if lo is None else lo - constant)
                highs.append(None if hi is None else hi - constant)

        for rel in rels:
            if rel.kind == "sum":
                add([(rel.total, 1)] + [(p, -1) for p in rel.parts], 0, 0)
            elif rel.kind == "cover":
                add([(rel.total, 1)] + [(p, -1) for p in rel.parts], None, 0)
                for p in rel.parts:
                    add([(p, 1), (rel.total, -1)], None, 0)
            else:
                add([(rel.parts[0], 1), (rel.total, -1)], None, 0)
        n, m = len(keys), len(lows)
        self.matrix = coo_array(
            (np.array([c for _, _, c in entries], dtype=np.int64),
             (np.array([r for r, _, _ in entries], dtype=np.int64),
              np.array([i for _, i, _ in entries], dtype=np.int64))),
            shape=(m, n)).tocsr()
        # Exact checks in int64: the figures are far below 2**62 / (terms in a row).
        self.row_lower = np.array([lo if lo is not None else 0 for lo in lows], dtype=np.int64)
        self.row_upper = np.array([hi if hi is not None else 0 for hi in highs],
                                  dtype=np.int64)
        self.has_lower = np.array([lo is not None for lo in lows], dtype=bool)
        self.has_upper = np.array([hi is not None for hi in highs], dtype=bool)
        self.float_lower = np.where(self.has_lower, self.row_lower.astype(float), -np.inf)
        self.float_upper = np.where(self.has_upper, self.row_upper.astype(float), np.inf)
        self.programs = {"relaxed": 0, "integer": 0}
        self.restarts = 0  # relaxations solved again from no basis (``_relaxed``)
        self.warm = warm and _highs is not None
        self._solver: Any = None
        self._objective: int | None = None
        # Each figure at least 1; an outer program (decision 069) may narrow these to bounds
        # every solution of the group keeps.
        self.col_lower = np.ones(len(keys))
        self.col_upper = np.full(len(keys), np.inf)
        self.lowest: Any = None  # per variable, the lowest value in a whole solution found
        self.highest: Any = None

    TUNABLES = ("TOLERANCE", "ATTEMPTS", "LARGE", "ATTEMPTS_LARGE", "PROPAGATIONS",
                "TOGETHER_SECONDS")
    """The class settings a worker process takes from its parent (``_Proofs.TUNABLES``)."""

    PROPAGATIONS = 50
    """Passes of ``implied_bounds`` at most (it stops earlier when a pass changes nothing)."""

    def implied_bounds(self) -> tuple[Any, Any]:
        """Bounds on every variable that each solution keeps, found as a presolve finds them:
        each relation bounds each of its terms by the bounds of the others, pass after pass
        (whole numbers, so rounded inwards). Exact in floating point: the figures and their
        sums are whole numbers far below 2**53."""
        rows_, cols = self.matrix.nonzero()
        a = np.asarray(self.matrix[rows_, cols], dtype=float).ravel()
        m, n = self.matrix.shape
        lower, upper = np.ones(n), np.full(n, np.inf)
        row_lo = np.where(self.has_lower, self.row_lower.astype(float), -np.inf)
        row_hi = np.where(self.has_upper, self.row_upper.astype(float), np.inf)
        positive = a > 0
        for _ in range(self.PROPAGATIONS):
            least = np.where(positive, a * lower[cols], a * upper[cols])  # may be -inf
            most = np.where(positive, a * upper[cols], a * lower[cols])  # may be +inf
            least_inf, most_inf = np.isinf(least), np.isinf(most)
            least_finite = np.where(least_inf, 0.0, least)
            most_finite = np.where(most_inf, 0.0, most)
            # Each term's "rest of the row": the row's activity without that term.
            rest_least = np.bincount(rows_, least_finite, m)[rows_] - least_finite
            rest_most = np.bincount(rows_, most_finite, m)[rows_] - most_finite
            rest_least[np.bincount(rows_, least_inf, m)[rows_] - least_inf > 0] = -np.inf
            rest_most[np.bincount(rows_, most_inf, m)[rows_] - most_inf > 0] = np.inf
            from_hi = (row_hi[rows_] - rest_least) / a  # a>0: an upper bound; a<0: a lower
            from_lo = (row_lo[rows_] - rest_most) / a  # a>0: a lower bound; a<0: an upper
            new_upper, new_lower = upper.copy(), lower.copy()
            np.minimum.at(new_upper, cols, np.where(positive, from_hi, from_lo))
            np.maximum.at(new_lower, cols, np.where(positive, from_lo, from_hi))
            new_upper, new_lower = np.floor(new_upper), np.ceil(new_lower)
            if np.array_equal(new_upper, upper) and np.array_equal(new_lower, lower):
                break
            lower, upper = new_lower, new_upper
        return lower, upper

    def solution(self, x: Any) -> Any:
        """``x`` rounded to whole numbers, if that is a solution: checked in exact integer
        arithmetic, not within HiGHS's tolerances; else None."""
        point = np.rint(np.asarray(x, dtype=float)).astype(np.int64)
        if len(point) != len(self.keys) or bool((point < 1).any()):
            return None
        sums = self.matrix @ point
        if bool((self.has_lower & (sums < self.row_lower)).any()) or \
                bool((self.has_upper & (sums > self.row_upper)).any()):
            return None
        return point

    def _highs(self) -> Any:
        """HiGHS holding this program's relaxation, built once (presolve off, so that each
        run starts from the basis the previous one left)."""
        if self._solver is None:
            solver = _highs._Highs()
            solver.setOptionValue("output_flag", False)
            solver.setOptionValue("presolve", "off")
            # Primal simplex: a new objective leaves the last basis feasible, so each run
            # goes on from there (dual simplex measured 2x slower here: decision 060).
            solver.setOptionValue("simplex_strategy", 4)
            lp = _highs.HighsLp()
            n, m = len(self.keys), len(self.row_lower)
            lp.num_col_, lp.num_row_ = n, m
            lp.col_cost_ = np.zeros(n)
            lp.col_lower_ = self.col_lower
            lp.col_upper_ = np.where(np.isfinite(self.col_upper), self.col_upper,
                                     _highs.kHighsInf)
            lp.row_lower_ = np.where(self.has_lower, self.float_lower, -_highs.kHighsInf)
            lp.row_upper_ = np.where(self.has_upper, self.float_upper, _highs.kHighsInf)
            columns = self.matrix.tocsc()
            lp.a_matrix_.format_ = _highs.MatrixFormat.kColwise
            lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = n, m
            lp.a_matrix_.start_ = columns.indptr.astype(np.int32)
            lp.a_matrix_.index_ = columns.indices.astype(np.int32)
            lp.a_matrix_.value_ = columns.data.astype(float)
            solver.passModel(lp)
            self._solver = solver
        return self._solver

    def _relaxed(self, i: int, highest: bool) -> tuple[str, float, Any]:
        """('optimal', optimum of x_i, x), or ('unbounded', 0, None)."""
        if self.warm:
            solver = self._highs()
            if self._objective is not None and self._objective != i:
                solver.changeColCost(self._objective, 0.0)
            solver.changeColCost(i, -1.0 if highest else 1.0)
            self._objective = i
            solver.run()
            status = solver.getModelStatus()
            if status not in _ANSWERS:
                # A warm start gone astray: at 5 M events, after thousands of warm-started
                # runs over a group of tens of thousands of figures, HiGHS answered
                # "Infeasible" for a program the true figures solve. Solve it again from no
                # basis; then, if need be, afresh through ``milp`` (which raises if it too
                # cannot tell). The program is the same: only the path to it differs.
                self.restarts += 1
                solver.clearSolver()
                solver.run()
                status = solver.getModelStatus()
                if status not in _ANSWERS:
                    return self._milp(i, highest, whole=False)
            if status in (_highs.HighsModelStatus.kUnbounded,
                          _highs.HighsModelStatus.kUnboundedOrInfeasible):
                return "unbounded", 0.0, None
            value = float(solver.getInfo().objective_function_value)
            return "optimal", -value if highest else value, solver.getSolution().col_value
        return self._milp(i, highest, whole=False)

    def _constraints(self) -> list[LinearConstraint]:
        """The relations as ``milp`` takes them (none when the group has no row)."""
        return [LinearConstraint(self.matrix.astype(float), self.float_lower,
                                 self.float_upper)] if len(self.row_lower) else []

    def _milp(self, i: int, highest: bool, whole: bool) -> tuple[str, float, Any]:
        n = len(self.keys)
        c = np.zeros(n)
        c[i] = -1.0 if highest else 1.0
        constraints = self._constraints()
        # Presolve off for the relaxation: with it, HiGHS (1.12) answered "infeasible" for
        # an unbounded relaxation here, and "optimal" at 727 for an unbounded integer
        # program; the integer program is only asked when the relaxation is bounded.
        found = milp(c, constraints=constraints, bounds=Bounds(self.col_lower, self.col_upper),
                     integrality=np.ones(n) if whole else None,
                     options={"mip_rel_gap": 0.0} if whole else {"presolve": False})
        if found.status != 0:
            if highest and (found.status == 3 or "nbounded" in str(found.message)):
                return "unbounded", 0.0, None
            raise ValueError(f"HiGHS could not bound {self.keys[i]}: {found.message}")
        return "optimal", -float(found.fun) if highest else float(found.fun), found.x

    TOGETHER_SECONDS = 10.0
    """Time allowed to one integer program of ``together``: its best whole solution by then
    is as good a proof as an optimal one."""

    def together(self, targets: list[int], caps: list[int] | None) -> Any:
        """A whole solution with the ``targets`` all as low as they can go together (the
        warm relaxation, ``caps`` None), or all raised towards their ``caps`` together (an
        integer program with the caps as the targets' upper bounds; a relaxation's vertex is
        seldom whole here), or None."""
        n = len(self.keys)
        cost = np.zeros(n)
        if caps is None:
            cost[targets] = 1.0
            solver = self._highs()
            columns = np.arange(n, dtype=np.int32)
            solver.changeColsCost(n, columns, cost)
            self._objective = None
            self.programs["relaxed"] += 1
            solver.run()
            found = solver.getSolution().col_value if solver.getModelStatus() == \
                _highs.HighsModelStatus.kOptimal else None
            solver.changeColsCost(n, columns, np.zeros(n))
            return None if found is None else self.solution(found)
        cost[targets] = -1.0
        upper = np.full(n, np.inf)
        upper[targets] = caps
        constraints = self._constraints()
        self.programs["integer"] += 1
        found = milp(cost, constraints=constraints, bounds=Bounds(np.ones(n), upper),
                     integrality=np.ones(n),
                     options={"time_limit": self.TOGETHER_SECONDS, "mip_rel_gap": 0.05})
        return None if found.x is None else self.solution(found.x)

    def attained(self, target: Key, bound: int) -> Any:
        """A whole solution where the target is ``bound``, if the relaxation with the target
        fixed there finds one at a vertex (else None): when the relaxation's optimum is
        whole but its vertex is not, another vertex of the same face often is, and finding
        it costs a warm-started relaxation instead of an integer program. The costs that
        pick the vertex are pseudo-random but seeded: they decide which solution is found,
        never a verdict (a solution is a solution)."""
        if not self.warm:
            return None
        solver = self._highs()
        i, n = self.index[target], len(self.keys)
        columns = np.arange(n, dtype=np.int32)
        solver.changeColBounds(i, float(bound), float(bound))
        found = None
        attempts = self.ATTEMPTS if n <= self.LARGE else self.ATTEMPTS_LARGE
        for seed in range(n, n + attempts):
            solver.changeColsCost(n, columns, np.random.default_rng(seed).random(n))
            self.programs["relaxed"] += 1
            solver.run()
            if solver.getModelStatus() == _highs.HighsModelStatus.kOptimal:
                found = self.solution(solver.getSolution().col_value)
            if found is not None:
                break
        solver.changeColBounds(i, 1.0, _highs.kHighsInf)
        solver.changeColsCost(n, columns, np.zeros(n))
        self._objective = None
        return found

    def optimum(self, target: Key, highest: bool, whole: bool) -> tuple[int | None, Any]:
        """A bound on the target's lowest (or highest) whole value, None when it has no
        highest, and a whole solution if HiGHS's optimum rounds to one (else None).
        ``whole``: the integer program (the bound is then its optimum); otherwise the LP
        relaxation, whose optimum bounds the integer one (the relaxation allows more). The
        true figures are a solution, so "unbounded" can only mean no highest value."""
        i = self.index[target]
        self.programs["integer" if whole else "relaxed"] += 1
        status, value, x = self._milp(i, highest, True) if whole else \
            self._relaxed(i, highest)
        if status == "unbounded":
            return None, None
        point = self.solution(x)
        if whole:
            return round(value), point
        slack = self.TOLERANCE * max(1.0, abs(value))
        return (int(np.floor(value + slack)) if highest else int(np.ceil(value - slack))), point


class _Proofs:
    """What the rounds of one ``suppress`` have proven about the hidden figures.

    A figure's range is at least ``needed`` wide when two whole-number solutions of its
    program (each checked exactly) give it values that far apart; it is narrower when the
    relaxation's (or the integer program's) bounds are closer than that. Hiding one more
    figure turns a constant into a variable, so every solution found in an earlier round is
    still one and a range proven wide stays wide: a figure proven wide is not looked at
    again, and a figure proven narrow only when its group of hidden figures changed."""

    def __init__(self, values: Mapping[Key, int], warm: bool = True,
                 parents: Mapping[str, str | None] | None = None) -> None:
        self.lowest = dict(values)  # lowest value in a whole solution found (the truth is one)
        self.highest = dict(values)
        self.wide: set[Key] = set()
        self.narrow_in: dict[Key, frozenset[Key]] = {}
        self._groups: dict[frozenset[Key], frozenset[Key]] = {}
        """One object per group of hidden figures, so that ``narrow_in`` is checked by
        identity: two frozensets of equal size compare element by element, and a list of
        a group's open figures, each checked against the whole group, was quadratic (seen
        at 5 M events, groups of tens of thousands of figures). Kept for this round and the
        one before (``new_round``): groups only grow, so a group of this round that equals
        an earlier one equals the last round's. A group not found costs its figures a look
        again, never a wrong verdict."""
        self._last_round: dict[frozenset[Key], frozenset[Key]] = {}
        self.programs = {"relaxed": 0, "integer": 0, "block": 0}
        self.by_block = {"wide": 0, "narrow": 0}  # verdicts the blocks proved (decision 069)
        self.unproven = 0
        self.beyond_exact: set[Key] = set()
        """Figures of groups too large for exact verdicts (``WHOLE_LARGEST``) at their
        latest look: one found narrow with no published figure beside it gets a further
        one at once (decision 079)."""
        self.by_group: set[Key] = set()
        """Figures of groups too large for any program of their own that the blocks could
        not prove wide and that have nothing left to hide beside them (decision 078): the
        group's relaxations look at them after all (``reopen``)."""
        self.warm = warm
        self.roots = {} if parents is None else _roots(parents)
        levels = [] if parents is None else [_regions(parents, size) for size in self.REGIONS]
        self.regions = [region for region in levels
                        if len(set(region.values())) >= self.FEWEST_REGIONS]

    def reopen(self, keys: Iterable[Key]) -> bool:
        """Leave ``keys``, counted narrow without a proof, to their group's program in the
        next round; False when none is new (``by_group``)."""
        fresh = [k for k in keys if k not in self.by_group and k not in self.wide]
        self.by_group.update(fresh)
        for k in fresh:
            self.narrow_in.pop(k, None)
        return bool(fresh)

    def new_round(self) -> None:
        """The groups of the round before are forgotten (see ``_groups``)."""
        self._last_round, self._groups = self._groups, {}

    def _seen(self, program: _Program, point: Any) -> None:
        if point is None:
            return
        keys = program.keys
        # ``program``'s copies may lag behind what another program of the same figures
        # found since (a block's, decision 074): the proofs kept are the extremes of both.
        for i in np.flatnonzero(point < program.lowest):
            program.lowest[i] = self.lowest[keys[i]] = min(self.lowest[keys[i]], int(point[i]))
        for i in np.flatnonzero(point > program.highest):
            program.highest[i] = self.highest[keys[i]] = max(self.highest[keys[i]],
                                                             int(point[i]))

    TOGETHER_ABOVE = 200
    """Groups with more open figures than this are first moved all at once (decision 066):
    below it, a figure's own relaxations are as quick."""

    def _raise_together(self, program: _Program, open_: list[Key],
                        needed: Mapping[Key, int]) -> None:
        """Whole solutions that move many open figures at once, so that each needs no
        program of its own to be proven wide (decision 066). One relaxation puts every open
        figure as low as it can go together; then integer programs raise every figure still
        open towards its lowest value found plus the width it needs (not beyond: a figure
        that got there leaves the room to the others), while each round proves enough to
        pay for itself. Only proofs of width come from here, each a whole solution checked
        exactly; which ones are found does not change a verdict, only how soon it is
        known."""
        self._seen(program, program.together([program.index[k] for k in open_], None))
        if len(program.keys) > self.WHOLE_LARGEST:
            # The integer programs below stop at a time limit: in a group too large for
            # exact verdicts, what they find would decide verdicts, so a report's bytes
            # would depend on the machine's speed (decision 074).
            return
        while True:
            still = [k for k in open_ if not self._proven_wide(k, needed[k])]
            if len(still) <= self.TOGETHER_ABOVE:
                return
            # At least the highest found, so the true figures satisfy the caps: the program
            # always has a solution to start from.
            caps = [max(self.lowest[k] + needed[k], self.highest[k]) for k in still]
            point = program.together([program.index[k] for k in still], caps)
            if point is None:
                return
            self._seen(program, point)
            proven = sum(1 for k in still if self._proven_wide(k, needed[k]))
            # An integer program here takes about as long as 20 of a large group's
            # relaxations (0.5-1.5 s against 20-40 ms at 4,500-10,000 figures).
            if proven < max(20, len(still) // 100):
                return

    WHOLE_LARGEST = 20_000
    """Groups of more hidden figures than this get no program over the whole group
    (decisions 074, 078): at 5 M events one integer program over a group of this kind ran
    for more than 18 minutes (at 1 M, 15,435 figures, about 1 s each), and its relaxations
    took 0.1-0.25 s each for thousands of figures. What the blocks leave open there is
    counted narrow; only a figure reopened by ``suppress`` gets the group's programs."""

    BLOCKS_ABOVE = 300
    """Groups with more open figures than this are first looked at block by block
    (decision 069): below it, the group's own program is as quick."""

    REGIONS = (4, 16, 64)
    """Top-level organisations (districts under a state) per block, level by level: at
    first a few, enough that a hidden figure can trade with another district's and few
    enough that a block's programs stay small whatever the state's size; then more for
    what the smaller blocks left open."""

    FEWEST_REGIONS = 4
    """A level with fewer regions (the root's own counted) is nearly the whole group: it is
    left to the group's program (at 300,000 events, a level of 64 districts of 48 took 77 s
    of random-cost relaxations for what the group's program then proved anyway)."""

    @staticmethod
    def _block(key: Key, region: Mapping[str, str]) -> tuple[str, str]:
        """A figure's block: its region (some districts with all their schools) and its
        measure, or the measure it is part of."""
        org, measure, _dim, _group = key
        while measure in SUBSETS:
            measure = SUBSETS[measure]
        return region.get(org, org), measure

    def _blocks(self, members: list[Key], rels: list[Relation], values: Mapping[Key, int],
                open_: list[Key], needed: Mapping[Key, int], region: Mapping[str, str],
                bounds: Mapping[Key, tuple[float, float]],
                step: Literal["inner", "outer"]) -> set[Key]:
        """Verdicts from one of two small programs per block, each sound on its own
        (decision 069; ``step`` says which, decision 078); returns the figures proven
        narrow, and keeps the wide proofs.

        *Inner*: the block's hidden figures and its root's (the state's, same measures) as
        variables, every other figure fixed at its true value, every relation holding one
        of them. Fixing figures only removes solutions, so each whole solution here is one
        of the group's program: a proof of width, as good as one found over the whole
        group. (Without the state's figures a district's could move only against another
        district's of the same block: at 100,000 events every figure the blocks left open
        was narrow in its block and wide in its group, decision 079.)
        *Outer*: the same variables and the hidden figures sharing a relation with them,
        with those relations only, every variable within the group's implied bounds.
        Dropping the neighbours' other relations only adds solutions, so a relaxation range
        narrower than needed here is narrower in the group's program too: a proof of
        narrowness.
        A figure neither proves is left to the group's program, as before."""
        here = set(members)
        holding: dict[Key, list[Relation]] = defaultdict(list)
        for rel in rels:
            for term in rel.terms:
                if term in here:
                    holding[term].append(rel)
        blocks: dict[tuple[str, str], list[Key]] = defaultdict(list)
        for k in members:
            blocks[self._block(k, region)].append(k)
        to_do = set(open_)
        narrow: set[Key] = set()
        for name in sorted(blocks):
            keys = blocks[name]
            if not any(k in to_do for k in keys):
                continue
            seen_rels: dict[int, Relation] = {}
            for k in keys:
                for rel in holding[k]:
                    seen_rels.setdefault(id(rel), rel)
            touching = list(seen_rels.values())
            self.programs["block"] += 1
            open_here = [k for k in keys if k in to_do and not self._proven_wide(k, needed[k])]
            if step == "outer":
                self._outer(keys, open_here, touching, here, values, needed, bounds, narrow)
                continue
            above = self._above(name, keys, blocks)
            for k in above:
                for rel in holding[k]:
                    seen_rels.setdefault(id(rel), rel)
            variables = keys + above
            inner = _Program(variables, list(seen_rels.values()), values, self.warm)
            inner.lowest = np.array([self.lowest[k] for k in variables], dtype=np.int64)
            inner.highest = np.array([self.highest[k] for k in variables], dtype=np.int64)
            highs: dict[Key, int] = {}
            for target in open_here:
                if self._proven_wide(target, needed[target]):
                    continue
                bound, point = inner.optimum(target, highest=True, whole=False)
                if bound is None:  # no highest even with the rest fixed: wide
                    self.wide.add(target)
                    continue
                highs[target] = bound
                self._seen(inner, point)
            for target, high in highs.items():
                if self._proven_wide(target, needed[target]):
                    continue
                low = 1
                if self.lowest[target] > 1:
                    found, point = inner.optimum(target, highest=False, whole=False)
                    assert found is not None
                    low = found
                    self._seen(inner, point)
                # The relaxation's vertex was not whole: another vertex of the same face
                # often is, for the price of a small relaxation.
                if not self._proven_wide(target, needed[target]) and \
                        high - low >= needed[target]:
                    if self.highest[target] < high:
                        self._seen(inner, inner.attained(target, high))
                    if self.lowest[target] > low:
                        self._seen(inner, inner.attained(target, low))
            for kind, count in inner.programs.items():
                self.programs[kind] += count
        return narrow

    def _too_large(self, members: list[Key]) -> bool:
        """A group too large for programs of its own: only its blocks prove its figures
        wide (decisions 074, 078)."""
        return len(members) > self.WHOLE_LARGEST and bool(self.regions)

    def _above(self, name: tuple[str, str], keys: list[Key],
               blocks: Mapping[tuple[str, str], list[Key]]) -> list[Key]:
        """The hidden figures of the block's root (its state) in the same measures, unless
        the block is the root's own."""
        root = (self.roots.get(keys[0][0], keys[0][0]), name[1])
        return list(blocks.get(root, [])) if root != name else []

    def _outer(self, keys: list[Key], still: list[Key], touching: list[Relation],
               here: set[Key], values: Mapping[Key, int], needed: Mapping[Key, int],
               bounds: Mapping[Key, tuple[float, float]], narrow: set[Key]) -> None:
        """The block's outer program (``_blocks``): adds to ``narrow`` the figures of
        ``still`` it proves narrow."""
        if not still:
            return
        # The hidden figures outside the block that share a relation with it are
        # variables too, held by that relation and the bounds every solution keeps.
        inside = set(keys)
        neighbours = sorted({t for rel in touching for t in rel.terms
                             if t in here and t not in inside})
        outer = _Program(keys + neighbours, touching, values, self.warm)
        outer.col_lower = np.array([bounds[k][0] for k in outer.keys])
        outer.col_upper = np.array([bounds[k][1] for k in outer.keys])
        for target in still:
            outer_high, _ = outer.optimum(target, highest=True, whole=False)
            if outer_high is None:
                continue
            outer_low, _ = outer.optimum(target, highest=False, whole=False)
            assert outer_low is not None
            if outer_high - outer_low < needed[target]:
                narrow.add(target)
        for kind, count in outer.programs.items():
            self.programs[kind] += count

    def _proven_wide(self, k: Key, needed: int) -> bool:
        if self.highest[k] - self.lowest[k] >= needed:
            self.wide.add(k)
            return True
        return False

    APART_ABOVE = 5_000
    """Groups of more hidden figures than this are looked at in worker processes, several
    at once, when ``suppress`` is given more than one worker (decision 078). A group's
    verdicts depend only on its own figures and what was proven about them, so they are
    the same in any process, in any order."""

    TUNABLES = ("WHOLE_LARGEST", "BLOCKS_ABOVE", "REGIONS", "FEWEST_REGIONS",
                "TOGETHER_ABOVE")
    """The class settings a worker takes from its parent (tests change some)."""

    def narrow_groups(self, groups: list[tuple[list[Key], list[Relation]]],
                      values: Mapping[Key, int], kinds: Mapping[str, str], min_cell: int,
                      parents: Mapping[str, str | None], workers: int) -> list[Key]:
        """``narrow`` for every group, in order; the groups above ``APART_ABOVE`` in
        ``workers`` processes while this one looks at the others."""
        for members, _ in groups:
            if self._too_large(members):
                self.beyond_exact.update(members)
            else:
                self.beyond_exact.difference_update(members)
        # A group with nothing left to look at answers at once, here: sending it to a worker
        # cost the parent its task (every figure of a group of tens of thousands) and each
        # round a pool of spawned processes, in the 5 M report's tail of rounds in which a
        # few figures changed (decision 081).
        apart = sorted((i for i, (members, _) in enumerate(groups)
                        if len(members) > self.APART_ABOVE
                        and self._open(members, kinds, min_cell)[2]),
                       key=lambda i: -len(groups[i][0]))
        if workers < 2 or len(apart) < 2:
            return [k for members, rels in groups
                    for k in self.narrow(members, rels, values, kinds, min_cell)]
        settings = ({name: getattr(_Proofs, name) for name in self.TUNABLES},
                    {name: getattr(_Program, name) for name in _Program.TUNABLES})
        # The workers' progress lines as this process writes its own (a spawned process
        # starts with no logging set up).
        logs = (log.getEffectiveLevel(), _portable_formatter())
        found: dict[int, list[Key]] = {}
        with ProcessPoolExecutor(min(workers, len(apart)),
                                 mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_worker_start,
                                 initargs=(dict(parents), self.warm, settings, logs)) as pool:
            futures: dict[int, Future[_Outcome]] = {
                i: pool.submit(_narrow_apart, self._task(*groups[i], values, kinds, min_cell))
                for i in apart}
            for i, (members, rels) in enumerate(groups):
                if i not in futures:
                    found[i] = self.narrow(members, rels, values, kinds, min_cell)
            for i in apart:
                found[i] = self._merge(groups[i][0], futures[i].result())
        return [k for i in range(len(groups)) for k in found[i]]

    def _open(self, members: list[Key], kinds: Mapping[str, str], min_cell: int
              ) -> tuple[frozenset[Key], dict[Key, int], list[Key]]:
        """A group's identity, the width each of its figures needs, and the figures still
        to look at: neither proven wide nor proven narrow in this very group."""
        here = self._here(members)
        needed = {k: needed_width(kinds.get(k[1], "count"), min_cell) for k in members
                  if k not in self.wide and self.narrow_in.get(k) is not here}
        return here, needed, [k for k in members
                              if k in needed and not self._proven_wide(k, needed[k])]

    def _here(self, members: list[Key]) -> frozenset[Key]:
        here = frozenset(members)
        return self._groups.setdefault(here, self._last_round.get(here, here))

    def _task(self, members: list[Key], rels: list[Relation], values: Mapping[Key, int],
              kinds: Mapping[str, str], min_cell: int) -> _Task:
        """What a worker needs to look at one group as this process would."""
        here = self._here(members)
        terms = {t for rel in rels for t in rel.terms} | set(members)
        return _Task(members, rels, {k: values[k] for k in terms}, dict(kinds), min_cell,
                     {k: (self.lowest[k], self.highest[k]) for k in members},
                     [k for k in members if k in self.wide],
                     [k for k in members if self.narrow_in.get(k) is here],
                     [k for k in members if k in self.by_group])

    def _merge(self, members: list[Key], outcome: _Outcome) -> list[Key]:
        """What a worker proved about one group, kept as if proven here."""
        here = self._here(members)
        for k, (low, high) in outcome.extremes.items():
            self.lowest[k], self.highest[k] = low, high
        self.wide.update(outcome.wide)
        for k in members:
            if self.narrow_in.get(k) is here:
                del self.narrow_in[k]
        for k in outcome.narrow_here:
            self.narrow_in[k] = here
        for name, count in outcome.programs.items():
            self.programs[name] += count
        for name, count in outcome.by_block.items():
            self.by_block[name] += count
        self.unproven += outcome.unproven
        return outcome.narrow

    def narrow(self, members: list[Key], rels: list[Relation], values: Mapping[Key, int],
               kinds: Mapping[str, str], min_cell: int) -> list[Key]:
        """The figures of one group whose range is narrower than needed, sorted. First the
        relaxation's highest of every open figure (neighbouring programs start close to each
        other's optimum; a figure with no highest is wide, and a small hidden figure's range
        is mostly above it), then the lowest of those still open (at 100,000 events: 5,355
        relaxations against 7,813 lowest first); the integer programs only for a side the
        relaxation leaves open."""
        here, needed, open_ = self._open(members, kinds, min_cell)
        if not open_:
            return [k for k in members if k not in self.wide]
        program = _Program(members, rels, values, self.warm)
        # A group too large for a program of its own (``WHOLE_LARGEST``) has only its blocks
        # to prove a figure wide, however few figures are open (decision 078).
        huge = self._too_large(members)
        large = len(open_) > self.BLOCKS_ABOVE or huge
        started = time.perf_counter()
        if self.regions and large:
            # Bounds every solution keeps: a figure they hold narrower than needed is
            # narrow without a program, and the blocks' outer programs start from them.
            lower, upper = program.implied_bounds()
            bounds = {k: (lower[i], upper[i]) for i, k in enumerate(members)}
            for k in open_:
                if upper[program.index[k]] - lower[program.index[k]] < needed[k]:
                    self.narrow_in[k] = here
                    self.by_block["narrow"] += 1
            open_ = [k for k in open_ if self.narrow_in.get(k) is not here]
            # Widths at every level first, then narrowness in the smallest blocks only
            # (decision 078): a figure some level proves wide needs no outer program, and
            # at 1 M and 5 M events the outer programs of the larger blocks proved nothing
            # the smallest blocks' had not.
            wide_before = len(self.wide)
            looked = False
            for region in self.regions:
                if not open_ or (len(open_) <= self.BLOCKS_ABOVE and not huge):
                    break
                looked = True
                self._blocks(members, rels, values, open_, needed, region, bounds, "inner")
                # A figure one block's solutions proved wide may be known so only here.
                open_ = [k for k in open_ if not self._proven_wide(k, needed[k])]
            self.by_block["wide"] += len(self.wide) - wide_before
            if looked and open_:
                for k in self._blocks(members, rels, values, open_, needed, self.regions[0],
                                      bounds, "outer"):
                    self.narrow_in[k] = here
                    self.by_block["narrow"] += 1
                open_ = [k for k in open_ if self.narrow_in.get(k) is not here]
            if not open_:
                return [k for k in members if k not in self.wide]
        if large:
            log.info("suppression group", extra={
                "figures": len(members), "open_after_blocks": len(open_),
                "blocks_seconds": round(time.perf_counter() - started, 1)})
        if huge:
            # No program over a group this large (decision 078): at 5 M events its first
            # relaxation took 91 s, each further one 0.1-0.25 s, and a vertex looked for by
            # random costs as long as the first, for thousands of open figures, whose
            # vertices were never whole. What its blocks left open is counted narrow: one
            # more figure hidden, never a leak. (Node-limited integer programs over its
            # blocks, decision 074, proved none of 156 such figures wide at 5 M events, in
            # 0.29 s each.) Only a figure with nothing left to hide beside it (``suppress``)
            # is left to the group's programs.
            for target in [k for k in open_ if k not in self.by_group]:
                self.unproven += 1
                self.narrow_in[target] = here
            open_ = [k for k in open_ if k in self.by_group]
            if not open_:
                return [k for k in members if k not in self.wide]
        program.lowest = np.array([self.lowest[k] for k in members], dtype=np.int64)
        program.highest = np.array([self.highest[k] for k in members], dtype=np.int64)
        if self.warm and len(open_) > self.TOGETHER_ABOVE:
            self._raise_together(program, open_, needed)
        highest: dict[Key, int] = {}
        for target in open_:
            if self._proven_wide(target, needed[target]):
                continue
            bound, point = program.optimum(target, highest=True, whole=False)
            if bound is None:  # no highest: wide, whatever its lowest
                self.wide.add(target)
                continue
            highest[target] = bound
            self._seen(program, point)
        for target, high in highest.items():
            need = needed[target]
            if self._proven_wide(target, need):
                continue
            low = 1  # a whole solution has it at its least (1): exact, no program
            if self.lowest[target] > 1:
                found, point = program.optimum(target, highest=False, whole=False)
                assert found is not None
                low = found
                self._seen(program, point)
            if self._proven_wide(target, need):
                continue
            if high - low >= need:  # only the integer programs can tell
                # Here every group is small enough for them, or the figure was reopened
                # (``by_group``): the last resort before a report fails (decision 078).
                exact_low: int | None = low
                exact_high: int | None = high
                if self.lowest[target] > low:
                    point = program.attained(target, low)
                    if point is None:
                        exact_low, point = program.optimum(target, highest=False, whole=True)
                    self._seen(program, point)
                if self.highest[target] < high:
                    point = program.attained(target, high)
                    if point is None:
                        exact_high, point = program.optimum(target, highest=True, whole=True)
                    self._seen(program, point)
                if exact_high is None or exact_low is None or exact_high - exact_low >= need:
                    self.wide.add(target)
                    continue
            self.narrow_in[target] = here
        for name, count in program.programs.items():
            self.programs[name] += count
        return [k for k in members if k not in self.wide]


@dataclass(frozen=True)
class _Task:
    """One group for a worker process (``_Proofs.narrow_groups``), with what the parent
    has proven about its figures."""

    members: list[Key]
    rels: list[Relation]
    values: dict[Key, int]  # the group's figures and every other term of its relations
    kinds: dict[str, str]
    min_cell: int
    extremes: dict[Key, tuple[int, int]]  # lowest and highest in a whole solution found
    wide: list[Key]
    narrow_here: list[Key]  # proven narrow in this very group
    by_group: list[Key]


@dataclass(frozen=True)
class _Outcome:
    narrow: list[Key]
    extremes: dict[Key, tuple[int, int]]
    wide: list[Key]
    narrow_here: list[Key]
    programs: dict[str, int]
    by_block: dict[str, int]
    unproven: int


_WORKER: dict[str, Any] = {}


def _portable_formatter() -> logging.Formatter | None:
    """The first root handler's formatter, if it can be sent to a worker (the service's
    JSON one can; a test runner's, holding its terminal, cannot)."""
    handlers = logging.getLogger().handlers
    formatter = handlers[0].formatter if handlers else None
    try:
        pickle.dumps(formatter)
    except (TypeError, AttributeError, pickle.PicklingError):
        return None
    return formatter


def _worker_start(parents: dict[str, str | None], warm: bool,
                  settings: tuple[dict[str, Any], dict[str, Any]],
                  logs: tuple[int, logging.Formatter | None]) -> None:
    _WORKER.update(parents=parents, warm=warm)
    level, formatter = logs
    handler = logging.StreamHandler()
    if formatter is not None:
        handler.setFormatter(formatter)
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
    for cls, values in zip((_Proofs, _Program), settings, strict=True):
        for name, value in values.items():
            setattr(cls, name, value)


def _narrow_apart(task: _Task) -> _Outcome:
    """``_Proofs.narrow`` for one group in a worker process."""
    proofs = _Proofs(task.values, _WORKER["warm"], _WORKER["parents"])
    for k, (low, high) in task.extremes.items():
        proofs.lowest[k], proofs.highest[k] = low, high
    proofs.wide = set(task.wide)
    proofs.by_group = set(task.by_group)
    here = proofs._here(task.members)
    for k in task.narrow_here:
        proofs.narrow_in[k] = here
    narrow = proofs.narrow(task.members, task.rels, task.values, task.kinds, task.min_cell)
    return _Outcome(narrow, {k: (proofs.lowest[k], proofs.highest[k]) for k in task.members},
                    [k for k in task.members if k in proofs.wide],
                    [k for k in task.members if proofs.narrow_in.get(k) is here],
                    proofs.programs, proofs.by_block, proofs.unproven)


def audit(keys: Iterable[Key], known: Mapping[Key, tuple[int, int]], hidden: Iterable[Key],
          parents: Mapping[str, str | None], kinds: Mapping[str, str],
          min_cell: int) -> list[Finding]:
    """The possible range of every hidden figure given the published ones (``known``: a
    figure's value, or the range its rounding leaves)."""
    all_keys = sorted(set(keys))
    rels = relations(all_keys, parents, kinds)
    hidden_set = set(hidden)
    findings: list[Finding] = []
    for members, rels_here in _components(all_keys, rels):
        targets = [k for k in members if k in hidden_set]
        if not targets:
            continue
        for key, (lo, hi) in sorted(_ranges(members, rels_here, known, targets).items()):
            findings.append(Finding(key, lo, hi, needed_width(kinds.get(key[1], "count"),
                                                               min_cell)))
    return findings


def suppress(values: Mapping[Key, int], learners: Mapping[Key, int],
             parents: Mapping[str, str | None], kinds: Mapping[str, str], min_cell: int,
             already_known: Mapping[Key, int] | None = None, *, warm: bool = True,
             workers: int = 1) -> set[Key]:
    """The figures to hide. ``values`` are the true figures (all at least 1), ``learners``
    how many learners each counts (primary suppression looks at those), ``already_known``
    figures a reader has from elsewhere (the previous report for the period, unchanged
    since): the audit counts them as published even when hidden here. ``workers``: processes
    that look at the large groups of hidden figures at once (decision 078); the hidden
    figures are the same for any number."""
    keys = sorted(values)
    extra = dict(already_known or {})
    hidden = {k for k in keys if 0 < learners.get(k, values[k]) < min_cell}
    # A small total hides every figure of that measure for that organisation.
    small_totals = {(k[0], k[1]) for k in hidden if k[2] == "all"}
    hidden |= {k for k in keys if (k[0], k[1]) in small_totals}
    rels = relations(keys, parents, kinds)
    containing: dict[Key, list[Relation]] = defaultdict(list)
    numbers: dict[Key, list[int]] = defaultdict(list)  # the same, as indexes into ``rels``
    for number, rel in enumerate(rels):
        for term in rel.terms:
            containing[term].append(rel)
            numbers[term].append(number)

    def rank(k: Key) -> tuple[bool, bool, int, Key]:
        return k in extra, k[2] == "all", values[k], k

    def pick(candidates: Iterable[Key]) -> Key | None:
        options = sorted({k for k in candidates if k not in hidden}, key=rank)
        return options[0] if options else None

    def further(key: Key) -> Key | None:
        """The published figure to hide nearest to ``key`` through the relations of hidden
        figures: those of ``key``'s relations' hidden terms first, then of theirs."""
        seen, frontier = {key}, [key]
        while frontier:
            terms = [t for k in frontier for rel in containing[k] for t in rel.terms]
            choice = pick(terms)
            if choice is not None:
                return choice
            frontier = sorted({t for t in terms if t not in seen and t not in extra})
            seen.update(frontier)
        return None

    def quick_rule(rel: Relation) -> Key | None:
        """The figure ``rel`` needs hidden beside its hidden ones, if any: a function of which
        of its own terms are hidden (the values and ranks are fixed)."""
        if rel.kind == "le":
            return None
        shown_parts = [p for p in rel.parts if p not in hidden]
        hidden_terms = [t for t in rel.terms if t in hidden]
        if not hidden_terms:
            return None
        if len(hidden_terms) == 1:
            return pick(shown_parts) or pick([rel.total])
        if rel.total in hidden:
            return None
        room = values[rel.total] - sum(values[p] for p in shown_parts)
        width = room - len(hidden_terms)
        need = needed_width(kinds.get(rel.total[1], "count"), min_cell)
        return (pick(shown_parts) or pick([rel.total])) if width < need else None

    seen_hidden: set[Key] = set()

    def quick_rules() -> None:
        """Every relation's rule, in passes over ``rels`` in order until a pass hides nothing,
        as a plain loop over all of them would; only the relations with a term hidden since
        they were last looked at are looked at (decision 081). A relation looked at that
        hid nothing hides nothing again until one of its terms is hidden: at 5 M events a
        pass over all the relations was about 30% of each of the last 50 rounds, in which
        a few figures changed."""
        due = sorted({n for k in hidden - seen_hidden for n in numbers[k]})
        seen_hidden.update(hidden)
        while due:
            queued = set(due)
            next_pass: set[int] = set()
            heapq.heapify(due)
            while due:
                number = heapq.heappop(due)
                choice = quick_rule(rels[number])
                if choice is None:
                    continue
                hidden.add(choice)
                seen_hidden.add(choice)
                for other in numbers[choice]:
                    if other <= number:
                        next_pass.add(other)  # a plain pass meets it in the next pass
                    elif other not in queued:
                        queued.add(other)  # and this one later in this pass
                        heapq.heappush(due, other)
            due = sorted(next_pass)

    # Findings come in the order of the measures' components, then by key, as they always
    # have: which complementary cell is picked depends on that order.
    order = {k: number for number, (members, _) in enumerate(_components(keys, rels))
             for k in members}
    proofs = _Proofs(values, warm, parents)
    groups = _Groups(rels, numbers)

    def narrow_findings() -> list[Key]:
        """The hidden figures (not known from elsewhere) whose range is too narrow."""
        groups.grow(k for k in hidden if k not in extra)
        proofs.new_round()
        found = proofs.narrow_groups(groups.groups(), values, kinds, min_cell,
                                     parents, workers)
        return sorted(found, key=lambda k: (order[k], k))

    rounds = 0
    while True:
        started = time.perf_counter()
        quick_rules()
        narrow = narrow_findings()
        rounds += 1
        log.info("suppression round", extra={
            "round": rounds, "figures": len(keys), "hidden": len(hidden),
            "narrow": len(narrow), "unproven": proofs.unproven,
            "programs": dict(proofs.programs),
            "seconds": round(time.perf_counter() - started, 1)})
        if not narrow:
            return hidden
        added = False
        nearest: dict[Key, Key] | None = None
        for key in narrow:
            choice = pick(t for rel in containing[key] for t in rel.terms)
            if choice is None and key in proofs.beyond_exact:
                # Narrow in a group too large for exact verdicts, nothing beside it left to
                # hide: the nearest published figure further out, in this round (decision
                # 079). At 5 M events about 22,000 such figures a round waited while a few
                # hundred others had a neighbour to hide, round after round.
                if nearest is None:
                    nearest = _nearest_published(hidden, extra, rels, containing, rank)
                choice = nearest.get(key)
                if choice in hidden:  # hidden for another figure of this round
                    choice = None
            if choice is not None:
                hidden.add(choice)
                added = True
        if not added:
            # Every figure in the narrow ones' relations is hidden already (seen at 1 M
            # events: a school's girls with credentials, range 1-10 with all around it
            # hidden): hide the nearest published figure through the hidden ones instead.
            for key in narrow:
                choice = further(key)
                if choice is not None:
                    hidden.add(choice)
                    added = True
        if not added and proofs.reopen(narrow):
            continue  # the group's program, in the next round, for those (decision 078)
        if not added:
            raise ValueError("No published figure is left to hide beside "
                             f"{narrow[0]}; the report cannot protect it.")


def published_range(kind: str, value: int | str) -> tuple[int, int]:
    """What a published value says in whole units: hours are shown to 2 decimals, so the
    minutes lie in the rounding interval (one whole minute at most, as 0.01 h < 1 min)."""
    if kind != "hours":
        return int(value), int(value)
    hours = Decimal(str(value))
    half = Decimal("0.005")
    lo = ((hours - half) * 60).to_integral_value(ROUND_CEILING)
    hi = ((hours + half) * 60).to_integral_value(ROUND_FLOOR)
    return int(lo), int(hi)


def audit_report(report: Mapping[str, Any]) -> list[Finding]:
    """The audit of a report as published (JSON), from the file alone."""
    kinds: dict[str, str] = dict(report["measures"])
    parents = {o["id"]: o["parent_id"] for o in report["organisations"]}
    keys: list[Key] = []
    known: dict[Key, tuple[int, int]] = {}
    hidden: list[Key] = []
    for row in report["figures"]:
        key = (row["organisation_id"], row["measure"], row["dimension"], row["group"])
        keys.append(key)
        if row["suppressed"]:
            hidden.append(key)
        else:
            known[key] = published_range(kinds[row["measure"]], row["value"])
    return audit(keys, known, hidden, parents, kinds,
                 int(report["suppression"]["min_cell"]))
