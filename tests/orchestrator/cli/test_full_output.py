"""A command whose standard output refuses what it prints (a full disk: ``> /dev/full``)
says so in one line and exits 1: it was "internal error: OSError: [Errno 28] ...", exit
2, and a traceback with ``--json`` (whose error document failed to print as well), with
``--help`` and with ``--version``. A full standard error (``2> /dev/full``) costs a
command nothing: its output and exit status are what they were. On every store
backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app

ROOT = Path(__file__).resolve().parents[3]
QUICKSTART = str(ROOT / "examples" / "quickstart.yaml")
FULL = "/dev/full"  # (Linux and the BSDs: every write to it fails with ENOSPC)
SAID = "error: cannot write to standard output: No space left on device\n"

pytestmark = pytest.mark.skipif(not os.path.exists(FULL), reason="no /dev/full here")


def ponder(*args: str, stdout: str = FULL, stderr: str | None = None
           ) -> subprocess.CompletedProcess[str]:
    """``ponder ARGS > stdout 2> stderr`` (stderr captured when None)."""
    with open(stdout, "w") as out, open(stderr or os.devnull, "w") as err:
        return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=ROOT,
                              stdout=out, stderr=err if stderr else subprocess.PIPE,
                              text=True, timeout=120)


@pytest.fixture
def run_id(db: str) -> str:
    ran = CliRunner().invoke(app, ["run", QUICKSTART, "--backend", "simulated",
                                   "--db", db, "--json"])
    assert ran.exit_code == 0, ran.stderr
    return str(json.loads(ran.stdout)["run_id"])


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["run", "--help"],
                                  ["schema"], ["schema", "reference"],
                                  ["validate", QUICKSTART],
                                  ["validate", QUICKSTART, "--json"]])
def test_a_full_stdout_is_one_line(args: list[str]) -> None:
    proc = ponder(*args)
    assert (proc.returncode, proc.stderr) == (1, SAID)


@pytest.mark.parametrize("as_json", [[], ["--json"]])
def test_a_run_whose_output_cannot_be_written(as_json: list[str]) -> None:
    proc = ponder("run", QUICKSTART, "--backend", "simulated", "--db", "memory://",
                  *as_json)
    assert proc.returncode == 1
    assert proc.stderr.endswith(SAID) and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("args", [["runs"], ["show", "{id}"], ["show", "{id}", "--json"],
                                  ["export", "{id}"]])
def test_store_commands_with_a_full_stdout(db: str, run_id: str, args: list[str]) -> None:
    proc = ponder(*[a.format(id=run_id) for a in args], "--db", db)
    assert (proc.returncode, proc.stderr) == (1, SAID)


def test_a_full_stderr_costs_a_run_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.json"  # the run's summary goes to stderr, its output here
    proc = ponder("run", QUICKSTART, "--backend", "simulated", "--db", "memory://",
                  "--input", "spiders=4", stdout=str(out), stderr=FULL)
    assert proc.returncode == 0
    assert json.loads(out.read_text())["total_legs"] == 4 * 8 + 2 * 6
