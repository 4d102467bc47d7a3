"""A Python tool may return a string holding a lone surrogate ("x\\ud800y"), which no UTF-8
holds: `ponder run`, `show --json` and `export -o` print it as its escape (the same string
to a JSON reader) instead of failing with an internal UnicodeEncodeError after the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _ponder(*args: str, db: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8",
           "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args, "--db", db],
                          cwd=cwd, capture_output=True, text=True, timeout=120, env=env,
                          errors="surrogateescape")


def test_a_tool_output_with_a_lone_surrogate_prints_escaped(db: str, tmp_path: Path) -> None:
    (tmp_path / "tools.py").write_text('def bad() -> str:\n    return "x\\ud800y"\n')
    (tmp_path / "sur.yaml").write_text(
        'name: sur\ntools: {bad: "tools:bad"}\nsteps:\n  - {id: a, kind: tool, tool: bad}\n')
    text = _ponder("run", "sur.yaml", db=db, cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "x\\ud800y" in text.stdout and "internal error" not in text.stderr

    as_json = _ponder("run", "sur.yaml", "--json", db=db, cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert doc["output"] == "x\ud800y"

    shown = _ponder("show", doc["run_id"], "--json", db=db, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    (step,) = json.loads(shown.stdout)["steps"]
    assert step["output"] == "x\ud800y"

    exported = _ponder("export", doc["run_id"], "-o", "run.json", db=db, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    again = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    finished = [e for e in again["events"] if e["kind"] == "step_succeeded"]
    assert finished[0]["output"] == "x\ud800y"
