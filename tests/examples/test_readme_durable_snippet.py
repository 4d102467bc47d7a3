"""The README's Durable runs snippet (record an SDK run, resume it, fork it) runs as
pasted into a file, and the CLI reads the runs it recorded."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from orchestrator.cli import app

ROOT = Path(__file__).resolve().parents[2]


def durable_runs_snippet() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Durable runs\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"^```python\n(.*?)^```", section, flags=re.S | re.M)
    return str(block)


def test_the_durable_runs_snippet_records_resumes_and_forks(tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    script = tmp_path / "snippet.py"
    script.write_text(durable_runs_snippet(), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["demo succeeded 44", "succeeded"], proc.stdout
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    shown = CliRunner().invoke(app, ["show", "demo", "--db", db, "--json"])
    assert shown.exit_code == 0, shown.stderr
    assert all(s["status"] == "succeeded" for s in json.loads(shown.stdout)["steps"])
    exported = CliRunner().invoke(app, ["export", "demo", "--db", db])
    finished = [e["status"] for e in json.loads(exported.stdout)["events"]
                if e["kind"] == "run_finished"]
    assert finished == ["cancelled", "succeeded"]  # stopped once, then resumed
    runs = CliRunner().invoke(app, ["runs", "--db", db, "--json"])
    assert len(json.loads(runs.stdout)) == 2  # the run and its fork
