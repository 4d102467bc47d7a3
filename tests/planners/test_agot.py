"""Adaptive Graph of Thoughts through the live graph: layers, complexity checks, nested
graphs under their thought, parallel thoughts, a forced final step, bad LLM output."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from orchestrator import Workflow
from planners.agot import literal_template, parse_check, parse_layer
from planners.plan import PlanProblem
from planners.testing import ScriptedLLM, forever

pytestmark = pytest.mark.anyio
PlanWorkflow = Callable[..., Workflow]
Recorder = Any

NOT_COMPLEX = ("Is this thought complex", '{"complex": false}')
ANSWER = ("Answer this thought", "an answer")


def layer(*thoughts: dict[str, Any]) -> str:
    return json.dumps({"strategy": "s", "thoughts": list(thoughts)})


async def test_layers_run_thoughts_in_parallel_and_stop_at_a_final_one(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    llm = ScriptedLLM([
        ("Layer 1 of 3", layer({"thought": "a"}, {"thought": "b"}, {"thought": "c"})),
        ("Layer 2 of 3", layer({"thought": "combine", "parents": [1, 2, 3], "final": True})),
        NOT_COMPLEX,
        ("Thought: combine[\\s\\S]*Answer this", "the end"),
        ("Answer this thought", " ".join(["word"] * 10)),
    ], token_delay_s=0.01)
    result = await plan_workflow(llm, planner="agot").run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == "the end"
    # the three thoughts of layer 1 (~0.1 s each) overlap in time
    layer1 = ["p__t1", "p__t2", "p__t3"]
    starts = [recorder.first("step_started", s).ts for s in layer1]
    ends = [recorder.first("step_succeeded", s).ts for s in layer1]
    assert max(starts) < min(ends)
    patches = {s["id"]: (s["parent"], s["deps"]) for p in recorder.of("graph_patched")
               for s in p.steps}
    assert patches == {"p__t1": ("p", []), "p__t2": ("p", []), "p__t3": ("p", []),
                       "p__t4": ("p", ["p__t1", "p__t2", "p__t3"])}
    prompt = next(m for m in llm.prompts("Thought: combine") if "Answer this" in m)
    assert prompt.count("Answer: " + " ".join(["word"] * 10)) == 3
    assert not recorder.of("plan_error")


async def test_a_complex_thought_expands_into_a_nested_graph_under_it(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    llm = ScriptedLLM([
        ("Layer 1 of 2", layer({"thought": "hard one", "final": True})),
        ("Layer 1 of 1", layer({"thought": "part x"}, {"thought": "part y", "parents": [1]})),
        ("Thought: hard one[\\s\\S]*Is this thought complex", '{"complex": true}'),
        NOT_COMPLEX,
        ("Thought: part y", "y done"),
        ("final answer to the question", "nested final"),
        ANSWER,
    ])
    wf = plan_workflow(llm, planner="agot", options={"max_layers": 2})
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == "nested final"
    parents = {s["id"]: s["parent"] for p in recorder.of("graph_patched") for s in p.steps}
    assert parents == {"p__t1": "p", "p__t1__t1": "p__t1", "p__t1__t2": "p__t1",
                       "p__t1__final": "p__t1"}
    # depth 1 = max_depth: the nested thoughts are answered without a check
    checks = llm.prompts("Is this thought complex")
    assert len(checks) == 1 and "hard one" in checks[0]
    nested_final = recorder.first("step_started", "p__t1__final").input["prompt"]
    assert "T1: part x\nAnswer: an answer" in nested_final
    assert "T2: part y\nAnswer: y done" in nested_final
    assert {s.id: s.parent for s in result.steps}["p__t1__t2"] == "p__t1"


async def test_a_final_step_is_forced_when_layers_run_out(plan_workflow: PlanWorkflow,
                                                          recorder: Recorder) -> None:
    llm = ScriptedLLM([
        ("Layer 1 of 2", layer({"thought": "one"})),
        ("Layer 2 of 2", layer({"thought": "two {{ 7 * 7 }}", "parents": [1]})),
        ("final answer to the question", "forced"),
        ANSWER,
    ])
    wf = plan_workflow(llm, planner="agot", options={"max_layers": 2, "max_depth": 0})
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == "forced"
    assert not llm.prompts("Is this thought complex")  # max_depth 0: no checks
    final = recorder.first("step_started", "p__final")
    assert "T2: two {{ 7 * 7 }}" in final.input["prompt"]  # model text is never a template
    assert recorder.first("step_started", "p__t2").input["goal"] == "two {{ 7 * 7 }}"
    assert "last layer" in llm.prompts("Layer 2 of 2")[0]


async def test_bad_layers_are_recorded_and_asked_again(plan_workflow: PlanWorkflow,
                                                       recorder: Recorder) -> None:
    llm = ScriptedLLM([
        ("Layer 1 of 1", ["no json here",
                          layer({"thought": "x", "parents": [5]}),
                          layer({"thought": "a"}, {"thought": "b"}),
                          layer({"thought": "ok", "final": True})]),
        NOT_COMPLEX, ANSWER,
    ])
    wf = plan_workflow(llm, planner="agot", max_plan_repairs=3,
                       options={"max_layers": 1, "max_nodes_per_layer": 1})
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    errors = recorder.of("plan_error")
    assert [e.code for e in errors] == ["bad_thoughts", "bad_reference", "too_many_steps"]
    assert all(e.will_retry for e in errors)
    assert "rejected: layer 1: thought T1 builds on 5" in llm.prompts("Layer 1 of 1")[2]
    wf = plan_workflow(ScriptedLLM([("Layer", "nope")]), planner="agot", max_plan_repairs=1)
    result = await wf.run()
    assert result.status == "failed" and "layer 1 could not be planned" in (result.error or "")


def test_layer_and_check_parsing() -> None:
    parsed = parse_layer('{"thoughts": ["a", {"thought": "b", "parents": ["T1", 1]}]}', 0, 3)
    assert not isinstance(parsed, PlanProblem)
    assert [(t.text, t.parents) for t in parsed.thoughts] == [("a", ()), ("b", (1,))]
    assert isinstance(parse_layer('{"thoughts": [{"thought": "c", "parents": [2]}]}', 1, 3),
                      PlanProblem)
    assert parse_check('{"complex": true}') == (True, None)
    assert parse_check("It is simple.") == (False, None)
    flag, problem = parse_check("???")
    assert not flag and problem is not None and problem.code == "bad_check"


@pytest.mark.parametrize(("parents", "final", "expected"), [
    # one parent without its list: a number crashed the planner (TypeError), and "T1"
    # was read as the two parents "T" and "1"
    (1, None, ((1,), False)), ("T1", None, ((1,), False)),
    # "false" as text made the thought final (any non-empty string was true)
    ([1], "false", ((1,), False)), ([], "no", ((), False)),
    ([1], "true", ((1,), True)), ([], True, ((), True)),
])
def test_a_layer_written_loosely_is_read_as_meant(parents: Any, final: Any,
                                                  expected: tuple[Any, bool]) -> None:
    item: dict[str, Any] = {"thought": "b", "parents": parents}
    if final is not None:
        item["final"] = final
    parsed = parse_layer(json.dumps({"thoughts": [item]}), 1, 3)
    assert not isinstance(parsed, PlanProblem), parsed
    (thought,) = parsed.thoughts
    assert (thought.parents, thought.final) == expected
    problem = parse_layer('{"thoughts": [{"thought": "b", "parents": {"T": 1}}]}', 1, 3)
    assert isinstance(problem, PlanProblem) and problem.code == "bad_reference"


async def test_a_layer_with_a_scalar_parent_and_a_final_false_runs_on(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    llm = ScriptedLLM([
        ("Layer 1 of 2", layer({"thought": "one", "final": "false"})),
        ("Layer 2 of 2", layer({"thought": "two", "parents": 1, "final": True})),
        ("Thought: two[\\s\\S]*Answer this", "the end"),
        ANSWER,
    ])
    wf = plan_workflow(llm, planner="agot", options={"max_layers": 2, "max_depth": 0})
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == "the end"  # not T1's answer: T1 was not final
    assert not recorder.of("plan_error")
    patches = {s["id"]: s["deps"] for p in recorder.of("graph_patched") for s in p.steps}
    assert patches["p__t2"] == ["p__t1"]


@pytest.mark.parametrize(("text", "complex_"), [
    # a negated "complex" was read as complex: the thought was expanded into a graph
    ("This is not a complex thought.", False), ("No, it is not complex.", False),
    ("It isn't complex.", False), ("This thought is not very complex at all", False),
    ('{"complex": "no"}', False), ('{"complex": "false", "reason": "one step"}', False),
    ("Yes, it is complex", True), ('{"complex": "true"}', True),
    ("It is quite complex: it needs two steps", True), ("Simple.", False),
])
def test_a_complexity_check_in_words_is_read_as_meant(text: str, complex_: bool) -> None:
    assert parse_check(text) == (complex_, None)
    assert literal_template('a }} {% b "q"\n') == '{{ "a }} {% b \\"q\\"\\n" }}'


# -- plan_timeout_s, max_tokens, bounded schemas, call tags -------------------------------
async def test_a_stalled_layer_call_is_stopped_at_plan_timeout_s(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    llm = ScriptedLLM([("Layer 1 of 1", forever('{"thoughts": ['))], token_delay_s=0.001)
    wf = plan_workflow(llm, planner="agot", plan_timeout_s=0.2, max_plan_repairs=1,
                       options={"max_layers": 1})
    result = await wf.run(hooks=[recorder])
    assert result.status == "failed"
    errors = recorder.of("plan_error")
    assert [(e.code, e.will_retry) for e in errors] == [("timeout", True), ("timeout", False)]
    assert errors[0].error == ("the proposal of layer 1 did not finish within "
                               "plan_timeout_s=0.2s; the call was stopped")
    assert "layer 1 could not be planned after 2 tries" in (result.error or "")
    assert "plan_timeout_s=0.2s" in (result.error or "")
    assert llm.cancelled == 2


async def test_a_stalled_thought_fails_its_step_and_the_others_answers_are_kept(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    llm = ScriptedLLM([
        ("Layer 1 of 1", layer({"thought": "quick"}, {"thought": "stuck", "final": True})),
        ("Thought: stuck", forever("thinking")),
        ("Thought: quick", "fast answer"),
    ], token_delay_s=0.001)
    wf = plan_workflow(llm, planner="agot", plan_timeout_s=0.3,
                       options={"max_layers": 1, "max_depth": 0})
    result = await wf.run(hooks=[recorder])
    # the graph answers without the stalled thought (a final step is forced): the run
    # succeeds, the thought's step stays failed
    assert result.ok, result.error
    assert {s.id: s.status for s in result.steps}["p__t2"] == "failed"
    (error,) = recorder.of("plan_error")
    assert (error.step_id, error.code, error.will_retry) == ("p__t2", "timeout", False)
    assert "the answer did not finish within plan_timeout_s=0.3s" in error.error
    failed = recorder.first("step_failed", "p__t2")
    assert "thought 'p__t2' got no answer" in failed.error
    assert recorder.first("step_succeeded", "p__t1").output == "fast answer"


async def test_a_stalled_complexity_check_answers_the_thought_directly(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    llm = ScriptedLLM([
        ("Layer 1 of 1", layer({"thought": "one", "final": True})),
        ("Is this thought complex", forever("{")),
        ANSWER,
    ], token_delay_s=0.001)
    wf = plan_workflow(llm, planner="agot", plan_timeout_s=0.2, options={"max_layers": 1})
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == "an answer"
    (error,) = recorder.of("plan_error")
    assert (error.step_id, error.code, error.will_retry) == ("p__t1", "timeout", False)
    assert error.error.endswith("; answering the thought directly")


async def test_a_layer_cut_at_max_tokens_says_so(plan_workflow: PlanWorkflow,
                                                 recorder: Recorder) -> None:
    llm = ScriptedLLM([("Layer 1 of 1", layer({"thought": "a " * 30}))],
                      max_tokens_cut=True)
    wf = plan_workflow(llm, planner="agot", max_tokens=10, max_plan_repairs=0,
                       options={"max_layers": 1})
    result = await wf.run(hooks=[recorder])
    assert result.status == "failed"
    (error,) = recorder.of("plan_error")
    assert error.code == "truncated"
    assert error.error == ("layer 1: the model stopped at max_tokens=10 before the layer was "
                           "complete; raise max_tokens")


def _arrays(schema: Any) -> list[dict[str, Any]]:
    if isinstance(schema, dict):
        own = [schema] if schema.get("type") == "array" else []
        return own + [a for v in schema.values() for a in _arrays(v)]
    if isinstance(schema, list):
        return [a for v in schema for a in _arrays(v)]
    return []


@pytest.mark.parametrize("earlier", [0, 1, 4])
def test_every_array_of_the_layer_schema_is_bounded(earlier: int) -> None:
    from planners.agot import _Thought, layer_request

    thoughts = [_Thought(n, f"p__t{n}", f"t{n}", (), False) for n in range(1, earlier + 1)]
    schema = layer_request("q", thoughts, "", 2, 3, 3, [], max_tokens=64,
                           temperature=0.0).json_schema
    arrays = _arrays(schema)
    assert len(arrays) == 2 and all("maxItems" in a for a in arrays), arrays
    thought = schema["properties"]["thoughts"]  # type: ignore[index]
    assert thought["maxItems"] == 3
    assert thought["items"]["properties"]["parents"]["maxItems"] == earlier


def _strings(schema: Any) -> list[dict[str, Any]]:
    if isinstance(schema, dict):
        own = [schema] if schema.get("type") == "string" else []
        return own + [a for v in schema.values() for a in _strings(v)]
    if isinstance(schema, list):
        return [a for v in schema for a in _strings(v)]
    return []


def test_every_string_of_the_layer_and_check_schemas_is_bounded() -> None:
    from planners.agot import CHECK_SCHEMA, layer_request

    schema = layer_request("q", [], "", 1, 3, 3, [], max_tokens=64, temperature=0.0,
                           max_chars=120).json_schema
    strings = _strings(schema)
    assert len(strings) == 2 and all(s["maxLength"] == 120 for s in strings), strings
    assert [s.get("maxLength") for s in _strings(CHECK_SCHEMA)] == [200]


async def test_an_over_long_thought_is_a_plan_error_and_asked_again(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    # a model that loops inside a string, on a backend that does not enforce the schema
    rambling = "and then " * 40  # 360 characters
    llm = ScriptedLLM([
        ("Layer 1 of 2", [layer({"thought": rambling}),
                          json.dumps({"strategy": rambling, "thoughts": [{"thought": "a"}]}),
                          layer({"thought": "hard one", "final": True})]),
        ("Layer 1 of 1", layer({"thought": "part", "final": True})),
        ("Thought: hard one[\\s\\S]*Is this thought complex", '{"complex": true}'),
        NOT_COMPLEX, ANSWER,
    ])
    wf = plan_workflow(llm, planner="agot", max_plan_repairs=2,
                       options={"max_layers": 2, "max_thought_chars": 100})
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    errors = recorder.of("plan_error")
    assert [(e.code, e.will_retry) for e in errors] == [("too_long", True)] * 2
    assert errors[0].error == ("layer 1: thought T1 is 360 characters long, more than "
                               "max_thought_chars=100 ('and then and then and then and then "
                               "and then and then and th'...)")
    assert errors[1].error.startswith("layer 1: the strategy is 360 characters long")
    assert "each at most 100 characters" in llm.prompts("Layer 1 of 2")[0]
    # the nested graph of the complex thought keeps the bound
    layers = [c.json_schema for c in llm.calls if c.request_id.endswith("layer1.1")]
    assert len(layers) == 2
    assert all(s["maxLength"] == 100 for schema in layers for s in _strings(schema))


async def test_over_long_thoughts_to_the_last_try_fail_the_step_not_the_process(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    llm = ScriptedLLM([("Layer", layer({"thought": "x" * 5000}))])
    result = await plan_workflow(llm, planner="agot", max_plan_repairs=1).run(
        hooks=[recorder])
    assert result.status == "failed"
    assert [e.code for e in recorder.of("plan_error")] == ["too_long", "too_long"]
    assert ("layer 1 could not be planned after 2 tries: layer 1: thought T1 is 5000 "
            "characters long, more than max_thought_chars=500") in (result.error or "")


async def test_every_call_carries_the_run_and_siblings_share_a_prefix_key(
        plan_workflow: PlanWorkflow) -> None:
    llm = ScriptedLLM([
        ("Layer 1 of 2", layer({"thought": "hard one"}, {"thought": "easy", "final": True})),
        ("Layer 1 of 1", layer({"thought": "part", "final": True})),
        ("Thought: hard one[\\s\\S]*Is this thought complex", '{"complex": true}'),
        NOT_COMPLEX, ANSWER,
    ])
    wf = plan_workflow(llm, planner="agot", tools=["calc"], options={"max_layers": 2})
    result = await wf.run()
    assert result.ok, result.error
    run = result.run_id
    assert all(c.run_id == run for c in llm.calls)
    seen = {(c.request_id, c.step_id, c.prefix_key) for c in llm.calls}
    assert seen == {
        ("p/layer1.1", "p", f"{run}/p"),  # the top graph, and its thoughts' calls
        ("p__t1/check", "p__t1", f"{run}/p"), ("p__t2/check", "p__t2", f"{run}/p"),
        ("p__t2/answer", "p__t2", f"{run}/p"),
        ("p__t1/layer1.1", "p__t1", f"{run}/p__t1"),  # t1's nested graph
        ("p__t1__t1/answer", "p__t1__t1", f"{run}/p__t1"),
    }


async def test_a_thought_json_cannot_encode_is_a_plan_error_and_asked_again(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    # a lone "\ud800" escape in a thought reached the thought's prompts: the local
    # llama.cpp backend cannot encode it, and every call of the thought failed
    llm = ScriptedLLM([
        ("Layer 1 of 1", ['{"thoughts": [{"thought": "x\\ud800", "final": true}]}',
                          '{"thoughts": [{"thought": "x \\ud83d\\ude00", "final": true}]}']),
        ("Thought: x \U0001f600[\\s\\S]*Answer this", "the end"),
        ANSWER,
    ])
    wf = plan_workflow(llm, planner="agot", options={"max_layers": 1, "max_depth": 0})
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == "the end"
    (error,) = recorder.of("plan_error")
    assert error.code == "bad_thoughts" and "\\ud800" in error.error and error.will_retry
    assert not any("\ud800" in m for m in llm.prompts())


@pytest.mark.parametrize("text", ["x \U0001f600", "\U0001d465 + 1", 'a }} {% b "q"\n\u2028é'])
def test_a_literal_template_renders_every_character_as_it_is(text: str) -> None:
    from orchestrator.spec.templates import environment

    # an ASCII-only dump wrote an emoji as "\ud83d\ude00", which Jinja2 read as two lone
    # surrogates: the thought's prompt could not be encoded by the local backend
    assert environment().from_string(literal_template(text)).render() == text


def failing_nested_graph(*rules: tuple[str, Any]) -> ScriptedLLM:
    """Thought 1 ("hard one") is complex and its nested graph fails: its one layer is
    never readable. Thought 2 is answered; ``rules`` come first."""
    return ScriptedLLM([
        *rules,
        ("Layer 1 of 2", layer({"thought": "hard one"}, {"thought": "easy one"})),
        ("Layer 1 of 1", "no JSON here"),
        ("Thought: hard one[\\s\\S]*Is this thought complex", '{"complex": true}'),
        NOT_COMPLEX,
        ("Thought: easy one[\\s\\S]*Answer this", "easy done"),
        ("Thought: combine[\\s\\S]*Answer this", "the end"),
    ])


async def test_a_thought_whose_nested_graph_failed_leaves_the_run_to_the_graph(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    # the graph went on without the thought and answered, but the run failed on the
    # thought's failed step
    llm = failing_nested_graph(
        ("Layer 2 of 2", layer({"thought": "combine", "parents": [1, 2], "final": True})))
    result = await plan_workflow(llm, planner="agot", max_plan_repairs=0,
                                 options={"max_layers": 2}).run(
        hooks=[recorder])
    assert result.ok, result.error
    assert result.output == "the end"
    status = {s.id: s.status for s in result.steps}
    assert status["p__t1"] == "failed" and status["p"] == "succeeded"
    assert "layer 1 could not be planned" in recorder.first("step_failed", "p__t1").error
    combine = next(m for m in llm.prompts("Thought: combine") if "Answer this" in m)
    assert "easy done" in combine and "hard one" not in combine
    assert recorder.first("step_started", "p__t3").input  # it ran after the failure


async def test_a_graph_that_fails_after_a_failed_thought_fails_the_run(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    llm = failing_nested_graph(("Layer 2 of 2", "no JSON here either"))
    result = await plan_workflow(llm, planner="agot", max_plan_repairs=0,
                                 options={"max_layers": 2}).run(
        hooks=[recorder])
    assert result.status == "failed"
    assert result.error.startswith("step 'p' failed: AGoT: layer 2 could not be planned")
    status = {s.id: s.status for s in result.steps}
    assert (status["p"], status["p__t1"], status["p__t2"]) == ("failed", "failed", "succeeded")
