"""A Ctrl-C that comes while `ponder` loads its commands (about a second on a small
machine) ends it as one before a run started: "interrupted", exit 130 and, with
`--json`, the error document on stdout. It printed a traceback, and the process died of
the signal with nothing on stdout."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT")

ROOT = Path(__file__).resolve().parents[3]


def _interrupted_after(delay_s: float, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m orchestrator.cli ARGS` given a SIGINT ``delay_s`` after the package
    ``orchestrator.cli`` is imported, when it goes on to load the commands. (Timed from the
    start of the process, a signal on a loaded machine came while Python itself started,
    in its ``site`` module, before any of Ponder ran: that is Python's, not Ponder's.)
    ``-X importtime`` says when each import is done, on stderr."""
    proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "orchestrator.cli",
                             *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    before = []
    for line in proc.stderr:
        before.append(line)
        if line.rstrip().endswith("| orchestrator.cli"):
            break
    time.sleep(delay_s)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "".join(before) + err)


@pytest.mark.parametrize("delay_s", [0.05, 0.15, 0.3])
def test_ctrl_c_while_loading_is_an_interruption(delay_s: float) -> None:
    done = _interrupted_after(delay_s, "run", "examples/quickstart.yaml", "--backend",
                              "simulated", "--db", "memory://", "--json")
    assert "Traceback" not in done.stderr, done.stderr[-1500:]
    assert done.returncode == 130, (done.returncode, done.stderr[-1500:])
    document = json.loads(done.stdout)  # one document, whatever happened
    assert document["error"]["kind"] == "interrupted"
    assert "interrupted" in done.stderr
