"""The architecture holds: layers (import-linter contracts in pyproject.toml) and one
composition root (a ``Ledger`` is built only in ``services/bootstrap.py``)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_import_linter_contract_is_kept() -> None:
    """``lint-imports`` as a contributor types it, on the contracts in pyproject.toml."""
    done = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout and "3 kept" in done.stdout, done.stdout[-1000:]


def _ledger_constructions(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "Ledger"]


def test_a_ledger_is_built_only_by_the_composition_root() -> None:
    allowed = {ROOT / "services" / "bootstrap.py"}
    found = {}
    for folder in ("domain", "projections", "infra", "services", "benchmarks", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            if path in allowed:
                continue
            lines = _ledger_constructions(path)
            if lines:
                found[str(path.relative_to(ROOT))] = lines
    assert not found, f"Ledger(...) outside services/bootstrap.py: {found}"


def test_mypy_strict_holds_on_all_four_packages() -> None:
    """``mypy`` as configured in pyproject.toml: --strict over domain, projections, infra and
    services (about 15 s)."""
    done = subprocess.run([str(Path(sys.executable).parent / "mypy"), "--no-incremental"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:]
