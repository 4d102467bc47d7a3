"""What the plan-step driver does for every planner: the `tools:` allowlist, tagging each
planner and joiner LLM call with its run, step and priority, and counting the tokens of
calls that failed or were stopped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from orchestrator import Workflow
from planners.testing import ScriptedLLM, forever

pytestmark = pytest.mark.anyio
PlanWorkflow = Callable[..., Workflow]
Recorder = Any

JOINER = "Actions and observations"
FINISH = '{"action": "finish", "answer": "ok"}'
GOOD = '1. search("a")\n2. join()\n<END_OF_PLAN>'


# -- the allowlist, for planners other than LLMCompiler -----------------------------------
@pytest.mark.parametrize(("step", "shown"), [
    ({"id": "b", "kind": "tool", "tool": "search", "args": {"query": "x"}},
     "step 'p__b' calls tool 'search'"),
    ({"id": "b", "kind": "map", "over": [1, 2],
      "step": {"kind": "tool", "tool": "search", "args": {"query": "${item}"}}},
     "step 'p__b' calls tool 'search'"),
    ({"id": "b", "kind": "plan", "goal": "g", "planner": "static",
      "options": {"steps": [{"id": "c", "kind": "tool", "tool": "search",
                             "args": {"query": "x"}}]}},
     "step 'p__b' is a plan that may call '(any tool)'"),
])
async def test_a_static_step_outside_the_allowlist_is_a_plan_error(
        plan_workflow: PlanWorkflow, recorder: Recorder, step: dict[str, Any],
        shown: str) -> None:
    steps = [{"id": "a", "kind": "tool", "tool": "calc", "args": {"expression": "1 + 1"}},
             step]
    wf = plan_workflow(ScriptedLLM(), planner="static", tools=["calc", "lookup"],
                       max_plan_repairs=0, options={"steps": steps, "output": "a"})
    result = await wf.run(hooks=[recorder])
    assert result.status == "failed"
    (error,) = recorder.of("plan_error")
    assert error.code == "unknown_tool"
    assert shown in error.error and "(allowed: calc, lookup)" in error.error
    assert shown in (result.error or "")
    started = {e.step_id for e in recorder.of("step_started")}
    assert "p__b" not in started and not any(s.startswith("p__b") for s in started)
    assert recorder.first("step_succeeded", "p__a").output == 2  # kept


async def test_static_steps_inside_the_allowlist_run(plan_workflow: PlanWorkflow) -> None:
    steps = [{"id": "a", "kind": "tool", "tool": "calc", "args": {"expression": "1 + 1"}},
             {"id": "b", "kind": "plan", "goal": "g", "planner": "static", "tools": ["calc"],
              "options": {"steps": [{"id": "c", "kind": "tool", "tool": "calc",
                                     "args": {"expression": "2 * 3"}}]}}]
    wf = plan_workflow(ScriptedLLM(), planner="static", tools=["calc"],
                       options={"steps": steps})
    result = await wf.run()
    assert result.ok and result.output == 6, result.error


# -- run id, step id, priority ------------------------------------------------------------
async def test_planner_and_joiner_calls_carry_the_run_the_step_and_its_priority(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    llm = ScriptedLLM([(JOINER, FINISH), ("Question", GOOD)])
    wf = plan_workflow(llm)
    priority = wf.compile().remaining_critical_path()["p"]  # what its Task carries
    assert priority > 0
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert len(llm.calls) == 2  # the plan and the joiner
    assert [(c.run_id, c.step_id, c.priority) for c in llm.calls] == [
        (result.run_id, "p", priority)] * 2


# -- tokens of calls that failed or were stopped ------------------------------------------
async def test_a_failed_plan_step_reports_the_tokens_it_spent(plan_workflow: PlanWorkflow,
                                                              recorder: Recorder) -> None:
    # the joiner stalls: it is stopped at plan_timeout_s, and the step fails; its event
    # counts the plan's tokens and those the stopped joiner call had streamed
    llm = ScriptedLLM([(JOINER, forever("{")), ("Question", GOOD)], token_delay_s=0.002)
    wf = plan_workflow(llm, plan_timeout_s=0.3, max_plan_repairs=0)
    result = await wf.run(hooks=[recorder])
    assert result.status == "failed"
    failed = recorder.first("step_failed", "p")
    plan_prompt = sum(len(m["content"]) for m in llm.calls[0].messages) // 4
    joiner_prompt = sum(len(m["content"]) for m in llm.calls[1].messages) // 4
    assert failed.usage.prompt_tokens == plan_prompt + joiner_prompt
    assert failed.usage.completion_tokens > 5 + 20  # the plan's 5, the joiner's many
    assert llm.cancelled == 1
