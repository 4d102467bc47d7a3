"""`ponder replay RUN --input k=v` without `--from` is refused before anything runs, as
`--set` is: a replay repeats the recorded inputs, so the changed one only failed the first
step that read it ("the rendered input differs from the recording") after the run began."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _ponder(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_replay_with_an_input_and_no_from_is_refused(db: str) -> None:
    wf = str(ROOT / "examples" / "quickstart.yaml")
    first = _ponder("run", wf, "--backend", "simulated", "--json", "--db", db)
    assert first.returncode == 0, first.stderr
    run_id = json.loads(first.stdout)["run_id"]
    refused = _ponder("replay", run_id, "--input", "spiders=9", "--db", db, "--json")
    assert refused.returncode == 1, refused.stderr
    error = json.loads(refused.stdout)["error"]
    assert error["message"].startswith("--input needs --from STEP"), error
    assert "Traceback" not in refused.stderr
    listed = json.loads(_ponder("runs", "--db", db, "--json").stdout)
    assert len(listed) == 1  # nothing was recorded for the refused replay
    forked = _ponder("replay", run_id, "--from", "total_legs", "--input", "spiders=9",
                     "--db", db, "--json")
    assert forked.returncode == 0, forked.stderr
