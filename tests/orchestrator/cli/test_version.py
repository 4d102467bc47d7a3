"""`ponder --version` prints the installed package's version (it was "No such option",
exit 2), before and instead of any command."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from typer.testing import CliRunner

from orchestrator.cli import app

ROOT = Path(__file__).resolve().parents[3]


def test_version_prints_the_package_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"ponder {version('ponder')}\n"


def test_version_wins_over_a_command_after_it() -> None:
    result = CliRunner().invoke(app, ["--version", "run", "no-such-file.yaml"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"ponder {version('ponder')}\n"


def test_version_of_the_console_command() -> None:
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "--version"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        0, f"ponder {version('ponder')}\n", "")


def test_help_lists_version() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "100"})
    assert "--version" in result.stdout
