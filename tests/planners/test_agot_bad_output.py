"""Adaptive Graph of Thoughts against issue #4's bad output: a malformed layer or
dependency list is a recorded plan error, asked again; an unreadable complexity check
answers the thought directly; the depth limits hold however complex every thought is
said to be."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.errors import ValidationFailed
from planners.agot import Layer, parse_layer
from planners.testing import ScriptedLLM

pytestmark = pytest.mark.anyio
PlanWorkflow = Callable[..., Workflow]
Recorder = Any

LONG = "9" * 5000  # more digits than int() reads
GOOD = json.dumps({"thoughts": [{"thought": "b", "parents": [1], "final": True}]})


def layer(*thoughts: Any) -> str:
    return json.dumps({"strategy": "s", "thoughts": list(thoughts)})


# (name, layer 2's first answer, code, words the message holds)
BAD_LAYERS = [
    ("no JSON", "I would think about it first.", "bad_thoughts", "a \"thoughts\" list"),
    ("garbage", "\x00\x01 }{ ][", "bad_thoughts", "a \"thoughts\" list"),
    ("thoughts not a list", '{"thoughts": "b"}', "bad_thoughts", "a \"thoughts\" list"),
    ("no thoughts", '{"thoughts": []}', "bad_thoughts", "the layer has no thoughts"),
    ("a thought without text", layer({"parents": [1]}), "bad_thoughts", "T2 has no text"),
    ("too many thoughts", layer("b", "c", "d"), "too_many_steps",
     "3 thoughts in one layer; at most 2 (max_nodes_per_layer)"),
    ("a later parent", layer({"thought": "b", "parents": [3]}), "bad_reference",
     "T2 builds on 3, which is not an earlier thought"),
    ("its own number", layer({"thought": "b", "parents": [2]}), "bad_reference",
     "T2 builds on 2"),
    ("a negative parent", layer({"thought": "b", "parents": [-1]}), "bad_reference",
     "T2 builds on -1"),
    ("a parent that is no number", layer({"thought": "b", "parents": ["first"]}),
     "bad_reference", "T2 builds on 'first'"),
    # these raised ValueError from int(): the step failed as "unexpected ValueError",
    # with no plan error and no repair
    ("a superscript digit", layer({"thought": "b", "parents": ["\u00b2"]}), "bad_reference",
     "T2 builds on '\u00b2'"),
    ("a parent of 5000 digits", '{"thoughts": [{"thought": "b", "parents": [' + LONG + "]}]}",
     "bad_reference", "T2 builds on '999999"),
    ("a parent named by 5000 digits", layer({"thought": "b", "parents": ["T" + LONG]}),
     "bad_reference", "T2 builds on 'T999999"),
]


@pytest.mark.parametrize(("name", "bad", "code", "words"), BAD_LAYERS,
                         ids=[b[0] for b in BAD_LAYERS])
async def test_a_malformed_layer_is_a_plan_error_asked_again(
        plan_workflow: PlanWorkflow, recorder: Recorder, name: str, bad: str, code: str,
        words: str) -> None:
    llm = ScriptedLLM([("Layer 1 of 2", layer("a")), ("Layer 2 of 2", [bad, GOOD]),
                       ("Thought: b[\\s\\S]*Answer this", "the end"),
                       ("Answer this thought", "an answer")])
    wf = plan_workflow(llm, planner="agot",
                       options={"max_layers": 2, "max_depth": 0, "max_nodes_per_layer": 2})
    result = await wf.run(hooks=[recorder])
    assert result.ok, (name, result.error)
    assert result.output == "the end"
    (error,) = recorder.of("plan_error")
    assert (error.code, error.will_retry, error.raw) == (code, True, bad)
    assert error.error.startswith("layer 2: ") and words in error.error, error.error
    assert len(error.error) < 300 and "Traceback" not in error.error
    assert error.error in llm.prompts("Layer 2 of 2")[1]  # the repair is told why
    # the first layer's answer is kept and used
    assert recorder.first("step_succeeded", "p__t1").output == "an answer"


def test_a_number_of_5000_digits_the_layer_does_not_use_is_no_problem() -> None:
    # json's ValueError escaped parse_layer
    parsed = parse_layer('{"thoughts": [{"thought": "b", "parents": [1]}], "n": ' + LONG + "}",
                         1, 3)
    assert isinstance(parsed, Layer) and parsed.thoughts[0].parents == (1,)


async def test_when_layer_repairs_run_out_the_graph_fails_readably(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    bad = layer({"thought": "b", "parents": ["T" + LONG]})
    llm = ScriptedLLM([("Layer 1 of 2", layer("a")), ("Layer 2 of 2", bad),
                       ("Answer this thought", "an answer")])
    wf = plan_workflow(llm, planner="agot", max_plan_repairs=1,
                       options={"max_layers": 2, "max_depth": 0})
    result = await wf.run(hooks=[recorder])
    assert result.status == "failed"
    assert [(e.code, e.will_retry) for e in recorder.of("plan_error")] == [
        ("bad_reference", True), ("bad_reference", False)]
    failed = recorder.first("step_failed", "p")
    assert "layer 2 could not be planned after 2 tries" in failed.error
    assert len(failed.error) < 400 and failed.raw == bad
    assert recorder.first("step_succeeded", "p__t1").output == "an answer"


# (name, complexity check answer, expanded into a nested graph, plan error code)
CHECKS = [
    ("JSON true", '{"complex": true}', True, None),
    ("JSON false", '{"complex": false}', False, None),
    # JSON that json refuses was read by its words, where the key "complex" said complex
    ("Python spelling", "{'complex': False}", False, None),
    ("cut before its brace", '{"complex": false', False, None),
    ("words in the field", '{"complex": "not really complex"}', False, None),
    ("prose with a colon", "This is complex: no single step does it.", True, None),
    ("null", '{"complex": null}', False, "bad_check"),
    ("a number", '{"complex": 0}', False, "bad_check"),
    ("a word of no meaning", '{"complex": "maybe"}', False, "bad_check"),
    # raised ValueError: the thought failed as "unexpected ValueError"
    ("a number of 5000 digits", '{"complex": ' + LONG + "}", False, "bad_check"),
    ("garbage", "\x00 ?", False, "bad_check"),
]


@pytest.mark.parametrize(("name", "check", "expanded", "code"), CHECKS,
                         ids=[c[0] for c in CHECKS])
async def test_a_complexity_check_decides_or_answers_the_thought_directly(
        plan_workflow: PlanWorkflow, recorder: Recorder, name: str, check: str,
        expanded: bool, code: str | None) -> None:
    llm = ScriptedLLM([("Layer 1 of 2", layer({"thought": "a", "final": True})),
                       ("Layer 1 of 1", layer({"thought": "part", "final": True})),
                       ("Is this thought complex", check),
                       ("Thought: part[\\s\\S]*Answer this", "nested"),
                       ("Answer this thought", "direct")])
    result = await plan_workflow(llm, planner="agot", options={"max_layers": 2}).run(
        hooks=[recorder])
    assert result.ok, (name, result.error)
    assert result.output == ("nested" if expanded else "direct")
    errors = recorder.of("plan_error")
    assert [e.code for e in errors] == ([code] if code else [])
    if code:
        assert errors[0].error.endswith("; answering the thought directly")
        assert len(errors[0].error) < 200 and errors[0].will_retry is False


@pytest.mark.parametrize("max_depth", [0, 1, 2])
async def test_expansion_stops_at_max_depth_when_every_thought_is_complex(
        plan_workflow: PlanWorkflow, recorder: Recorder, max_depth: int) -> None:
    llm = ScriptedLLM([("Layer 1 of", layer({"thought": "go on", "final": True})),
                       ("Is this thought complex", '{"complex": true}'),
                       ("Answer this thought", "answered")])
    wf = plan_workflow(llm, planner="agot", options={"max_layers": 3, "max_depth": max_depth})
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == "answered"
    # one check per level above max_depth; the thought at max_depth is answered
    assert len(llm.prompts("Is this thought complex")) == max_depth
    deepest = "p" + "__t1" * (max_depth + 1)
    parents = {s["id"]: s["parent"] for p in recorder.of("graph_patched") for s in p.steps}
    assert deepest in parents and deepest + "__t1" not in parents
    # each nested graph has one layer fewer, at least one
    assert [len(llm.prompts(f"Layer 1 of {n}")) for n in (3, 2, 1)] == [
        1, int(max_depth >= 1), int(max_depth >= 2)]
    assert not recorder.of("plan_error")


@pytest.mark.parametrize(("options", "words"), [
    ({"max_depth": 5}, "max_depth"), ({"max_layers": 0}, "max_layers"),
    ({"max_nodes_per_layer": 11}, "max_nodes_per_layer"), ({"depth": -1}, "depth"),
])
async def test_limits_out_of_range_are_configuration_errors(
        plan_workflow: PlanWorkflow, options: dict[str, Any], words: str) -> None:
    llm = ScriptedLLM()
    with pytest.raises(ValidationFailed) as info:
        await plan_workflow(llm, planner="agot", options=options).run()
    message = str(info.value)
    assert words in message and "agot" in message and "Traceback" not in message
    assert llm.prompts() == []
