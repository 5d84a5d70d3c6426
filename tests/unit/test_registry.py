"""Every projection decides about every event type, and no fold names a type that does not
exist: the event contract (domain/contract/catalogue.py) and the folds cannot drift apart."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from domain.contract.catalogue import all_event_types
from projections import audit_trail
from projections.registry import REGISTRY, default_projections

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = frozenset(t.name for t in all_event_types())
FOLDS = [*(p for p in sorted((ROOT / "projections").glob("*.py"))
           if p.name != "suppression.py"),  # folds no events: its ``kind`` is a figure's
         ROOT / "services" / "jobs" / "research.py", ROOT / "services" / "jobs" / "reporting.py"]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_each_projection_handles_or_explicitly_ignores_every_event_type(name: str) -> None:
    kind = REGISTRY[name]
    assert not kind.handles & kind.ignores, f"{name}: both handled and ignored"
    assert kind.handles | kind.ignores == CATALOGUE, (
        f"{name}: undecided {sorted(CATALOGUE - kind.handles - kind.ignores)}, "
        f"unknown {sorted((kind.handles | kind.ignores) - CATALOGUE)}")


def test_the_audit_trail_has_a_sentence_for_every_event_type() -> None:
    assert frozenset(audit_trail.SUMMARIES) == CATALOGUE


def test_the_registry_is_the_one_list_of_live_projections() -> None:
    assert [p.name for p in default_projections()] == list(REGISTRY)


def _event_names_compared(tree: ast.AST) -> set[str]:
    """String constants a fold compares an event's type with (``event.event_type == "X"``,
    ``kind in ("X", "Y")``, ``t == "X"``)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        left = node.left
        is_type = (isinstance(left, ast.Attribute) and left.attr == "event_type") or (
            isinstance(left, ast.Name) and left.id in {"t", "kind", "event_type"})
        if not is_type:
            continue
        for comparator in node.comparators:
            values = comparator.elts if isinstance(
                comparator, ast.Tuple | ast.List | ast.Set) else [comparator]
            found |= {v.value for v in values
                      if isinstance(v, ast.Constant) and isinstance(v.value, str)}
    return found


@pytest.mark.parametrize("path", FOLDS, ids=lambda p: p.name)
def test_no_fold_names_an_event_type_the_catalogue_does_not_have(path: Path) -> None:
    names = _event_names_compared(ast.parse(path.read_text(), filename=str(path)))
    assert names <= CATALOGUE, f"{path.name}: {sorted(names - CATALOGUE)}"
