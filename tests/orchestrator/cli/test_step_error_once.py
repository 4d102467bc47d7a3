"""A failed step is named once in the errors `ponder run`, `--json` and `ponder show` give:
the errors a plan, a backend or a timeout makes begin with ``step 'x'``, and the run's
error read ``step 'answer' failed: step 'answer': ...``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from orchestrator.errors import without_step_id

ROOT = Path(__file__).resolve().parents[3]

#: a plan step whose planner names a tool it may not use, and a tool step that times out
WORKFLOW = """\
name: failing
models:
  default:
    backend: simulated
    options:
      decode_s_per_token: 0
      prefill_s_per_token: 0
      responses:
        - {match: ".", output: "1. nosuchtool()\\n<END_OF_PLAN>"}
steps:
  - id: answer
    kind: plan
    planner: llmcompiler
    goal: add
    tools: [calc]
    max_plan_repairs: 0
  - id: slow
    kind: tool
    tool: sleep
    args: {seconds: 5}
    timeout_s: 0.1
"""


def ponder(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_without_step_id() -> None:
    assert without_step_id("a", "step 'a': the backend failed") == "the backend failed"
    assert without_step_id("a", "step 'a' timed out after 1s") == "timed out after 1s"
    assert without_step_id("a", "step 'b' failed (via 'b')") == "step 'b' failed (via 'b')"
    assert without_step_id("a", "step 'ab': x") == "step 'ab': x"
    assert without_step_id("a", None) == ""


def test_a_failed_step_is_named_once(tmp_path: Path, db: str) -> None:
    wf = tmp_path / "failing.yaml"
    wf.write_text(WORKFLOW)
    run = ponder("run", str(wf), "--json", "--db", db)
    assert run.returncode == 1, run.stderr
    doc = json.loads(run.stdout)
    rejected = "the planner's plan was rejected 1 time (max_plan_repairs=0)"
    assert doc["error"].startswith(f"step 'answer' failed: {rejected}")
    assert "step 'answer'" not in doc["error"][len("step 'answer'"):]

    text = ponder("run", str(wf), "--db", db)
    assert text.returncode == 1
    lines = text.stderr.splitlines()
    assert any(line.startswith(f"  answer: failed: {rejected}") for line in lines), lines
    assert "  slow: failed: timed out after 0.1s" in lines
    assert "step 'answer'" not in text.stderr and "step 'slow'" not in text.stderr

    shown = ponder("show", doc["run_id"], "--db", db)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("step 'answer'") == 1  # the run's error line
    assert "step 'slow'" not in shown.stdout
    assert "timed out after 0.1s" in shown.stdout


def test_the_live_table_names_a_failed_step_once() -> None:
    import io

    import anyio
    from rich.console import Console

    from orchestrator import Workflow
    from orchestrator.cli.live import LiveView

    wf = Workflow.from_yaml_text("name: slow\nsteps:\n  - {id: slow, kind: tool, tool: sleep, "
                                 "args: {seconds: 5}, timeout_s: 0.1}\n")
    console = Console(file=io.StringIO(), width=200)
    view = LiveView(console)
    assert not anyio.run(lambda: wf.run(hooks=[view])).ok
    console.print(view.render())
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "timed out after 0.1s" in shown and "step 'slow'" not in shown, shown
