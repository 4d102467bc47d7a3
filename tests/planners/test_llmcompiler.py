"""LLMCompiler plans run end to end on the scripted backend: streaming dispatch, typed
references, replanning with continued ids, JSON mode, the trace."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.runtime.contracts import LLMRequest
from planners.testing import ScriptedLLM

pytestmark = pytest.mark.anyio
PlanWorkflow = Callable[..., Workflow]
Recorder = Any

JOINER = "Actions and observations"
FINISH = '{"action": "finish", "answer": "done"}'


def timed_plan(text: str, ended: list[float]) -> object:
    """An answer that streams ``text`` word by word and notes when it ended."""
    import re

    def pieces(request: LLMRequest) -> Iterable[str]:
        yield from re.findall(r"\s*\S+|\s+", text)
        ended.append(time.time())

    return pieces


async def test_actions_start_while_the_plan_is_still_streaming(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    plan = ('1. search("a")\n2. search("b")\n' + "Thought: " + "padding " * 20 +
            '\n3. calc("1 + 1")\n4. join()\n<END_OF_PLAN>')
    ended: list[float] = []
    llm = ScriptedLLM([(JOINER, FINISH), ("Question", timed_plan(plan, ended))],  # type: ignore[list-item]
                      token_delay_s=0.01)
    result = await plan_workflow(llm, tools=["search", "calc"]).run(hooks=[recorder])
    assert result.ok, result.error
    first_start = recorder.first("step_started", "p__1").ts
    assert first_start < ended[0] - 0.15  # ~20 tokens of padding were still to come


async def test_without_streaming_dispatch_actions_wait_for_the_whole_plan(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    plan = '1. search("a")\n' + "Thought: " + "padding " * 10 + '\n2. join()\n<END_OF_PLAN>'
    ended: list[float] = []
    llm = ScriptedLLM([(JOINER, FINISH), ("Question", timed_plan(plan, ended))],  # type: ignore[list-item]
                      token_delay_s=0.005)
    wf = plan_workflow(llm, tools=["search"], options={"stream_dispatch": False})
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert recorder.first("step_started", "p__1").ts >= ended[0]


async def test_references_substitute_typed_values(plan_workflow: PlanWorkflow,
                                                  recorder: Recorder) -> None:
    plan = """1. lookup("Paris")
2. lookup("Rome")
3. pair($1, $2)
4. total($3)
5. describe({"first": $1, "both": $3})
6. calc("$4 / 1000")
7. join()
<END_OF_PLAN>"""
    llm = ScriptedLLM([(JOINER, '{"action": "finish", "answer": "5"}'), ("Question", plan)])
    result = await plan_workflow(llm).run(hooks=[recorder])
    assert result.ok, result.error
    outputs = {e.step_id: e.output for e in recorder.of("step_succeeded")}
    assert outputs["p__3"] == [2000, 3000]
    assert outputs["p__4"] == 5000
    assert outputs["p__5"] == "both=[2000, 3000],first=2000"
    assert outputs["p__6"] == 5
    assert recorder.first("step_started", "p__4").input["args"] == {"values": [2000, 3000]}
    assert result.output == "5"


async def test_a_replan_sees_earlier_results_and_continues_the_numbering(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    llm = ScriptedLLM([
        (JOINER, ['{"action": "replan", "reason": "Rome is missing"}',
                  'Thought: all there.\nAction: Finish(5000 (people))']),
        ("not enough", '2. lookup("Rome")\n3. calc("$1 + $2")\n4. join()\n<END_OF_PLAN>'),
        ("Question", '1. lookup("Paris")\n2. join()\n<END_OF_PLAN>'),
    ])
    result = await plan_workflow(llm, max_replans=2).run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == "5000 (people)"
    replan_prompt = llm.prompts("not enough")[0]
    assert '1. lookup("Paris")' in replan_prompt and "Observation: 2000" in replan_prompt
    assert "Number new actions from 2" in replan_prompt and "Rome is missing" in replan_prompt
    assert recorder.first("step_succeeded", "p__3").output == 5000
    decisions = recorder.of("plan_decision")
    assert [(d.round, d.action) for d in decisions] == [(1, "replan"), (2, "finish")]
    meta = recorder.first("step_succeeded", "p").meta
    assert meta["replans"] == 1 and [a["id"] for a in meta["actions"]] == ["1", "2", "3"]
    assert [a["round"] for a in meta["actions"]] == [1, 2, 2]


async def test_a_failed_action_the_joiner_replans_around_leaves_a_succeeded_run(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    llm = ScriptedLLM([
        (JOINER, ['{"action": "replan", "reason": "calc could not read the search result"}',
                  '{"action": "finish", "answer": "2000"}']),
        ("not enough", '3. lookup("Paris")\n4. join()\n<END_OF_PLAN>'),
        ("Question", '1. search("a")\n2. calc("$1")\n3. join()\n<END_OF_PLAN>'),
    ])
    result = await plan_workflow(llm, max_replans=1).run(hooks=[recorder])
    assert result.ok and result.output == "2000", result.error
    assert "failed" in llm.prompts(JOINER)[0]  # the joiner saw calc's error
    assert [e.step_id for e in recorder.of("step_failed")] == ["p__2"]  # kept in the trace
    assert [(d.round, d.action) for d in recorder.of("plan_decision")] == [
        (1, "replan"), (2, "finish")]


async def test_when_the_joiner_gives_up_the_plan_step_fails_the_run(
        plan_workflow: PlanWorkflow) -> None:
    llm = ScriptedLLM([
        (JOINER, '{"action": "replan", "reason": "calc failed again"}'),
        ("not enough", '3. calc("$1")\n4. join()\n<END_OF_PLAN>'),
        ("Question", '1. search("a")\n2. calc("$1")\n3. join()\n<END_OF_PLAN>'),
    ])
    result = await plan_workflow(llm, max_replans=1).run()
    assert not result.ok
    assert (result.error or "").startswith("step 'p' failed"), result.error


async def test_plan_patches_are_events_under_the_plan_step(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    llm = ScriptedLLM([(JOINER, FINISH),
                       ("Question", '1. search("a")\n2. calc("$1")\n3. join()\n')])
    result = await plan_workflow(llm).run(hooks=[recorder])
    # calc("$1") gets the search result (a string) typed: calc rejects the words; the
    # joiner saw the failure and finished, so the plan step answers and the run succeeds
    assert result.ok and result.output == "done", result.error
    status = {s.id: s.status for s in result.steps}
    assert status["p__1"] == "succeeded" and status["p__2"] == "failed"
    assert "calc" in next(s.error or "" for s in result.steps if s.id == "p__2")
    patches = recorder.of("graph_patched")
    assert [(s["id"], s["parent"], s["deps"]) for p in patches for s in p.steps] == [
        ("p__1", "p", []), ("p__2", "p", ["p__1"])]
    assert all(p.source_step == "p" and p.reason == "llmcompiler plan 1" for p in patches)
    assert patches[1].steps[0]["spec"]["args"] == {"expression": "${steps.p__1.output}"}
    parents = {s.id: s.parent for s in result.steps}
    assert parents["p__1"] == "p" and parents["p__2"] == "p"


async def test_json_mode_asks_for_the_plan_schema(plan_workflow: PlanWorkflow,
                                                  recorder: Recorder) -> None:
    plan = ('{"actions": [{"id": 1, "tool": "lookup", "args": {"city": "Paris"}}, '
            '{"id": 2, "tool": "calc", "args": {"expression": "$1 * 2"}}]}')
    llm = ScriptedLLM([(JOINER, '{"action": "finish", "answer": 4000}'), ("Question", plan)])
    wf = plan_workflow(llm, format="json", tools=["lookup", "calc"])
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert recorder.first("step_succeeded", "p__2").output == 4000 and result.output == 4000
    schema = llm.calls[0].json_schema
    assert schema is not None and schema["required"] == ["actions"]
    tools = {v["properties"]["tool"]["const"]
             for v in schema["properties"]["actions"]["items"]["anyOf"]}
    assert tools == {"lookup", "calc"}
    assert llm.calls[-1].json_schema is not None  # the joiner: structured output too


async def test_usage_and_meta_of_the_plan_step(plan_workflow: PlanWorkflow,
                                               recorder: Recorder) -> None:
    llm = ScriptedLLM([(JOINER, FINISH), ("Question", '1. search("a")\n2. join()')])
    result = await plan_workflow(llm, joiner_model="default").run(hooks=[recorder])
    assert result.ok
    done = recorder.first("step_succeeded", "p")
    assert done.usage.completion_tokens > 0
    assert done.meta["llm_calls"] == 2 and done.meta["rounds"] == 1
    assert done.meta["actions"][0] == {"id": "1", "step_id": "p__1", "call": 'search("a")',
                                       "round": 1, "thought": None, "status": "succeeded"}
    assert [o["text"] for o in done.meta["llm_outputs"]][-1] == FINISH


# -- join($N): the plan names its answer -------------------------------------------------
ANSWERED = '1. lookup("Paris")\n2. lookup("Rome")\n3. calc("$1 + $2")\n4. join($3)\n<END_OF_PLAN>'


async def test_a_plan_that_names_its_answer_skips_the_joiner(plan_workflow: PlanWorkflow,
                                                             recorder: Recorder) -> None:
    llm = ScriptedLLM([(JOINER, FINISH), ("Question", ANSWERED)])
    wf = plan_workflow(llm, tools=["lookup", "calc"], options={"direct_answer": True})
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == 5000  # calc's result, typed: no joiner call made it a string
    assert llm.prompts(JOINER) == []
    done = recorder.first("step_succeeded", "p")
    assert done.meta["llm_calls"] == 1
    assert done.meta["decisions"] == [{"round": 1, "action": "finish", "answer": 5000,
                                       "reason": "the plan named $3 as its answer",
                                       "by": "plan"}]
    assert [(e.action, e.answer) for e in recorder.of("plan_decision")] == [("finish", 5000)]
    assert 'end with "N. join($M)"' in llm.calls[0].messages[0]["content"]


async def test_a_failed_action_sends_a_named_answer_to_the_joiner(
        plan_workflow: PlanWorkflow) -> None:
    plan = '1. search("a")\n2. calc("$1")\n3. join($2)\n'  # calc rejects the words
    llm = ScriptedLLM([(JOINER, '{"action": "finish", "answer": "no number"}'),
                       ("Question", plan)])
    wf = plan_workflow(llm, tools=["search", "calc"], options={"direct_answer": True})
    result = await wf.run()
    assert len(llm.prompts(JOINER)) == 1 and "failed" in llm.prompts(JOINER)[0]
    assert result.ok and result.output == "no number"  # the joiner's word, not calc's


async def test_without_direct_answer_the_joiner_still_decides(
        plan_workflow: PlanWorkflow) -> None:
    llm = ScriptedLLM([(JOINER, '{"action": "finish", "answer": "five thousand"}'),
                       ("Question", ANSWERED)])
    result = await plan_workflow(llm, tools=["lookup", "calc"]).run()
    assert result.ok and result.output == "five thousand"
    assert len(llm.prompts(JOINER)) == 1
    assert "join($M)" not in llm.calls[0].messages[0]["content"]


async def test_json_plans_name_their_answer_too(plan_workflow: PlanWorkflow) -> None:
    plan = ('{"actions": [{"id": 1, "tool": "lookup", "args": {"city": "Rome"}}, '
            '{"id": 2, "tool": "calc", "args": {"expression": "$1 * 2"}}], "answer": "$2"}')
    llm = ScriptedLLM([(JOINER, FINISH), ("Question", plan)])
    wf = plan_workflow(llm, format="json", tools=["lookup", "calc"],
                       options={"direct_answer": True})
    result = await wf.run()
    assert result.ok and result.output == 6000
    schema = llm.calls[0].json_schema
    assert schema is not None and "answer" in schema["properties"]
    assert llm.prompts(JOINER) == []


# -- a plan cut at max_tokens ---------------------------------------------------------------
CUT = '1. search("a")\n2. search("b")\n3. search("c")\n4. join()\n<END_OF_PLAN>'


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_a_plan_cut_at_max_tokens_says_so(plan_workflow: PlanWorkflow,
                                                recorder: Recorder, fmt: str) -> None:
    plan = CUT if fmt == "text" else (
        '{"actions": [{"id": 1, "tool": "search", "args": {"query": "a"}}, '
        '{"id": 2, "tool": "search", "args": {"query": "b"}}]}')
    llm = ScriptedLLM([(JOINER, FINISH), ("Question", plan)], max_tokens_cut=True)
    wf = plan_workflow(llm, format=fmt, max_tokens=5, max_plan_repairs=0)
    result = await wf.run(hooks=[recorder])
    assert result.status == "failed"
    (error,) = recorder.of("plan_error")
    assert error.code == "truncated"
    assert error.error.endswith("the model stopped at max_tokens=5 before the plan was "
                                "complete; raise max_tokens")
    if fmt == "text":  # the complete lines before the cut ran
        assert recorder.first("step_succeeded", "p__1").output == "result for a"


async def test_a_complete_plan_without_join_is_not_called_truncated(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    llm = ScriptedLLM([(JOINER, FINISH), ("Question", '1. search("a")\n')],
                      max_tokens_cut=True)
    result = await plan_workflow(llm, max_plan_repairs=0).run(hooks=[recorder])
    assert result.status == "failed"
    assert [e.code for e in recorder.of("plan_error")] == ["no_join"]


async def test_a_last_line_without_newline_runs_though_the_plan_lacks_join(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    # a server that strips <END_OF_PLAN> as a stop sequence ends the text at action 2's
    # closing parenthesis: action 2 is as complete as action 1 and runs as it does
    llm = ScriptedLLM([(JOINER, FINISH), ("rejected", "3. join()"),
                       ("Question", '1. search("a")\n2. search("b")')])
    result = await plan_workflow(llm).run(hooks=[recorder])
    assert result.ok, result.error
    assert [e.code for e in recorder.of("plan_error")] == ["no_join"]
    assert recorder.first("step_succeeded", "p__2").output == "result for b"
    assert "2. search(\"b\")" in llm.prompts("rejected")[0]  # the repair sees it ran


def weather(city: str, days: int = 1) -> dict[str, Any]:
    """Weather of a city."""
    return {"city": city, "temp": {"paris": 18}.get(city.lower(), 20), "days": days,
            "conditions": ["sunny", "cloudy"][:days]}


async def to_kelvin(celsius: float) -> float:
    """Celsius to Kelvin."""
    return celsius + 273.15


@pytest.mark.parametrize(("fmt", "plan"), [
    ("text", 'Here is my plan:\n```\n1) weather("Paris", days=2)\n'
             '2) to_kelvin($1["temp"])\n3) search(f"{$1.conditions[1]} in {$1["city"]}")\n'
             "4) join()\n```\n<END_OF_PLAN>\nThe weather comes first."),
    ("json", 'Here is my plan:\n```json\n{"actions": [\n'
             ' {"id": 1, "tool": "weather", "args": {"city": "Paris", "days": 2}},\n'
             ' {"id": 2, "tool": "to_kelvin", "args": {"celsius": "$1.temp"}},\n'
             ' {"id": 3, "tool": "search", "args": {"query": "${1.conditions[1]} in $1[\'city\']"}}'
             "\n]}\n```\nThe weather comes first."),
])
async def test_a_plan_in_prose_indexing_a_tool_s_dict_result_runs(
        plan_workflow: PlanWorkflow, recorder: Recorder, fmt: str, plan: str) -> None:
    llm = ScriptedLLM([(JOINER, '{"action": "finish", "answer": "$2"}'), ("Question", plan)])
    wf = plan_workflow(llm, format=fmt, tools=["weather", "to_kelvin", "search"])
    wf.register_tool(weather, "weather")
    wf.register_tool(to_kelvin, "to_kelvin")
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert recorder.of("plan_error") == []
    assert recorder.first("step_started", "p__2").input["args"] == {"celsius": 18}
    assert recorder.first("step_succeeded", "p__3").output == "result for cloudy in Paris"
    assert result.output == 291.15
    prompt = llm.calls[0].messages[0]["content"]
    assert "weather(city: string, days: integer = 1)" in prompt
    assert "a field of action N's result" in prompt


@pytest.mark.parametrize("action, written", [
    ("total($1.area)", "$1.area"), ('calc("${1.area} + 1")', "$1.area"),
    ('calc(f"{$1.area} + 1")', "$1.area"), ("total($1[0])", "$1[0]")])
async def test_a_reference_path_that_misses_is_named_as_the_plan_wrote_it(
        plan_workflow: PlanWorkflow, recorder: Recorder, action: str, written: str) -> None:
    # the error named the step's own reference, `${steps.p__1.output.area}`
    plan = f'1. lookup("Paris")\n2. {action}\n3. join()\n<END_OF_PLAN>'
    llm = ScriptedLLM([(JOINER, FINISH), ("Question", plan)])
    result = await plan_workflow(llm).run(hooks=[recorder])
    assert result.ok, result.error
    seg = written[3:-1] if written.endswith("]") else written[3:]
    error = f"`{written}`: no `{seg}` in 2000"
    assert recorder.first("step_failed", "p__2").error == error
    assert error in llm.prompts(JOINER)[0]  # what the joiner is told


async def test_a_reference_path_into_an_earlier_round_is_named_as_the_plan_wrote_it(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    replan = '{"action": "replan", "reason": "need more"}'
    llm = ScriptedLLM([(JOINER, [replan, FINISH]),
                       ("Question", ['1. lookup("Rome")\n2. join()\n<END_OF_PLAN>',
                                     "2. total($1.area)\n3. join()\n<END_OF_PLAN>"])])
    result = await plan_workflow(llm).run(hooks=[recorder])
    assert result.ok, result.error
    failed = recorder.of("step_failed")
    assert [e.error for e in failed] == ["`$1.area`: no `area` in 3000"]
