"""``wbl`` starts without the heavy libraries only some of its commands use (decision 075).

Every ``wbl`` command, ``wbl --help`` included, imports the ``services.cli`` package and,
through it, every subcommand's module. When those modules imported SciPy and NumPy (the state
report's suppression audit), FastAPI and Starlette (tokens, accounts, approval digests), rich
(progress bars) and Kafka's clients at the top, each command paid 2.5 to 3.6 s before doing
anything. Each command now imports them in its own body, as it does uvicorn and pyarrow. The
first test fails when a top-level import brings one back; it looks at the modules loaded, not
at the time taken (figures go in benchmarks and decisions, not in timed tests). The second
runs ``wbl --help`` as a user does, through the console script, and checks that every command
is still listed. Both run in a fresh process: the test process has long imported everything."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

HEAVY = ("scipy", "numpy", "fastapi", "starlette", "uvicorn", "rich", "pyarrow", "kafka",
         "confluent_kafka")
"""Libraries no command needs merely to be found and parsed."""

COMMANDS = ("run", "api", "relay", "projector", "import", "replay", "tokens", "projections",
            "audit", "report", "export", "research", "learners", "credentials", "users",
            "approvals")


def _environment() -> dict[str, str]:
    """This environment without the deployment's ``WBL_*`` settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("WBL_")}


def test_importing_the_cli_loads_none_of_the_heavy_libraries() -> None:
    probe = ("import services.cli, sys; "
             f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], env=_environment(),
                          capture_output=True, text=True, timeout=120, cwd=Path.cwd())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", (
        f"imported by `import services.cli`: {done.stdout.strip()}; import it in the body of "
        "the command that uses it (python -X importtime -c 'import services.cli' shows who "
        "imports it)")


def test_wbl_help_lists_every_command() -> None:
    wbl = Path(sys.executable).parent / "wbl"
    done = subprocess.run([str(wbl), "--help"], env={**_environment(), "COLUMNS": "120"},
                          capture_output=True, text=True, timeout=120, cwd=Path.cwd())
    assert done.returncode == 0, done.stderr
    assert "wbl-ledger: the work-based-learning placement ledger." in done.stdout
    listed = set(re.findall(r"^\W*([a-z][a-z-]*)\s{2,}\S", done.stdout, re.MULTILINE))
    missing = [name for name in COMMANDS if name not in listed]
    assert not missing, f"not listed by `wbl --help`: {missing}\n{done.stdout}"
