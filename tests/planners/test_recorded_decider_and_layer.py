"""A plan round's ``plan_decision`` event says who decided (``by``: the joiner, or the
plan that named its answer with ``direct_answer``), and an AGoT ``plan_error`` says the
layer whose proposal it rejected (``layer``). Neither was recorded: ``ponder show`` and
the viewer read them from the decision's reason and the error's text."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.store.fold import fold_events
from planners.testing import ScriptedLLM

pytestmark = pytest.mark.anyio
PlanWorkflow = Callable[..., Workflow]

JOINER = "Actions and observations"


@pytest.mark.parametrize(("plan", "by"), [
    ('1. lookup("Atlantis")\n2. join($1)\n<END_OF_PLAN>', "plan"),
    ('1. lookup("Atlantis")\n2. join()\n<END_OF_PLAN>', "joiner"),
])
async def test_a_decision_records_who_made_it(plan_workflow: PlanWorkflow, recorder: Any,
                                              plan: str, by: str) -> None:
    llm = ScriptedLLM([(JOINER, "Finish(joined)"), ("Question", plan)])
    wf = plan_workflow(llm, tools=["lookup"], options={"direct_answer": True})
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert [e.by for e in recorder.of("plan_decision")] == [by]
    assert [d["by"] for d in recorder.first("step_succeeded", "p").meta["decisions"]] == [by]


def layer(*thoughts: dict[str, object]) -> str:
    return json.dumps({"thoughts": list(thoughts)})


async def test_an_agot_plan_error_records_its_layer(plan_workflow: PlanWorkflow,
                                                    recorder: Any) -> None:
    llm = ScriptedLLM([
        ("Layer 1 of 2", ["no JSON", layer({"thought": "a"})]),
        ("Layer 2 of 2", [layer({"thought": "b", "parents": [9]}),
                          layer({"thought": "c", "parents": [1], "final": True})]),
        ("Thought: a[\\s\\S]*Is this thought complex", "perhaps"),
        ("Is this thought complex", '{"complex": false}'),
        ("Answer this thought", "an answer"),
    ])
    wf = plan_workflow(llm, planner="agot", max_plan_repairs=2, options={"max_layers": 2})
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    errors = sorted((e.step_id, e.code, e.layer) for e in recorder.of("plan_error"))
    # a thought's own error (its complexity check) is no layer's
    assert errors == [("p", "bad_reference", 2), ("p", "bad_thoughts", 1),
                      ("p__t1", "bad_check", None)]
    meta = recorder.first("step_succeeded", "p").meta
    assert [e.get("layer") for e in meta["plan_errors"]] == [1, 2]
    # the store's fold of a plan step that recorded no meta of its own keeps them too
    folded = fold_events([e for e in recorder.events if e.kind != "step_succeeded"])
    kept = (folded.step("p").meta or {})["plan_errors"]
    assert [e.get("layer") for e in kept] == [1, 2]
