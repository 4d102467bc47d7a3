"""AGoT: a thought whose parent is in its own layer goes on without that parent when it
fails, as a thought of a later layer does. Its step depended on the parent's (``after``)
and was skipped with it ("dependency 'p__t1' did not succeed"); now it is added once the
parent has ended, with the parent when it succeeded, without it when it failed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from orchestrator import Workflow
from planners.testing import ScriptedLLM, forever

pytestmark = pytest.mark.anyio
PlanWorkflow = Callable[..., Workflow]


def layer(*thoughts: dict[str, Any]) -> str:
    return json.dumps({"strategy": "s", "thoughts": list(thoughts)})


def _deps(recorder: Any) -> dict[str, list[str]]:
    return {s["id"]: s["deps"] for p in recorder.of("graph_patched") for s in p.steps}


async def test_a_thought_goes_on_without_a_failed_parent_of_its_own_layer(
        plan_workflow: PlanWorkflow, recorder: Any) -> None:
    llm = ScriptedLLM([
        ("Layer 1 of 2", layer({"thought": "slow one"},
                               {"thought": "child", "parents": [1], "final": True})),
        ("Thought: slow one", forever("x")),
        ("Thought: child", "the end"),
    ])
    wf = plan_workflow(llm, planner="agot", plan_timeout_s=0.3,
                       options={"max_layers": 2, "max_depth": 0})
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == "the end"
    status = {s.id: s.status for s in result.steps}
    assert status == {"p": "succeeded", "p__t1": "failed", "p__t2": "succeeded"}
    assert _deps(recorder)["p__t2"] == []
    (prompt,) = llm.prompts("Thought: child")
    assert "slow one" not in prompt  # left out of the thoughts after it


async def test_a_thought_builds_on_a_parent_of_its_own_layer_that_succeeded(
        plan_workflow: PlanWorkflow, recorder: Any) -> None:
    llm = ScriptedLLM([
        ("Layer 1 of 2", layer({"thought": "first"},
                               {"thought": "child", "parents": [1], "final": True})),
        ("Thought: first", "one"),
        ("Thought: child", "the end"),
    ], token_delay_s=0.01)
    wf = plan_workflow(llm, planner="agot", options={"max_layers": 2, "max_depth": 0})
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == "the end"
    assert _deps(recorder)["p__t2"] == ["p__t1"]
    (prompt,) = llm.prompts("Thought: child")
    assert "T1: first\n   Answer: one" in prompt
    assert (recorder.first("step_started", "p__t2").ts
            >= recorder.first("step_succeeded", "p__t1").ts)


async def test_a_thought_waits_only_for_its_own_parents_of_the_layer(
        plan_workflow: PlanWorkflow, recorder: Any) -> None:
    llm = ScriptedLLM([
        ("Layer 1 of 2", layer({"thought": "slow one"},
                               {"thought": "after slow", "parents": [1]},
                               {"thought": "fast one"},
                               {"thought": "after fast", "parents": [3], "final": True})),
        ("Thought: slow one", " ".join(["x"] * 30)),
        ("Thought: after slow", "b"),
        ("Thought: fast one", "c"),
        ("Thought: after fast", "the end"),
    ], token_delay_s=0.01)
    wf = plan_workflow(llm, planner="agot", max_plan_steps=8,
                       options={"max_layers": 2, "max_depth": 0, "max_nodes_per_layer": 4})
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == "the end"
    assert _deps(recorder) == {"p__t1": [], "p__t2": ["p__t1"], "p__t3": [],
                               "p__t4": ["p__t3"]}
    # T4 starts once T3 has answered, while T1 still writes
    assert (recorder.first("step_started", "p__t4").ts
            < recorder.first("step_succeeded", "p__t1").ts)
