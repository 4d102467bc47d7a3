"""A plan step's `top_p` (nucleus sampling) reaches every LLM call its planner makes: the
plan and the joiner (LLMCompiler); the layers, checks, answers, nested graphs and the
final step (AGoT). Without it no call sends one."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from orchestrator import Workflow
from planners.testing import ScriptedLLM

pytestmark = pytest.mark.anyio
PlanWorkflow = Callable[..., Workflow]

JOINER = "Actions and observations"
FINISH = '{"action": "finish", "answer": "done"}'


def layer(*thoughts: dict[str, Any]) -> str:
    return json.dumps({"strategy": "s", "thoughts": list(thoughts)})


@pytest.mark.parametrize("top_p", [0.7, None])
async def test_llmcompiler_plan_and_joiner_calls_send_the_steps_top_p(
        plan_workflow: PlanWorkflow, top_p: float | None) -> None:
    llm = ScriptedLLM([(JOINER, FINISH), ("Question", '1. search("a")\n2. join()\n'
                                                       "<END_OF_PLAN>")])
    fields = {} if top_p is None else {"top_p": top_p}
    result = await plan_workflow(llm, tools=["search"], **fields).run()
    assert result.ok, result.error
    assert len(llm.calls) == 2  # the plan, the joiner
    assert [c.top_p for c in llm.calls] == [top_p, top_p]


async def test_agot_calls_and_the_steps_it_writes_send_the_steps_top_p(
        plan_workflow: PlanWorkflow) -> None:
    llm = ScriptedLLM([
        ("Layer 1 of 2", layer({"thought": "hard one", "final": True})),
        ("Layer 1 of 1", layer({"thought": "part x"})),
        ("Thought: hard one[\\s\\S]*Is this thought complex", '{"complex": true}'),
        ("Is this thought complex", '{"complex": false}'),
        ("final answer to the question", "nested final"),
        ("Answer this thought", "an answer"),
    ])
    wf = plan_workflow(llm, planner="agot", top_p=0.4, options={"max_layers": 2})
    result = await wf.run()
    assert result.ok, result.error
    asked = [c.messages[-1]["content"] for c in llm.calls]
    assert any("final answer to the question" in a for a in asked)  # the nested final step
    assert any("Is this thought complex" in a for a in asked)
    assert len(llm.calls) >= 5 and all(c.top_p == 0.4 for c in llm.calls)
