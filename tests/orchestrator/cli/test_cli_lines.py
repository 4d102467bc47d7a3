"""Off a terminal (a pipe, a file, a CI log) no line is wrapped, so that one message is
one line that ``grep`` finds; and a value the user gave is echoed short, however long."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from orchestrator.cli import app

ROOT = Path(__file__).resolve().parents[3]
QUICKSTART = "examples/quickstart.yaml"
HUGE = "a" * 100_000
#: what a message echoes of HUGE
ECHOED = f"{'a' * 60!r}... (100000 characters)"

#: a tool step failing with an error of more than 80 characters, and one skipped for it
FAILING = """\
name: t
inputs:
  e: {type: string, default: "1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10 + 11 + 12 + foo"}
steps:
  - {id: ok, kind: tool, tool: calc, args: {expression: '6*7'}}
  - {id: boom, kind: tool, tool: calc, args: {expression: '${inputs.e}'}}
  - {id: after, kind: tool, tool: calc, args: {expression: '${steps.boom.output}'}}
"""
BOOM = ("calc: `foo` is not allowed (numbers, + - * / // % **, and abs, ceil, exp, floor, "
        "log, max, min, round, sqrt only)")


def piped(*args: str) -> subprocess.CompletedProcess[str]:
    """``ponder ARGS`` with stdout and stderr pipes, as rich once wrapped them: at 80
    columns (``COLUMNS`` says so; a terminal on stdin would too)."""
    env = {**os.environ, "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env=env,
                          stdin=subprocess.DEVNULL)


def test_run_prints_each_step_error_on_one_line(tmp_path: Path) -> None:
    wf = tmp_path / "w.yaml"
    wf.write_text(FAILING)
    proc = piped("run", str(wf), "--db", "memory://")
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert f"  boom: failed: {BOOM}" in lines, proc.stderr  # it was cut at "* " and wrapped
    assert "  after: skipped: dependency 'boom' did not succeed" in lines


def test_run_prints_a_long_output_as_it_is(tmp_path: Path) -> None:
    wf = tmp_path / "w.yaml"
    text = " ".join(f"word{i}" for i in range(40))
    wf.write_text("name: t\ninputs:\n  t: {type: string}\nsteps:\n"
                  "  - {id: a, kind: tool, tool: calc, args: {expression: '1'}}\n"
                  "outputs:\n  text: ${inputs.t}\n")
    proc = piped("run", str(wf), "--db", "memory://", "--input", f"t={text}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == text + "\n"  # it was wrapped at 80 columns


def test_show_prints_a_whole_error_in_its_row(tmp_path: Path) -> None:
    wf = tmp_path / "w.yaml"
    wf.write_text(FAILING)
    db = f"sqlite:///{tmp_path / 'trace.db'}"
    run_id = json.loads(piped("run", str(wf), "--db", db, "--json").stdout)["run_id"]
    proc = piped("show", run_id, "--db", db)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert f"error: step 'boom' failed: {BOOM}" in lines
    # the row was cut to the error's first 80 characters, then wrapped in its column
    [row] = [line for line in lines if line.split()[:1] == ["boom"]]
    assert row.split()[:3] == ["boom", "tool", "failed"] and row.endswith(BOOM), row
    assert all(line == line.rstrip() for line in lines), lines  # rows are not padded
    listed = piped("runs", "--db", db).stdout.splitlines()
    assert len(listed) == 2 and listed[1].split()[:3] == [run_id, "t", "failed"], listed


def ponder(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def one_short_line(result: Result, message: str) -> None:
    """The command failed with one short line on stderr: ``error: MESSAGE``."""
    assert result.exit_code != 0
    assert result.stderr == f"error: {message}\n", result.stderr[:500]


def test_a_huge_input_value_is_echoed_short() -> None:
    # it was echoed whole: a 100 KB message
    one_short_line(ponder("run", QUICKSTART, "--backend", "simulated", "--db", "memory://",
                          "--input", f"spiders={HUGE}"),
                   f"input 'spiders' must be integer, got {ECHOED}")
    one_short_line(ponder("run", QUICKSTART, "--backend", "simulated", "--input", HUGE),
                   f"--input {ECHOED} must look like key=value")


@pytest.mark.parametrize(("args", "message"), [
    (["show", HUGE], f"no run {ECHOED} in the trace store memory:// (`ponder runs` lists "
                   "its runs; another store: --db URL or PONDER_DB_URL)"),
    (["replay", HUGE], f"no run {ECHOED} in the trace store memory:// (`ponder runs` lists "
                   "its runs; another store: --db URL or PONDER_DB_URL)"),
    (["runs", "--status", HUGE], f"--status {ECHOED}: use one of running, interrupted, "
                                 "succeeded, failed, cancelled"),
    (["gc", "--older-than", HUGE], f"--older-than {ECHOED}: use a number and s, m, h, d or "
                                   "w (30d)"),
    (["replay", "r", "--set", HUGE], f"--set {ECHOED} must look like STEP.output=JSON"),
    (["schema", HUGE], f"unknown schema {ECHOED}; one of: workflow, trace_event, reference"),
], ids=["show", "replay", "status", "older-than", "set", "schema"])
def test_a_huge_option_value_is_echoed_short(args: list[str], message: str) -> None:
    one_short_line(ponder(*args, *(["--db", "memory://"] if args[0] != "schema" else [])),
                   message)


def test_a_huge_executor_name_is_echoed_short() -> None:
    result = ponder("run", QUICKSTART, "--backend", "simulated", "--db", "memory://",
                    "--tool-executor", HUGE)
    one_short_line(result, f"--tool-executor {ECHOED}: no such executor; installed "
                           "for tool steps: ray-tool, tool")


def test_a_malformed_command_line_is_one_line() -> None:
    # typer's panel wrapped the message in a box of 80 columns
    option = "--no-such-option-" + "x" * 100
    result = ponder("run", QUICKSTART, option)
    assert result.exit_code == 2
    assert f"Error: No such option: {option}" in result.stderr.splitlines(), result.stderr


def test_a_huge_model_or_tool_name_is_echoed_short() -> None:
    one_short_line(ponder("run", QUICKSTART, "--backend", "simulated", "--db", "memory://",
                          "--model", f"{HUGE}=missing.yaml"),
                   f"--model {'a' * 60}... (100000 characters): cannot read missing.yaml: "
                   "No such file or directory")
    result = CliRunner().invoke(app, ["plan", "parse", "-", "--tool", HUGE], input="1. x()\n")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: --tool {ECHOED} is neither a built-in tool "), \
        result.stderr[:500]
    assert len(result.stderr) < 500
