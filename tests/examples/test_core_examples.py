"""Every core example runs on the simulated backend (the local model runs in CI's smoke)."""

from __future__ import annotations

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
