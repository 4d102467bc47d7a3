"""Issue #4's "bad input" besides malformed plans, in the text and the JSON plan format:
a tool outside the allowlist, a plan over the step limit, a planner that streams
forever, a joiner that answers neither Finish nor Replan. Each is a recorded, readable
``plan_error`` and no result is lost (test_bad_input.py covers the text format's
details)."""

from __future__ import annotations

import json
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
FORMATS = ["text", "json"]


def plan(fmt: str, *calls: tuple[str, dict[str, Any]], end: bool = True) -> str:
    """A plan of ``(tool, args)`` calls numbered from 1, in ``fmt``."""
    if fmt == "text":
        lines = [f"{i}. {tool}({', '.join(json.dumps(v) for v in args.values())})"
                 for i, (tool, args) in enumerate(calls, 1)]
        return "\n".join(lines) + (f"\n{len(calls) + 1}. join()\n<END_OF_PLAN>" if end else "\n")
    actions = [json.dumps({"id": i, "tool": tool, "args": args})
               for i, (tool, args) in enumerate(calls, 1)]
    return '{"actions": [\n' + ",\n".join(actions) + ("\n]}" if end else ",\n")


SEARCH_A = ("search", {"query": "a"})
LINE = {"text": 0, "json": 1}  # a JSON plan's action N is on line N + 1


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_tool_outside_the_allowlist(plan_workflow: PlanWorkflow, recorder: Recorder,
                                            fmt: str) -> None:
    bad = plan(fmt, SEARCH_A, ("calc", {"expression": "2 + 2"}))
    llm = ScriptedLLM([(JOINER, FINISH), ("rejected", plan(fmt, SEARCH_A)), ("Question", bad)])
    result = await plan_workflow(llm, format=fmt, tools=["search"]).run(hooks=[recorder])
    assert result.ok, result.error
    (error,) = recorder.of("plan_error")
    assert (error.code, error.line) == ("unknown_tool", 2 + LINE[fmt])
    assert error.error == (f"line {2 + LINE[fmt]}: tool 'calc' is not allowed here "
                           "(allowed: search)")
    assert not any(e.kind == "step_started" and e.input.get("tool") == "calc"
                   for e in recorder.events)
    assert recorder.first("step_succeeded", "p__1").output == "result for a"


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_plan_over_the_step_limit(plan_workflow: PlanWorkflow, recorder: Recorder,
                                          fmt: str) -> None:
    long = plan(fmt, *(("search", {"query": f"q{i}"}) for i in range(1, 7)))
    llm = ScriptedLLM([(JOINER, FINISH), ("rejected", "join()" if fmt == "text" else
                                          '{"actions": [{"id": 4, "tool": "join", "args": {}}]}'),
                       ("Question", long)])
    result = await plan_workflow(llm, format=fmt, max_plan_steps=3).run(hooks=[recorder])
    assert result.ok, result.error
    (error,) = recorder.of("plan_error")
    assert (error.code, error.line) == ("too_many_steps", 4 + LINE[fmt])
    assert error.error.endswith("the plan has more than 3 actions (max_plan_steps)")
    started = sorted({e.step_id for e in recorder.of("step_started")} - {"p"})
    assert started == ["p__1", "p__2", "p__3"]  # the 4th action was never dispatched
    assert {e.step_id: e.output for e in recorder.of("step_succeeded")}["p__3"] == \
        "result for q3"


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_planner_that_streams_forever_is_stopped(plan_workflow: PlanWorkflow,
                                                         recorder: Recorder, fmt: str) -> None:
    endless = forever(plan(fmt, SEARCH_A, end=False))
    llm = ScriptedLLM([(JOINER, FINISH), ("Question", [endless, plan(fmt, SEARCH_A)])],
                      token_delay_s=0.001)
    result = await plan_workflow(llm, format=fmt, plan_timeout_s=0.3).run(hooks=[recorder])
    assert result.ok, result.error
    (error,) = recorder.of("plan_error")
    assert error.code == "timeout" and "plan_timeout_s=0.3" in error.error
    assert error.raw is not None and error.raw.startswith(plan(fmt, SEARCH_A, end=False))
    assert llm.cancelled == 1  # the endless stream was closed at the engine
    # the action it had written ran, and the next try took it over, not again
    assert recorder.first("step_succeeded", "p__1").output == "result for a"
    assert [e.step_id for e in recorder.of("step_started")].count("p__1") == 1


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_planner_that_always_streams_forever_fails_the_step_keeping_results(
        plan_workflow: PlanWorkflow, recorder: Recorder, fmt: str) -> None:
    llm = ScriptedLLM([(JOINER, FINISH), ("Question", forever(plan(fmt, SEARCH_A, end=False)))],
                      token_delay_s=0.001)
    result = await plan_workflow(llm, format=fmt, plan_timeout_s=0.2,
                                 max_plan_repairs=1).run(hooks=[recorder])
    assert result.status == "failed"
    assert [(e.code, e.will_retry) for e in recorder.of("plan_error")] == [
        ("timeout", True), ("timeout", False)]
    failed = recorder.first("step_failed", "p")
    assert "rejected 2 times (max_plan_repairs=1)" in failed.error
    assert "plan_timeout_s=0.2" in failed.error and failed.raw
    assert recorder.first("step_succeeded", "p__1").output == "result for a"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("answer", ["I am not sure what to do.", '{"action": "maybe"}',
                                    "Thought: more data.\nAction: Ponder()", ""])
async def test_a_joiner_that_answers_neither_finish_nor_replan(
        plan_workflow: PlanWorkflow, recorder: Recorder, fmt: str, answer: str) -> None:
    llm = ScriptedLLM([(JOINER, answer), ("Question", plan(fmt, SEARCH_A))])
    result = await plan_workflow(llm, format=fmt, max_plan_repairs=1).run(hooks=[recorder])
    assert result.status == "failed"
    errors = recorder.of("plan_error")
    assert [(e.code, e.will_retry, e.by) for e in errors] == [
        ("bad_joiner", True, "joiner"), ("bad_joiner", False, "joiner")]
    assert all("Traceback" not in e.error and e.error for e in errors)
    failed = recorder.first("step_failed", "p")
    assert "joiner" in failed.error and failed.raw == answer
    assert recorder.first("step_succeeded", "p__1").output == "result for a"
