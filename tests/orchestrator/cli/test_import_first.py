"""Each CLI module can be imported first, in a fresh interpreter, and the `ponder` app
then has every command. Importing ``orchestrator.cli.plan_cmd`` first failed with a
circular import ("cannot import name 'plan_app' from partially initialized module"), so
that `pytest tests/planners` (whose first modules import it) could not collect."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

PROBE = """
import importlib, sys
importlib.import_module(sys.argv[1])
from orchestrator.cli.commands import app
print(" ".join(sorted(g.name for g in app.registered_groups)))
print(" ".join(sorted(c.name or c.callback.__name__ for c in app.registered_commands)))
"""


@pytest.mark.parametrize("module", [
    "orchestrator.cli.plan_cmd", "orchestrator.cli.store_cmds", "orchestrator.cli.live",
    "orchestrator.viewer.cli", "orchestrator.cli.commands", "orchestrator.cli",
])
def test_a_cli_module_imported_first_gives_the_whole_app(module: str) -> None:
    done = subprocess.run([sys.executable, "-c", PROBE, module], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    groups, commands = done.stdout.splitlines()
    assert groups == "db plan"
    assert commands == "export gc import replay resume run runs schema show validate view"
