"""A plan stream stopped at plan_timeout_s says what became of its actions: it said "the
actions it had written keep running" in every case, also when it had written none, and
when, without streaming dispatch, the ones it had written never started."""

from __future__ import annotations

import pytest

from planners.testing import ScriptedLLM, forever
from tests.planners.conftest import PlanWorkflow, Recorder

pytestmark = pytest.mark.anyio
JOINER = "Actions and observations"
FINISH = '{"action": "finish", "answer": "ok"}'
GOOD = '1. search("a")\n2. join()\n<END_OF_PLAN>'
STOPPED = "the planner did not finish its plan within plan_timeout_s=0.3s; "


@pytest.mark.parametrize("endless, stream_dispatch, said, ran", [
    ("Thought: let me think", True, "no action of it had started", []),
    ('1. search("a")\n', False, "no action of it had started", []),
    ('1. search("a")\n', True, "the action of it that had started keeps running", ["p__1"]),
    ('1. search("a")\n2. search("b")\n', True,
     "the 2 actions of it that had started keep running", ["p__1", "p__2"]),
])
async def test_the_timeout_says_which_actions_keep_running(
        plan_workflow: PlanWorkflow, recorder: Recorder, endless: str, stream_dispatch: bool,
        said: str, ran: list[str]) -> None:
    llm = ScriptedLLM([(JOINER, FINISH), ("Question", [forever(endless), GOOD])],
                      token_delay_s=0.001)
    result = await plan_workflow(llm, plan_timeout_s=0.3,
                                 options={"stream_dispatch": stream_dispatch}
                                 ).run(hooks=[recorder])
    assert result.ok, result.error
    (error,) = recorder.of("plan_error")
    assert error.error == STOPPED + said
    # what the first try started ran once, and the repair (which repeats `1. search("a")`)
    # took p__1 over; without streaming dispatch p__1 ran only from the repair
    started = [e.step_id for e in recorder.of("step_started") if e.step_id != "p"]
    assert sorted(started) == sorted({*ran, "p__1"}), started


async def test_a_repeated_action_of_an_earlier_try_counts_as_started(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    endless = '1. search("a")\n'
    llm = ScriptedLLM([(JOINER, FINISH), ("Question", forever(endless))],
                      token_delay_s=0.001)
    result = await plan_workflow(llm, plan_timeout_s=0.3, max_plan_repairs=1
                                 ).run(hooks=[recorder])
    assert result.status == "failed"
    assert [e.error for e in recorder.of("plan_error")] == [
        STOPPED + "the action of it that had started keeps running"] * 2
    assert recorder.first("step_succeeded", "p__1").output == "result for a"
