"""Ctrl-C and SIGTERM during `ponder run`: the run is cancelled, recorded as cancelled
(so `ponder resume` continues it), and the command exits as a shell expects of a
command a signal stopped (130, 143), on every store backend."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

WORKFLOW = """\
name: waits
tools:
  mark: signal_tools:mark
steps:
  - id: a
    kind: tool
    tool: mark
    args: {path: "${inputs.marker}"}
  - id: b
    kind: tool
    tool: calc
    args: {expression: "1 + 1"}
    after: [a]
inputs:
  marker: {type: string}
outputs:
  b: ${steps.b.output}
"""

TOOLS = """\
from pathlib import Path

import anyio


async def mark(path: str) -> str:
    Path(path).write_text("started")
    await anyio.sleep(60)
    return "done"
"""


def started_run(tmp_path: Path, db: str, *extra: str) -> subprocess.Popen[str]:
    """`ponder run` of a workflow whose first step waits a minute, once that step runs."""
    (tmp_path / "waits.yaml").write_text(WORKFLOW)
    (tmp_path / "signal_tools.py").write_text(TOOLS)
    marker = tmp_path / "started"
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "run", str(tmp_path / "waits.yaml"),
         "--db", db, "--input", f"marker={marker}", *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a test runner in the background may ignore SIGINT: the command must not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"the run did not start its step: {out}{err}")
        time.sleep(0.05)
    return proc


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_cancels_the_run_records_it_and_exits_as_a_shell_expects(
        tmp_path: Path, db: str, signum: int, code: int) -> None:
    """The run was recorded as cancelled, but the command exited 1, as for a run that
    failed: a shell loop over `ponder run` went on after Ctrl-C."""
    proc = started_run(tmp_path, db, "--json")
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    doc = json.loads(out)
    assert doc["status"] == "cancelled"
    shown = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "show", doc["run_id"], "--db", db, "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert json.loads(shown.stdout)["status"] == "cancelled", shown.stderr


def test_a_cancelled_run_says_how_to_continue_it(tmp_path: Path, db: str) -> None:
    proc = started_run(tmp_path, db)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    run_id = err.split("cancelled run ", 1)[1].split()[0]
    assert f"continue it with `ponder resume {run_id}`" in err
