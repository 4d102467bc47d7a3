"""Bad planner and joiner output never crashes a run: each problem is a recorded
`plan_error` with a readable message, the planner is asked again, and every result
already produced is kept."""

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


async def test_a_malformed_plan_is_recorded_and_repaired(plan_workflow: PlanWorkflow,
                                                         recorder: Recorder) -> None:
    broken = '1. search("a")\n2. search("b")\n3. frobnicate("c")\n4. join()\n<END_OF_PLAN>'
    repaired = '3. calc("1 + 1")\n4. join()\n<END_OF_PLAN>'
    llm = ScriptedLLM([(JOINER, FINISH), ("rejected", repaired), ("Question", broken)])
    result = await plan_workflow(llm).run(hooks=[recorder])
    assert result.ok, result.error
    (error,) = recorder.of("plan_error")
    assert (error.step_id, error.round, error.attempt, error.code, error.line) == (
        "p", 1, 1, "unknown_tool", 3)
    assert "frobnicate" in error.error and error.error.startswith("line 3: ")
    assert error.raw.startswith('1. search("a")') and error.will_retry
    repair_prompt = llm.prompts("rejected")[0]
    assert "line 3: tool 'frobnicate' is not allowed" in repair_prompt
    assert '1. search("a")' in repair_prompt and "Number new actions from 3" in repair_prompt
    # the actions before the bad line ran and stay part of the plan
    ran = [e.step_id for e in recorder.of("step_succeeded")]
    assert {"p__1", "p__2", "p__3", "p"} <= set(ran)
    meta = recorder.first("step_succeeded", "p").meta
    assert meta["plan_errors"][0]["code"] == "unknown_tool"
    assert error.by == "planner" and meta["plan_errors"][0]["by"] == "planner"


async def test_when_repairs_run_out_the_step_fails_with_the_raw_plan(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    broken = '1. search("a")\n2. search($5)\n3. join()'
    llm = ScriptedLLM([(JOINER, FINISH), ("Question", broken)])
    result = await plan_workflow(llm, max_plan_repairs=2).run(hooks=[recorder])
    assert result.status == "failed"
    errors = recorder.of("plan_error")
    assert [(e.attempt, e.will_retry) for e in errors] == [(1, True), (2, True), (3, False)]
    failed = recorder.first("step_failed", "p")
    assert failed.error_type == "PlanFailed"
    assert "rejected 3 times (max_plan_repairs=2)" in failed.error
    assert "$5" in failed.error and failed.raw is not None and "search($5)" in failed.raw
    # no lost results: the valid first action of every try ran
    kept = {e.step_id: e.output for e in recorder.of("step_succeeded")}
    assert kept["p__1"] == "result for a"
    assert len(llm.prompts("Question")) == 3


async def test_a_tool_outside_the_allowlist(plan_workflow: PlanWorkflow,
                                            recorder: Recorder) -> None:
    llm = ScriptedLLM([(JOINER, FINISH), ("rejected", GOOD),
                       ("Question", '1. calc("2 + 2")\n2. join()')])
    result = await plan_workflow(llm, tools=["search"]).run(hooks=[recorder])
    assert result.ok
    (error,) = recorder.of("plan_error")
    assert error.code == "unknown_tool" and "(allowed: search)" in error.error
    assert "calc" not in llm.calls[0].messages[0]["content"].split("Tools:")[1].split("\n\n")[0]
    assert not any(e.kind == "step_started" and e.input.get("tool") == "calc"
                   for e in recorder.events)


async def test_a_plan_over_the_step_limit(plan_workflow: PlanWorkflow,
                                          recorder: Recorder) -> None:
    long = "".join(f'{i}. search("q{i}")\n' for i in range(1, 7)) + "7. join()"
    llm = ScriptedLLM([(JOINER, FINISH), ("rejected", "join()"), ("Question", long)])
    result = await plan_workflow(llm, max_plan_steps=3).run(hooks=[recorder])
    assert result.ok, result.error
    (error,) = recorder.of("plan_error")
    assert (error.code, error.line) == ("too_many_steps", 4)
    started = sorted({e.step_id for e in recorder.of("step_started")} - {"p"})
    assert started == ["p__1", "p__2", "p__3"]  # the 4th line was never dispatched


async def test_repairs_cannot_grow_a_plan_past_the_step_limit(plan_workflow: PlanWorkflow,
                                                              recorder: Recorder) -> None:
    # the first try starts 1 and 2 and is rejected at 3; a repair continuing with 3 and 4
    # would give the round four actions under max_plan_steps=2
    llm = ScriptedLLM([(JOINER, FINISH), ("rejected", ['3. search("c")\n4. search("d")\n5. join()',
                                                      "join()"]),
                       ("Question", '1. search("a")\n2. search("b")\n3. search("c")\n4. join()')])
    result = await plan_workflow(llm, max_plan_steps=2).run(hooks=[recorder])
    assert result.ok, result.error
    errors = recorder.of("plan_error")
    assert [(e.code, e.line) for e in errors] == [("too_many_steps", 3), ("too_many_steps", 1)]
    assert "counting the 2 an earlier try of this plan started" in errors[1].error
    started = sorted({e.step_id for e in recorder.of("step_started")} - {"p"})
    assert started == ["p__1", "p__2"]


async def test_a_planner_that_streams_forever_is_stopped(plan_workflow: PlanWorkflow,
                                                         recorder: Recorder) -> None:
    llm = ScriptedLLM([(JOINER, FINISH), ("Question", [forever('1. search("a")\n'), GOOD])],
                      token_delay_s=0.001)
    result = await plan_workflow(llm, plan_timeout_s=0.2).run(hooks=[recorder])
    assert result.ok, result.error
    (error,) = recorder.of("plan_error")
    assert error.code == "timeout" and "plan_timeout_s" in error.error
    assert llm.cancelled == 1  # the endless stream was closed at the engine
    assert recorder.first("step_succeeded", "p__1").output == "result for a"


async def test_a_joiner_that_answers_neither_finish_nor_replan(plan_workflow: PlanWorkflow,
                                                               recorder: Recorder) -> None:
    llm = ScriptedLLM([(JOINER, "I am not sure what to do."), ("Question", GOOD)])
    result = await plan_workflow(llm, max_plan_repairs=1).run(hooks=[recorder])
    assert result.status == "failed"
    errors = recorder.of("plan_error")
    assert [(e.code, e.will_retry) for e in errors] == [("bad_joiner", True),
                                                        ("bad_joiner", False)]
    assert "neither Finish(answer) nor Replan(reason)" in errors[0].error
    failed = recorder.first("step_failed", "p")
    assert "joiner" in failed.error and failed.raw == "I am not sure what to do."
    assert recorder.first("step_succeeded", "p__1").output == "result for a"
    assert "could not be read" in llm.prompts(JOINER)[1]


async def test_a_joiner_that_replans_past_max_replans(plan_workflow: PlanWorkflow,
                                                      recorder: Recorder) -> None:
    llm = ScriptedLLM([(JOINER, '{"action": "replan", "reason": "never enough"}'),
                       ("not enough", '2. search("b")\n3. join()'), ("Question", GOOD)])
    result = await plan_workflow(llm, max_replans=1).run(hooks=[recorder])
    assert result.status == "failed"
    assert "after max_replans=1 replan: never enough" in (result.error or "")
    assert [d.action for d in recorder.of("plan_decision")] == ["replan", "replan"]
    assert llm.calls[-1].json_schema is not None
    assert llm.calls[-1].json_schema["properties"]["action"] == {"const": "finish"}


async def test_garbage_from_the_planner(plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    llm = ScriptedLLM([(JOINER, FINISH), ("Question", "\x00\x01 }{ )( $$$ <END_OF_PLAN> ?")])
    result = await plan_workflow(llm, max_plan_repairs=0).run(hooks=[recorder])
    assert result.status == "failed"
    assert [e.code for e in recorder.of("plan_error")] == ["garbage"]


async def test_configuration_errors_are_readable(plan_workflow: PlanWorkflow) -> None:
    from orchestrator.errors import ValidationFailed

    llm = ScriptedLLM()
    # an unknown planner or tool is found when the workflow is compiled, before it runs
    with pytest.raises(ValidationFailed) as info:
        await plan_workflow(llm, planner="nonesuch").run()
    assert "unknown planner 'nonesuch'" in str(info.value) and "llmcompiler" in str(info.value)
    with pytest.raises(ValidationFailed, match="unknown tool 'teleport'"):
        await plan_workflow(llm, tools=["search", "teleport"]).run()
    # so are the planner's options, with every option the user may set
    with pytest.raises(ValidationFailed) as info:
        await plan_workflow(llm, options={"stream": True}).run()
    assert ("llmcompiler options: unknown option 'stream' (known: stream_dispatch, "
            "examples, direct_answer)") in str(info.value)
    assert llm.prompts() == []  # nothing ran


async def test_a_transient_backend_error_retries_the_step_with_fresh_ids(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    from orchestrator.errors import BackendHTTPError
    from orchestrator.runtime.contracts import LLMRequest

    def unavailable(request: LLMRequest) -> str:
        raise BackendHTTPError("503 from the fake engine", status=503)

    llm = ScriptedLLM([(JOINER, FINISH), ("Question", [unavailable, GOOD])])
    wf = plan_workflow(llm, retry={"max_attempts": 2, "initial_backoff_s": 0.01})
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert [e.attempt for e in recorder.of("step_retrying")] == [1]
    assert recorder.first("step_succeeded", "p__a2_1").output == "result for a"


async def test_a_joiner_answer_naming_a_result_takes_it_typed(plan_workflow: PlanWorkflow,
                                                              recorder: Recorder) -> None:
    llm = ScriptedLLM([(JOINER, "Thought: Paris is known.\nAction: Finish($1)"),
                       ("Question", '1. lookup("Paris")\n2. join()\n<END_OF_PLAN>')])
    result = await plan_workflow(llm).run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == 2000  # lookup's int, not the text "$1"
    assert [(d.action, d.answer) for d in recorder.of("plan_decision")] == [("finish", 2000)]


async def test_an_empty_or_unresolved_finish_is_recorded_and_asked_again(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    llm = ScriptedLLM([(JOINER, ["Finish()", "Finish($7)", "No need to replan.",
                                 '{"action": "finish", "answer": "$1"}']),
                       ("Question", GOOD)])
    result = await plan_workflow(llm, max_plan_repairs=3).run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == "result for a"
    errors = recorder.of("plan_error")
    assert [e.code for e in errors] == ["bad_joiner"] * 3
    assert "finished without an answer: 'Finish()'" in errors[0].error
    assert "names action 7, which has no result" in errors[1].error
    assert "neither Finish(answer) nor Replan(reason)" in errors[2].error
    assert len(recorder.of("plan_decision")) == 1  # only the last answer decided


async def test_a_stalled_joiner_is_stopped_at_plan_timeout_s(plan_workflow: PlanWorkflow,
                                                             recorder: Recorder) -> None:
    llm = ScriptedLLM([(JOINER, [forever(""), FINISH]), ("Question", GOOD)],
                      token_delay_s=0.001)
    result = await plan_workflow(llm, plan_timeout_s=0.3).run(hooks=[recorder])
    assert result.ok, result.error  # asked again, as for any bad joiner answer
    (error,) = recorder.of("plan_error")
    assert (error.code, error.will_retry) == ("timeout", True)
    assert error.error == ("the joiner did not finish within plan_timeout_s=0.3s; the call "
                           "was stopped")
    assert llm.cancelled == 1


async def test_when_the_joiner_always_stalls_the_step_fails_keeping_results(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    llm = ScriptedLLM([(JOINER, forever("")), ("Question", GOOD)], token_delay_s=0.001)
    result = await plan_workflow(llm, plan_timeout_s=0.2, max_plan_repairs=1).run(
        hooks=[recorder])
    assert result.status == "failed"
    assert [(e.code, e.will_retry) for e in recorder.of("plan_error")] == [
        ("timeout", True), ("timeout", False)]
    failed = recorder.first("step_failed", "p")
    assert "the joiner gave no usable answer in 2 tries" in failed.error
    assert "did not finish within plan_timeout_s=0.2s" in failed.error
    assert recorder.first("step_succeeded", "p__1").output == "result for a"


async def test_a_joiner_answer_cut_at_max_tokens_says_so(plan_workflow: PlanWorkflow,
                                                         recorder: Recorder) -> None:
    long = '{"thought": "' + "word " * 40 + '", "action": "finish", "answer": "x"}'
    llm = ScriptedLLM([(JOINER, long), ("Question", GOOD)], max_tokens_cut=True)
    result = await plan_workflow(llm, max_tokens=12, max_plan_repairs=0).run(
        hooks=[recorder])
    assert result.status == "failed"
    (error,) = recorder.of("plan_error")
    assert error.code == "truncated"
    assert error.error == ("the model stopped at max_tokens=12 before its answer was "
                           "complete; raise max_tokens")


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_a_lone_surrogate_in_an_argument_is_a_plan_error_and_a_pair_one_character(
        plan_workflow: PlanWorkflow, recorder: Recorder, fmt: str) -> None:
    # a lone "\ud800" reached the tool and the run's output, which `ponder run` could not
    # print (exit 2, UnicodeEncodeError); a pair ("\ud83d\ude00") stayed two halves in a
    # text plan where JSON reads one character
    if fmt == "text":
        bad = '1. search("a\\ud800")\n2. join()\n<END_OF_PLAN>'
        good = '1. search("\\ud83d\\ude00")\n2. join()\n<END_OF_PLAN>'
    else:
        bad = '{"actions": [{"id": 1, "tool": "search", "args": {"query": "a\\ud800"}}]}'
        good = '{"actions": [{"id": 1, "tool": "search", "args": {"query": "\\ud83d\\ude00"}}]}'
    llm = ScriptedLLM([(JOINER, "Finish($1)"), ("rejected", good), ("Question", bad)])
    result = await plan_workflow(llm, format=fmt).run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == "result for \U0001f600"
    (error,) = recorder.of("plan_error")
    assert error.code == "bad_args" and "\\ud800" in error.error and error.will_retry
    assert [e.step_id for e in recorder.of("step_started")] == ["p", "p__1"]


async def test_a_bad_joiner_answer_is_recorded_as_the_joiners(plan_workflow: PlanWorkflow,
                                                              recorder: Recorder) -> None:
    # a joiner answer that is no decision is the joiner's try 1 of round 1, not the planner's
    llm = ScriptedLLM([(JOINER, ["not a decision at all", FINISH]), ("Question", GOOD)])
    result = await plan_workflow(llm).run(hooks=[recorder])
    assert result.ok, result.error
    (error,) = recorder.of("plan_error")
    assert (error.round, error.attempt, error.code, error.by) == (1, 1, "bad_joiner", "joiner")
    meta = recorder.first("step_succeeded", "p").meta
    assert meta["plan_errors"][0]["by"] == "joiner"
