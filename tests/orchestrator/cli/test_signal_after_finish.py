"""A signal that comes once `ponder run`'s run has finished does not change what the
command reports: the run's final status is in the store, so it reports that status and
exits with its code. Ctrl-C just after a run succeeded gave exit 130: once the run had
returned, the signal handler was gone (while the store closed, while the output
printed), and Python's KeyboardInterrupt (or SIGTERM's default, ending the process)
took over.

Each signal is sent by the command's own process at a set point (no sleeps): a fake
store sends it when the run's `run_finished` is stored, or when it is closed, or the
command sends it as it prints the result."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

WORKFLOW = """\
name: quick
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "6 * 7"}}
outputs:
  a: ${steps.a.output}
"""

#: `ponder run` with a signal sent to itself at WHEN (argv[1]): SIGNAL (argv[2])
SCRIPT = """\
import importlib, os, signal, sys

import orchestrator.store as stores
from orchestrator.cli import main

cli_app = importlib.import_module("orchestrator.cli.commands")  # (the package's `app` is typer's)

when, signum = sys.argv[1], getattr(signal, sys.argv[2])
del sys.argv[1:3]


def send():
    os.kill(os.getpid(), signum)


class SignallingStore:
    def __init__(self, store):
        self._store = store

    def __getattr__(self, name):
        return getattr(self._store, name)

    async def append(self, events):
        await self._store.append(events)
        if when == "stored" and any(e.kind == "run_finished" for e in events):
            send()

    async def close(self):
        if when == "close":
            send()
        await self._store.close()


real_open = stores.open_store


async def open_store(url=None, **kwargs):
    if when == "open":  # a store that does not answer
        send()
        import anyio
        await anyio.sleep_forever()
    return SignallingStore(await real_open(url, **kwargs))


stores.open_store = open_store
real_report = cli_app._report


def report(result, as_json, *args):
    if when == "report":
        send()
    real_report(result, as_json, *args)


cli_app._report = report
main()
"""


def _run(tmp_path: Path, when: str, signame: str) -> tuple[subprocess.CompletedProcess[str], str]:
    flow = tmp_path / "quick.yaml"
    flow.write_text(WORKFLOW)
    db = f"sqlite:///{tmp_path / 'trace.db'}"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, when, signame, "run", str(flow), "--db", db,
         "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120,
        # a test runner in the background may ignore SIGINT: the command must not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return proc, db


def _ponder(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("when", ["stored", "close", "report"])
def test_a_signal_after_the_run_finished_leaves_its_outcome_and_exit_code(
        tmp_path: Path, when: str, signame: str) -> None:
    proc, db = _run(tmp_path, when, signame)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    doc = json.loads(proc.stdout)
    assert (doc["status"], doc["output"]) == ("succeeded", {"a": 42})
    assert "cancelling" not in proc.stderr
    shown = _ponder("show", doc["run_id"], "--db", db, "--json")
    assert json.loads(shown.stdout)["status"] == "succeeded", shown.stderr


@pytest.mark.parametrize(("signame", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_while_the_store_opens_stops_the_command(tmp_path: Path, signame: str,
                                                         code: int) -> None:
    """Ctrl-C still ends a command waiting on a store that does not answer."""
    proc, _ = _run(tmp_path, "open", signame)
    assert proc.returncode == code, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert (error["kind"], error["message"]) == ("interrupted",
                                                 "interrupted before the run started")


def test_a_run_off_the_main_thread_runs_without_handlers(tmp_path: Path) -> None:
    """Only the main thread may install signal handlers: elsewhere the run goes on
    without them (as under the SDK) rather than failing with a ValueError."""
    import threading

    from tests.orchestrator.cli.test_json_errors import ponder

    flow = tmp_path / "quick.yaml"
    flow.write_text(WORKFLOW)
    results: list[object] = []
    thread = threading.Thread(target=lambda: results.append(
        ponder("run", str(flow), "--db", "memory://", "--json")))
    thread.start()
    thread.join(120)
    (result,) = results
    assert getattr(result, "exit_code", None) == 0, getattr(result, "stderr", result)
