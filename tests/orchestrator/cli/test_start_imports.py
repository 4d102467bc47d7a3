"""`ponder runs`, `ponder show` and the other commands that only read the trace store do
not import the engine, the graph compiler or the workflow models: importing them was
half of every command's start (about 0.6 s of 1.4 s on two CPUs). `ponder --help` neither.
A command that needs them (`run`, `validate`, `resume`) imports them when it runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

#: modules only the commands that load or run a workflow need
HEAVY = ("networkx", "orchestrator.graph.compile", "orchestrator.runtime.engine",
         "orchestrator.runtime.scheduler", "orchestrator.spec.models", "orchestrator.sdk",
         "alembic")

#: runs `ponder ARGS...` in this process, then prints which of HEAVY it imported
_PROBE = """
import json, sys
heavy = json.loads(sys.argv[1])
sys.argv = ["ponder", *sys.argv[2:]]
from orchestrator.cli import main
try:
    main()
except SystemExit:
    pass
sys.stdout.flush()
sys.stderr.write(json.dumps([m for m in heavy if m in sys.modules]) + "\\n")
"""


def _imported(*args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(HEAVY), *args],
                          capture_output=True, text=True, timeout=120)
    return list(json.loads(done.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize("args", [
    ("--help",), ("runs", "--db", "memory://"), ("runs", "--help"),
    ("show", "nope", "--db", "memory://"), ("gc", "--help"), ("export", "--help"),
])
def test_a_command_that_reads_the_store_starts_without_the_engine(args: tuple[str, ...]
                                                                  ) -> None:
    assert _imported(*args) == []


def test_a_sqlite_store_at_the_newest_revision_opens_light(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path}/ponder.db"
    _imported("runs", "--db", db)  # makes the store (through Alembic)
    assert _imported("runs", "--db", db) == []


def test_validate_imports_what_it_needs() -> None:
    root = Path(__file__).parents[3]
    assert "orchestrator.graph.compile" in _imported("validate",
                                                     str(root / "examples" / "quickstart.yaml"))
