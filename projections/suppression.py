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
  the audit finds too narrow.

Keys are ``(organisation, measure, dimension, group)``; values are whole numbers in the
figure's unit (learners, things counted, or minutes for hours).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, Literal

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

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
             already_known: Mapping[Key, int] | None = None) -> set[Key]:
    """The figures to hide. ``values`` are the true figures (all at least 1), ``learners``
    how many learners each counts (primary suppression looks at those), ``already_known``
    figures a reader has from elsewhere (the previous report for the period, unchanged
    since): the audit counts them as published even when hidden here."""
    keys = sorted(values)
    extra = dict(already_known or {})
    hidden = {k for k in keys if 0 < learners.get(k, values[k]) < min_cell}
    # A small total hides every figure of that measure for that organisation.
    small_totals = {(k[0], k[1]) for k in hidden if k[2] == "all"}
    hidden |= {k for k in keys if (k[0], k[1]) in small_totals}
    rels = relations(keys, parents, kinds)
    containing: dict[Key, list[Relation]] = defaultdict(list)
    for rel in rels:
        for term in rel.terms:
            containing[term].append(rel)

    def pick(candidates: Iterable[Key]) -> Key | None:
        options = sorted({k for k in candidates if k not in hidden},
                         key=lambda k: (k in extra, k[2] == "all", values[k], k))
        return options[0] if options else None

    def quick_rules() -> None:
        changed = True
        while changed:
            changed = False
            for rel in rels:
                if rel.kind == "le":
                    continue
                shown_parts = [p for p in rel.parts if p not in hidden]
                hidden_terms = [t for t in rel.terms if t in hidden]
                if not hidden_terms:
                    continue
                if len(hidden_terms) == 1:
                    choice = pick(shown_parts) or pick([rel.total])
                elif rel.total not in hidden:
                    room = values[rel.total] - sum(values[p] for p in shown_parts)
                    width = room - len(hidden_terms)
                    need = needed_width(kinds.get(rel.total[1], "count"), min_cell)
                    choice = (pick(shown_parts) or pick([rel.total])) if width < need \
                        else None
                else:
                    choice = None
                if choice is not None:
                    hidden.add(choice)
                    changed = True

    components = _components(keys, rels)
    audited: dict[int, tuple[frozenset[Key], list[Finding]]] = {}

    def narrow_findings() -> list[Finding]:
        """The audit, redone only for the components whose hidden figures changed."""
        found: list[Finding] = []
        for number, (members, rels_here) in enumerate(components):
            targets = frozenset(k for k in members if k in hidden and k not in extra)
            if not targets:
                continue
            if number not in audited or audited[number][0] != targets:
                shown = {k: (values[k], values[k]) for k in members
                         if k not in hidden or k in extra}
                ranges = _ranges(members, rels_here, shown, sorted(targets))
                audited[number] = (targets, [
                    Finding(k, lo, hi, needed_width(kinds.get(k[1], "count"), min_cell))
                    for k, (lo, hi) in sorted(ranges.items())])
            found += [f for f in audited[number][1] if not f.protected]
        return found

    while True:
        quick_rules()
        narrow = narrow_findings()
        if not narrow:
            return hidden
        added = False
        for finding in narrow:
            choice = pick(t for rel in containing[finding.key] for t in rel.terms)
            if choice is not None:
                hidden.add(choice)
                added = True
        if not added:
            raise ValueError("No published figure is left to hide beside "
                             f"{narrow[0].key}; the report cannot protect it.")


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
