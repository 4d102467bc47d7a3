"""Ctrl-C and SIGTERM during `ponder resume` and `ponder replay --from` do what they do
during `ponder run`: the run is cancelled, recorded as cancelled, its summary printed
(with how to continue it) and the command exits 130 (143). Resume exited 143 silently
under SIGTERM, leaving the run "interrupted"; under SIGINT it printed only
"interrupted"; with SIGINT ignored (a shell's background job) it did not stop at all.

The signal is sent by the command's own process at a set point (no sleeps): the first
step's tool sends it (the one named by $SIGNAL_TO_SEND, if set) and then waits a minute.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

WORKFLOW = """\
name: stops
tools:
  stop: stop_tools:stop
steps:
  - {id: a, kind: tool, tool: stop, args: {}}
  - {id: b, kind: tool, tool: calc, args: {expression: "1 + 1"}, after: [a]}
outputs:
  b: ${steps.b.output}
"""

TOOLS = """\
import os
import signal

import anyio


async def stop() -> str:
    name = os.environ.get("SIGNAL_TO_SEND")
    if name:
        os.kill(os.getpid(), getattr(signal, name))
        await anyio.sleep(60)
    return "done"
"""


def _ponder(*args: str, send: str | None = None, ignore_sigint: bool = False
            ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SIGNAL_TO_SEND"}
    if send is not None:
        env["SIGNAL_TO_SEND"] = send
    # a test runner in the background may ignore SIGINT; a shell's background job does
    sigint = signal.SIG_IGN if ignore_sigint else signal.SIG_DFL
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env=env,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, sigint))


def _flow(tmp_path: Path) -> str:
    (tmp_path / "stops.yaml").write_text(WORKFLOW)
    (tmp_path / "stop_tools.py").write_text(TOOLS)
    return str(tmp_path / "stops.yaml")


def _status(run_id: str, db: str) -> str:
    shown = _ponder("show", run_id, "--db", db, "--json")
    status: str = json.loads(shown.stdout)["status"]
    return status


def _cancelled_run(tmp_path: Path, db: str) -> str:
    """A run of the workflow that Ctrl-C cancelled in its first step."""
    proc = _ponder("run", _flow(tmp_path), "--db", db, "--json", send="SIGINT")
    assert proc.returncode == 130, proc.stderr
    run_id: str = json.loads(proc.stdout)["run_id"]
    return run_id


SIGNALS = [("SIGINT", 130), ("SIGTERM", 143)]


@pytest.mark.parametrize(("signame", "code"), SIGNALS)
def test_a_signal_cancels_the_resumed_run(tmp_path: Path, db: str, signame: str,
                                          code: int) -> None:
    run_id = _cancelled_run(tmp_path, db)
    proc = _ponder("resume", run_id, "--db", db, "--json", send=signame)
    assert proc.returncode == code, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["run_id"], doc["status"]) == (run_id, "cancelled")
    assert "Traceback" not in proc.stderr
    assert _status(run_id, db) == "cancelled"
    # and it goes on once more, to the end
    done = _ponder("resume", run_id, "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["output"] == {"b": 2}


@pytest.mark.parametrize(("signame", "code"), SIGNALS)
def test_a_cancelled_resume_says_how_to_continue_it(tmp_path: Path, signame: str,
                                                    code: int) -> None:
    db = f"sqlite:///{tmp_path / 'trace.db'}"
    run_id = _cancelled_run(tmp_path, db)
    proc = _ponder("resume", run_id, "--db", db, send=signame)
    assert proc.returncode == code, proc.stderr
    assert f"cancelled run {run_id} in " in proc.stderr
    assert f"continue it with `ponder resume {run_id}`" in proc.stderr
    assert "interrupted" not in proc.stderr and "Traceback" not in proc.stderr


def test_ctrl_c_stops_a_resume_that_runs_with_sigint_ignored(tmp_path: Path) -> None:
    """A shell starts a background job with SIGINT ignored: `ponder run` there stops on
    it (its handler replaces the ignoring), and so does `ponder resume`."""
    db = f"sqlite:///{tmp_path / 'trace.db'}"
    run_id = _cancelled_run(tmp_path, db)
    proc = _ponder("resume", run_id, "--db", db, "--json", send="SIGINT",
                   ignore_sigint=True)
    assert proc.returncode == 130, proc.stderr
    assert json.loads(proc.stdout)["status"] == "cancelled"


@pytest.mark.parametrize(("signame", "code"), SIGNALS)
def test_a_signal_cancels_the_fork_of_a_replay(tmp_path: Path, db: str, signame: str,
                                               code: int) -> None:
    ran = _ponder("run", _flow(tmp_path), "--db", db, "--json")
    assert ran.returncode == 0, ran.stderr
    run_id = json.loads(ran.stdout)["run_id"]
    proc = _ponder("replay", run_id, "--from", "a", "--db", db, "--json", send=signame)
    assert proc.returncode == code, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "cancelled" and doc["run_id"] != run_id
    assert _status(doc["run_id"], db) == "cancelled"
    assert _status(run_id, db) == "succeeded"


def test_a_cancelled_replay_says_how_to_continue_its_fork(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'trace.db'}"
    ran = _ponder("run", _flow(tmp_path), "--db", db, "--json")
    run_id = json.loads(ran.stdout)["run_id"]
    proc = _ponder("replay", run_id, "--from", "a", "--db", db, send="SIGTERM")
    assert proc.returncode == 143, proc.stderr
    fork = proc.stderr.split("cancelled run ", 1)[1].split()[0]
    assert f"continue it with `ponder resume {fork}`" in proc.stderr
    assert f"fork of {run_id} recorded as run {fork}" in proc.stderr
