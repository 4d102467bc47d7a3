"""`ponder run --model NAME=FILE`: serve a model alias with a config from a file.

This is how a planner example's scripted outputs (``examples/planners/*.sim.yaml``) run
by hand on the simulated backend.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.orchestrator.cli.test_cli import ponder

EXAMPLES = Path("examples") / "planners"


def test_a_planner_example_runs_by_hand_with_its_scripted_outputs() -> None:
    proc = ponder("run", str(EXAMPLES / "parallel_qa.yaml"), "--json",
                  "--model", f"default={EXAMPLES / 'parallel_qa.sim.yaml'}")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["output"] == {"answer": "8728859"}
    # the plan's look-ups ran as steps of their own
    assert {"answer__1", "answer__2", "answer__3", "answer__4"} <= {s["id"] for s in doc["steps"]}


def test_without_the_scripted_outputs_the_simulated_plan_is_malformed() -> None:
    # the override is what made the run above succeed: a bare simulated backend
    # writes no plan, and the planner step fails with its errors recorded
    proc = ponder("run", str(EXAMPLES / "parallel_qa.yaml"), "--backend", "simulated",
                  "--json")
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["status"] == "failed"


@pytest.mark.parametrize(("value", "content", "message"), [
    ("default", None, "must look like NAME=FILE"),
    ("default=missing.yaml", None, "cannot read missing.yaml"),
    ("default=FILE", "backend: [", "is not valid YAML"),
    ("default=FILE", "backend: simulated\nconcurrency: 0\n",
     "concurrency: Input should be greater than or equal to 1"),
    ("default=FILE", "backend: simulated\nspeed: 3\n", "speed: Extra inputs are not permitted"),
    ("default=FILE", b"\xff\xfe", "is not UTF-8 text (byte 0)"),
])
def test_bad_model_overrides_are_named(tmp_path: Path, value: str, content: str | bytes | None,
                                       message: str) -> None:
    file = tmp_path / "model.yaml"
    if isinstance(content, bytes):
        file.write_bytes(content)
    elif content is not None:
        file.write_text(content)
    proc = ponder("run", "examples/quickstart.yaml", "--backend", "simulated",
                  "--model", value.replace("FILE", str(file)))
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_alias_the_workflow_does_not_declare_is_refused(tmp_path: Path) -> None:
    wf = tmp_path / "w.yaml"
    wf.write_text("name: t\nmodels:\n  fast: {backend: simulated}\nsteps:\n"
                  "  - {id: a, kind: llm, model: fast, prompt: hi}\n")
    model = tmp_path / "m.yaml"
    model.write_text("backend: simulated\n")
    proc = ponder("run", str(wf), "--model", f"fsat={model}")
    assert proc.returncode == 1
    assert "declares no model 'fsat' (models: fast)" in proc.stderr
