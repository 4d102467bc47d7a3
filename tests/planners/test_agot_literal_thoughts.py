"""AGoT: a thought the model writes is data, never a template. A thought step's goal (and
the forced final step's prompt) holds the thought's text exactly, whatever it holds:
`${...}`, `{{`, `{%`, quotes, backslashes. The `${...}` rewrite of templates used to run
inside the string literal the text was put in, so `${inputs.q}` was rewritten and a quote
in a reference's key closed the literal: the rest of the thought ran as a template."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from orchestrator import Workflow
from orchestrator.spec.templates import render, template_refs
from planners.agot import literal_template
from planners.testing import ScriptedLLM

pytestmark = pytest.mark.anyio

SECRET = "SECRET-INPUT"
#: closes the literal with the `"` of the key: the workflow input was read into the goal
READS_INPUT = "${inputs['a\"~inputs.q~']}' }}X"
#: the same with a name the render does not have: the thought step failed
UNDEFINED = "${inputs['a\"~nope~']}' }}Y"
PLAIN_REF = "inject ${inputs.q} and ${steps.p.output} and {{ inputs.q }} {% raw %} \\ $$1"


def _workflow(llm: ScriptedLLM, **options: Any) -> Workflow:
    doc = {"name": "t", "inputs": {"q": {"type": "string", "default": SECRET}},
           "models": {"default": {"backend": "scripted"}},
           "steps": [{"id": "p", "kind": "plan", "planner": "agot", "goal": "{{ inputs.q }}",
                      "options": {"max_depth": 0, **options}}]}
    wf = Workflow.from_yaml_text(yaml.safe_dump(doc))
    wf.register_backend("scripted", llm.factory)
    return wf


def _layer(*texts: str, final: bool = False) -> str:
    return json.dumps({"thoughts": [{"thought": t, "final": final} for t in texts]})


@pytest.mark.parametrize("text", [
    READS_INPUT, UNDEFINED, PLAIN_REF, "$", "${", "\\u0024{inputs.q}", "a\\\"b\\\\",
    "{% endraw %}{# c #}}}", "x \U0001f600 é \u2028 \r\n\t",
])
def test_a_literal_template_renders_its_text_through_the_reference_rewrite(text: str) -> None:
    template = literal_template(text)
    assert render(template, {"inputs": {"q": SECRET}, "steps": {}}) == text
    assert template_refs(template) == []


async def test_a_thought_holding_template_syntax_is_its_step_s_goal_unchanged(
        recorder: Any) -> None:
    llm = ScriptedLLM([("Layer 1 of 1", _layer(READS_INPUT, UNDEFINED, PLAIN_REF,
                                               final=True)),
                       ("Answer this thought", "an answer")])
    result = await _workflow(llm, max_layers=1).run(hooks=[recorder])
    assert result.ok, result.error
    assert {s.id: s.status for s in result.steps} == {
        "p": "succeeded", "p__t1": "succeeded", "p__t2": "succeeded", "p__t3": "succeeded"}
    goals = [recorder.first("step_started", f"p__t{n}").input["goal"] for n in (1, 2, 3)]
    assert goals == [READS_INPUT, UNDEFINED, PLAIN_REF]
    thoughts = llm.prompts("Answer this thought")
    assert len(thoughts) == 3
    assert not any(SECRET in p.split("Thought:", 1)[1] for p in thoughts)


async def test_the_forced_final_step_shows_thoughts_as_written(recorder: Any) -> None:
    llm = ScriptedLLM([("Layer 1 of 1", _layer(READS_INPUT, UNDEFINED)),
                       ("final answer to the question", "the end"),
                       ("Answer this thought", "an answer")])
    result = await _workflow(llm, max_layers=1).run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == "the end"
    prompt = recorder.first("step_started", "p__final").input["prompt"]
    assert f"T1: {READS_INPUT}\nAnswer: an answer\n" in prompt
    assert f"T2: {UNDEFINED}\nAnswer: an answer\n" in prompt
    assert SECRET not in prompt.split("Thoughts and their answers:", 1)[1]
