"""`ponder run` names the failed step a skip goes back to, and the stored trace keeps it
(the optional `root_step` of `step_skipped`), on each SQL store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

CHAIN = """\
name: chain
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "1/0"}}
  - {id: b, kind: tool, tool: calc, args: {expression: "${steps.a.output} + 1"}}
  - {id: c, kind: tool, tool: calc, args: {expression: "${steps.b.output} + 1"}}
"""


def _ponder(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_ponder_run_and_the_stored_trace_name_the_failed_step(tmp_path: Path, db: str) -> None:
    flow = tmp_path / "chain.yaml"
    flow.write_text(CHAIN)
    proc = _ponder("run", str(flow), "--db", db, "--json")
    assert proc.returncode == 1, proc.stderr
    run = json.loads(proc.stdout)
    # it said "dependency 'b' did not succeed"
    assert {s["id"]: s["error"] for s in run["steps"]}["c"] == "step 'a' failed (via 'b')"
    out = tmp_path / "run.json"
    proc = _ponder("export", run["run_id"], "--db", db, "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    skips = {e["step_id"]: (e["cause_step"], e.get("root_step")) for e in doc["events"]
             if e["kind"] == "step_skipped"}
    assert skips == {"b": ("a", "a"), "c": ("b", "a")}
