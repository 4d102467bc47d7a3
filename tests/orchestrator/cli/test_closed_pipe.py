"""A command whose standard output is closed by its reader (``ponder runs | head -1``)
stops quietly, as click's commands and Unix tools do: exit status 1, nothing on stderr.
It printed ``internal error: BrokenPipeError`` and exited 2 (1 with ``--json``, whose
error document failed to print as well), on every store backend."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app

ROOT = Path(__file__).resolve().parents[3]
QUICKSTART = str(ROOT / "examples" / "quickstart.yaml")


def closed_stdout(*args: str) -> subprocess.CompletedProcess[str]:
    """``ponder ARGS`` with its standard output a pipe closed before it writes a byte."""
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # long before the command has imported what it prints with
    stderr = proc.stderr.read()
    proc.stderr.close()
    return subprocess.CompletedProcess(proc.args, proc.wait(timeout=120), "", stderr)


@pytest.fixture
def run_id(db: str) -> str:
    ran = CliRunner().invoke(app, ["run", QUICKSTART, "--backend", "simulated",
                                   "--db", db, "--json"])
    assert ran.exit_code == 0, ran.stderr
    return str(json.loads(ran.stdout)["run_id"])


@pytest.mark.parametrize("command", [
    ["runs"], ["runs", "--json"], ["show", "RUN"], ["show", "RUN", "--json"],
    ["export", "RUN"],
])
def test_a_closed_stdout_ends_a_command_quietly(db: str, run_id: str,
                                                 command: list[str]) -> None:
    done = closed_stdout(*[run_id if a == "RUN" else a for a in command], "--db", db)
    assert done.stderr == ""
    assert done.returncode == 1


def quiet(stderr: str) -> bool:
    """Whether stderr holds no error (the summary line of a run is not one)."""
    return all(line.startswith("succeeded run ") for line in stderr.splitlines())


@pytest.mark.parametrize("as_json", [[], ["--json"]])
def test_a_run_whose_result_cannot_be_printed_ends_quietly(db: str,
                                                           as_json: list[str]) -> None:
    done = closed_stdout("run", QUICKSTART, "--backend", "simulated", "--db", db, *as_json)
    assert quiet(done.stderr), done.stderr
    assert done.returncode == 1


def test_a_replay_whose_result_cannot_be_printed_ends_quietly(db: str, run_id: str) -> None:
    done = closed_stdout("replay", run_id, "--db", db)
    assert quiet(done.stderr), done.stderr
    assert done.returncode == 1


def test_schema_into_a_closed_pipe_ends_quietly() -> None:
    done = closed_stdout("schema")
    assert (done.returncode, done.stderr) == (1, "")


def test_a_broken_pipe_other_than_stdout_is_still_reported(
        capsys: pytest.CaptureFixture[str]) -> None:
    """A pipe or socket of another end (a model server's) is a failure, reported."""
    import typer

    from orchestrator.cli.commands import _run_cli

    def go() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(typer.Exit) as exit_:
        _run_cli(go, debug=False)
    assert exit_.value.exit_code == 2
    assert "internal error: BrokenPipeError" in capsys.readouterr().err


def test_a_broken_pipe_while_stdout_is_read_is_still_reported(tmp_path: Path) -> None:
    script = tmp_path / "other_pipe.py"
    script.write_text(
        "import typer\n"
        "from orchestrator.cli.commands import _run_cli\n"
        "def go():\n"
        "    print('partial', flush=True)\n"
        "    raise BrokenPipeError(32, 'Broken pipe')\n"
        "try:\n"
        "    _run_cli(go, debug=False)\n"
        "except typer.Exit as e:\n"
        "    raise SystemExit(e.exit_code)\n")
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.stdout == "partial\n"
    assert done.returncode == 2 and "BrokenPipeError" in done.stderr
