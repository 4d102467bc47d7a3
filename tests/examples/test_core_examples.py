"""Every core example runs on the simulated backend; the README's quickstart command runs on
the bundled local model."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import Workflow

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.anyio


async def test_quickstart_runs_its_subquestions_in_parallel() -> None:
    wf = Workflow.from_yaml(ROOT / "examples" / "quickstart.yaml")
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}

    async def timing(batch: list) -> None:  # type: ignore[type-arg]
        for e in batch:
            if e.kind == "step_started":
                starts[e.step_id] = e.ts
            if e.kind == "step_succeeded":
                ends[e.step_id] = e.ts

    result = await wf.run({"spiders": 2, "ants": 5}, backend="simulated", hooks=[timing])
    assert result.ok, result.error
    assert result.output["total_legs"] == 2 * 8 + 5 * 6
    assert isinstance(result.output["answer"], str) and result.output["answer"]
    subs = ["spider_fact", "ant_fact", "why_count"]
    assert max(starts[s] for s in subs) < min(ends[s] for s in subs)  # overlapping
    assert starts["answer"] >= max(ends[s] for s in [*subs, "total_legs"])


async def test_map_example_fans_out_over_its_input() -> None:
    wf = Workflow.from_yaml(ROOT / "examples" / "map_fanout.yaml")
    result = await wf.run({"topics": ["a", "b", "c", "d"]}, backend="simulated")
    assert result.ok, result.error
    assert len(result.output["explanations"]) == 4
    assert sum(1 for s in result.steps if s.id.startswith("explain[")) == 4


def test_sdk_script_runs() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "sdk_agent.py"), "simulated"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "succeeded" in proc.stdout and "'words':" in proc.stdout


def readme_quickstart_command() -> list[str]:
    """The command the README's first set-up line runs after installing Ponder."""
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if '".[local]"' in line and "&&" in line:
            return shlex.split(line.split("&&", 1)[1])
    raise AssertionError("README.md has no `pip install ... && ponder run ...` line")


def test_the_readme_quickstart_runs_on_the_bundled_model(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp", reason="needs the `local` extra (llama-cpp-python)")
    command = readme_quickstart_command()
    assert command[:2] == ["ponder", "run"], command
    db = f"sqlite:///{tmp_path / 'ponder.db'}"

    def ponder(*args: str) -> dict:  # type: ignore[type-arg]
        proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", *args, "--json",
                               "--db", db], cwd=ROOT, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)  # type: ignore[no-any-return]

    doc = ponder(*command[1:])
    assert doc["status"] == "succeeded"
    assert doc["output"]["total_legs"] == 3 * 8 + 2 * 6  # the exact tool step, defaults
    assert isinstance(doc["output"]["answer"], str) and doc["output"]["answer"].strip()
    shown = ponder("show", doc["run_id"])
    llm_steps = [s for s in shown["steps"] if s["kind"] == "llm"]
    assert len(llm_steps) == 4
    for step in llm_steps:  # answered by the bundled model, not a stand-in
        assert step["meta"]["backend"] == "local", step
        assert step["meta"]["model"].startswith("SmolLM2-135M-Instruct"), step
        assert step["completion_tokens"] > 0, step
