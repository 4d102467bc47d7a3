"""A tool that prints (as its module is imported, as it runs, from a subprocess of its
own) put its lines on `ponder run`'s standard output, ahead of the result: `--json`
was no longer one JSON document, and without it the lines read as part of the output.
They go to standard error now, for `run`, `resume` and `replay` alike."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

TOOLS = '''import os, subprocess, sys
print("imported")
def chatty(x: str) -> str:
    print("debug:", x)
    sys.stdout.flush()
    os.write(1, b"raw fd write\\n")
    subprocess.run(["echo", "from a subprocess"], check=True)
    return x.upper()
'''
WORKFLOW = """name: chatty
tools:
  chatty: chatty_tools:chatty
steps:
  - {id: a, kind: tool, tool: chatty, args: {x: hi}}
  - {id: b, kind: tool, tool: chatty, args: {x: "${steps.a.output}-again"}}
"""
PRINTED = ["debug: hi", "raw fd write", "from a subprocess"]


def _ponder(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args, "--db",
                           f"sqlite:///{tmp_path / 'runs.db'}"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_what_a_tool_prints_goes_to_stderr(tmp_path: Path) -> None:
    (tmp_path / "chatty_tools.py").write_text(TOOLS)
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    ran = _ponder(tmp_path, "run", "wf.yaml", "--json")
    assert ran.returncode == 0, ran.stderr
    doc = json.loads(ran.stdout)  # the whole of it
    assert doc["output"] == "HI-AGAIN"
    for line in ["imported", *PRINTED]:
        assert line in ran.stderr.splitlines(), ran.stderr

    plain = _ponder(tmp_path, "run", "wf.yaml")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == "HI-AGAIN\n"

    fork = _ponder(tmp_path, "replay", doc["run_id"], "--from", "b", "--json")
    assert fork.returncode == 0, fork.stderr
    assert json.loads(fork.stdout)["output"] == "HI-AGAIN"
    assert "debug: HI-again" in fork.stderr.splitlines(), fork.stderr
