"""A plan step's attempt that ends without its answer (its ``timeout_s`` passes, a planner
call fails) stops the actions it added: a running one is cancelled at its executor, a
waiting one before it starts, each recorded as cancelled, and none starts after the
attempt ended. They used to go on beside the retry: an action of the dead attempt started
after the retry had answered, and the run waited for it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import anyio
import pytest
import yaml

from orchestrator import Workflow
from orchestrator.errors import BackendUnavailable
from orchestrator.runtime.contracts import LLMRequest
from planners.testing import ScriptedLLM

pytestmark = pytest.mark.anyio

RETRY = {"max_attempts": 2, "initial_backoff_s": 0, "jitter": 0}
JOIN = ("Actions and observations", "Finish($2)")


def _workflow(llm: ScriptedLLM, calls: Counter[str], **fields: Any) -> Workflow:
    """One plan step ``p`` over ``slow`` (its first call outlasts the step's timeout_s)
    and ``echo``, which count their calls."""
    async def slow(x: str) -> str:
        """Slow the first time."""
        calls["slow"] += 1
        if calls["slow"] == 1:
            await anyio.sleep(3)
        return x

    async def echo(x: str) -> str:
        """Echo."""
        calls["echo"] += 1
        return x

    doc = {"name": "t", "models": {"default": {"backend": "scripted"}},
           "steps": [{"id": "p", "kind": "plan", "goal": "the question",
                      "tools": ["slow", "echo"], **fields}]}
    wf = Workflow.from_yaml_text(yaml.safe_dump(doc))
    wf.register_backend("scripted", llm.factory)
    wf.register_tool(slow, "slow")
    wf.register_tool(echo, "echo")
    return wf


def _ts(recorder: Any, kind: str, step_id: str) -> float:
    return float(recorder.first(kind, step_id).ts)


async def test_a_timed_out_attempt_s_actions_are_cancelled_and_none_starts_after_it(
        recorder: Any) -> None:
    plan = '1. slow("a")\n2. echo($1)\n3. join()\n<END_OF_PLAN>'
    llm = ScriptedLLM([JOIN, ("Question", [plan, plan])])
    calls: Counter[str] = Counter()
    wf = _workflow(llm, calls, timeout_s=0.5, retry=RETRY)
    with anyio.fail_after(10):
        result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == "a"
    status = {s.id: s.status for s in result.steps}
    assert status == {"p": "succeeded", "p__1": "cancelled", "p__2": "cancelled",
                      "p__a2_1": "succeeded", "p__a2_2": "succeeded"}
    # the running action is stopped, the waiting one never starts
    assert not [e for e in recorder.of("step_started") if e.step_id == "p__2"]
    assert calls == Counter(slow=2, echo=1)
    retried = _ts(recorder, "step_retrying", "p")
    assert _ts(recorder, "step_cancelled", "p__1") >= retried - 0.01
    assert _ts(recorder, "step_cancelled", "p__1") < retried + 1
    finished = recorder.of("run_finished")[0].ts
    assert finished - retried < 1  # the run does not wait for attempt 1's slow call


async def test_an_attempt_failing_on_a_planner_call_cancels_its_actions(
        recorder: Any) -> None:
    def broken(request: LLMRequest) -> Iterable[str]:
        # the plan's first action is dispatched, then the engine goes away
        yield from ['1. slow("a")\n', "2. echo($1)\n"]
        raise BackendUnavailable("the engine went away")

    plan = '1. slow("b")\n2. echo($1)\n3. join()\n<END_OF_PLAN>'
    llm = ScriptedLLM([JOIN, ("Question", [broken, plan])], token_delay_s=0.01)
    calls: Counter[str] = Counter()
    wf = _workflow(llm, calls, retry=RETRY)
    with anyio.fail_after(10):
        result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == "b"
    status = {s.id: s.status for s in result.steps}
    assert status["p__1"] == "cancelled" and status["p__2"] == "cancelled"
    assert not [e for e in recorder.of("step_started") if e.step_id == "p__2"]


async def test_a_static_plan_s_cancelled_steps_do_not_fail_the_retried_run(
        recorder: Any) -> None:
    steps = [{"id": "a", "kind": "tool", "tool": "slow", "args": {"x": "s"}},
             {"id": "b", "kind": "tool", "tool": "echo", "args": {"x": "${steps.a.output}"}}]
    calls: Counter[str] = Counter()
    wf = _workflow(ScriptedLLM([]), calls, planner="static", options={"steps": steps},
                   timeout_s=0.5, retry=RETRY)
    with anyio.fail_after(10):
        result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    status = {s.id: s.status for s in result.steps}
    assert status == {"p": "succeeded", "p__a": "cancelled", "p__b": "cancelled",
                      "p__a2_a": "succeeded", "p__a2_b": "succeeded"}
    assert calls == Counter(slow=2, echo=1)


async def test_the_last_attempt_timing_out_cancels_its_actions_and_fails_the_run(
        recorder: Any) -> None:
    plan = '1. slow("a")\n2. echo($1)\n3. join()\n<END_OF_PLAN>'
    llm = ScriptedLLM([JOIN, ("Question", plan)])
    calls: Counter[str] = Counter()
    wf = _workflow(llm, calls, timeout_s=0.5, retry={"max_attempts": 1})
    with anyio.fail_after(10):
        result = await wf.run(hooks=[recorder])
    assert result.status == "failed"
    assert "step 'p' failed" in (result.error or "") and "timed out" in (result.error or "")
    status = {s.id: s.status for s in result.steps}
    assert status == {"p": "failed", "p__1": "cancelled", "p__2": "cancelled"}
    assert calls == Counter(slow=1)
