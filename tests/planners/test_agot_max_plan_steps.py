"""`max_plan_steps` bounds the thoughts an AGoT graph adds, all its layers together (it
was ignored: only `max_layers` x `max_nodes_per_layer` bounded a graph). A layer that
would pass it is a `too_many_steps` plan error, asked again as LLMCompiler's over-long
plan is; once the thoughts are spent the graph's final step answers. A nested graph has
the same bound."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from orchestrator import Workflow
from planners.testing import ScriptedLLM

pytestmark = pytest.mark.anyio
PlanWorkflow = Callable[..., Workflow]
Recorder = Any

NOT_COMPLEX = ("Is this thought complex", '{"complex": false}')
ANSWER = ("Answer this thought", "an answer")
FINAL = ("final answer to the question", "the final answer")


def layer(*thoughts: str) -> str:
    return json.dumps({"strategy": "s", "thoughts": [{"thought": t} for t in thoughts]})


async def test_a_layer_past_max_plan_steps_is_a_plan_error_and_the_graph_ends(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    llm = ScriptedLLM([
        ("Layer 1 of 3", layer("a", "b")),
        ("Layer 2 of 3", [layer("c", "d"), layer("c")]),
        NOT_COMPLEX, ANSWER, FINAL,
    ])
    wf = plan_workflow(llm, planner="agot", max_plan_steps=3,
                       options={"max_layers": 3, "max_nodes_per_layer": 3})
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == "the final answer"
    (error,) = recorder.of("plan_error")
    assert error.code == "too_many_steps" and error.will_retry
    assert error.error == ("layer 2: 2 thoughts would make 4 in the graph; at most 3 "
                             "(max_plan_steps): 1 more")
    assert "propose 1 to 1 new thoughts" in llm.prompts("Layer 2 of 3")[0]
    assert not llm.prompts("Layer 3 of 3")  # the thoughts are spent: the final step answers
    added = [s["id"] for p in recorder.of("graph_patched") for s in p.steps]
    assert added == ["p__t1", "p__t2", "p__t3", "p__final"]


async def test_a_nested_graph_has_the_same_bound(plan_workflow: PlanWorkflow,
                                                 recorder: Recorder) -> None:
    llm = ScriptedLLM([
        ("Layer 1 of 2", json.dumps({"thoughts": [{"thought": "hard", "final": True}]})),
        ("Layer 1 of 1", [layer("x", "y"), layer("x")]),
        ("Thought: hard[\\s\\S]*Is this thought complex", '{"complex": true}'),
        ANSWER, FINAL,
    ])
    wf = plan_workflow(llm, planner="agot", max_plan_steps=1, options={"max_layers": 2})
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    (error,) = recorder.of("plan_error")
    assert (error.step_id, error.code) == ("p__t1", "too_many_steps"), error


async def test_the_default_bounds_no_graph_the_other_options_allow(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    ten = layer(*"abcdefghij")
    llm = ScriptedLLM([("Layer", ten), NOT_COMPLEX, ANSWER, FINAL])
    wf = plan_workflow(llm, planner="agot", max_plan_steps=30,
                       options={"max_layers": 3, "max_nodes_per_layer": 10, "max_depth": 0})
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert not recorder.of("plan_error")
    assert len([s for p in recorder.of("graph_patched") for s in p.steps]) == 31
