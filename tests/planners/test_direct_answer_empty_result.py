"""LLMCompiler's ``direct_answer``: the result a plan names with ``join($N)`` is the
answer only when it is one the joiner could give. A null (or blank) result was taken as
the run's output with no joiner call, where the joiner's ``Finish`` of it is a
``bad_joiner`` error; now the joiner decides, as when an action fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from orchestrator import Workflow
from planners.testing import ScriptedLLM

pytestmark = pytest.mark.anyio
PlanWorkflow = Callable[..., Workflow]

JOINER = "Actions and observations"


def nothing(kind: str) -> Any:
    """A result that is no answer: null, or blank text."""
    return None if kind == "none" else "  \n"


def _workflow(plan_workflow: PlanWorkflow, llm: ScriptedLLM) -> Workflow:
    wf = plan_workflow(llm, tools=["nothing", "lookup"], options={"direct_answer": True})
    wf.register_tool(nothing, "nothing")
    return wf


@pytest.mark.parametrize("kind", ["none", "blank"])
async def test_an_empty_named_result_goes_to_the_joiner(
        plan_workflow: PlanWorkflow, recorder: Any, kind: str) -> None:
    plan = f'1. nothing("{kind}")\n2. join($1)\n<END_OF_PLAN>'
    llm = ScriptedLLM([(JOINER, "Finish(no answer found)"), ("Question", plan)])
    result = await _workflow(plan_workflow, llm).run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == "no answer found"  # the joiner's, not the empty result
    assert len(llm.prompts(JOINER)) == 1
    decisions = recorder.first("step_succeeded", "p").meta["decisions"]
    assert decisions == [{"round": 1, "action": "finish", "answer": "no answer found",
                          "reason": None, "by": "joiner"}]  # no "the plan named $1"


async def test_a_falsy_result_that_is_an_answer_is_taken(
        plan_workflow: PlanWorkflow, recorder: Any) -> None:
    plan = '1. lookup("Atlantis")\n2. join($1)\n<END_OF_PLAN>'  # 0: an answer
    llm = ScriptedLLM([(JOINER, "Finish(joined)"), ("Question", plan)])
    result = await _workflow(plan_workflow, llm).run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == 0
    assert llm.prompts(JOINER) == []
