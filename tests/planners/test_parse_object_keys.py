"""Object keys in plan arguments follow the rules of strings: `$$` in a key is a `$` (the
key `$$k` reached the tool as `$$k`, though values read `$$` as `$`), and a key cannot
hold a result (`{"$1": 2}`, `{"${1.x}": 3}` went through as written, `${` unchecked):
a reference or the text `${` in a key is a `bad_reference` at its line, in both
formats."""

from __future__ import annotations

import json
from typing import Any

import pytest

from planners.llmcompiler import parse_plan
from planners.plan import Action
from planners.testing import ScriptedLLM
from planners.tools import ToolCatalog
from tests.planners.conftest import PlanWorkflow, Recorder

pytestmark = pytest.mark.anyio


def text_plan(argument: str) -> str:
    return f'1. search("a")\n2. describe({argument})\n3. join()\n'


def json_plan(argument: Any) -> str:
    return ('{"actions": [{"id": 1, "tool": "search", "args": ["a"]},\n'
            f'{{"id": 2, "tool": "describe", "args": [{json.dumps(argument)}]}}]}}')


def problems(argument: Any, catalog: ToolCatalog, fmt: str) -> list[tuple[int | None, str,
                                                                            str]]:
    text = text_plan(json.dumps(argument)) if fmt == "text" else json_plan(argument)
    return [(p.line, p.code, p.message)
            for p in parse_plan(text, catalog, fmt=fmt).problems]


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize(("key", "said"), [
    ("$1", "the object key '$1' refers to $1, but a key is text"),
    ("${1}", "the object key '${1}' refers to ${1}"),
    ("${1.x}", "the object key '${1.x}' refers to ${1.x}"),
    ("total $1", "the object key 'total $1' refers to $1"),
    ("$$$1", "the object key '$$$1' refers to $1"),
    ("$9", "the object key '$9' refers to $9"),
    ("$-1", "the object key '$-1' refers to $-1"),
    ("${steps.x.output}", "the object key '${steps.x.output}' holds the text ${"),
    ("$${x}", "the object key '$${x}' holds the text ${"),
])
def test_a_key_holding_a_reference_is_refused(catalog: ToolCatalog, fmt: str, key: str,
                                              said: str) -> None:
    for argument in ({key: 1}, {"outer": [{key: 1}]}):
        got = problems(argument, catalog, fmt)
        assert [(line, code) for line, code, _ in got] == [(2, "bad_reference")], got
        assert got[0][2].startswith(f"action 2: {said}")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_every_bad_key_is_reported(catalog: ToolCatalog, fmt: str) -> None:
    got = problems({"$1": 2, "${1.x}": 3, "$$k": 4}, catalog, fmt)
    assert [(line, code) for line, code, _ in got] == [(2, "bad_reference")] * 2


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("key", ["$$k", "$$1", "a $ b", "$k", "$", "$$"])
def test_a_key_of_text_is_fine(catalog: ToolCatalog, fmt: str, key: str) -> None:
    assert problems({key: 1}, catalog, fmt) == []


def test_a_key_s_double_dollar_is_a_dollar_in_the_step() -> None:
    action = Action(2, "describe", {"item": {"$$k": 1, "a$$$$": {"$$1": "$$v", "$x": 2},
                                             "plain": "$1"}}, (1,), 2, "describe(...)")
    assert action.step_args(lambda i: f"${{steps.p__{i}.output}}") == {
        "item": {"$k": 1, "a$$": {"$1": "$v", "$x": 2}, "plain": "${steps.p__1.output}"}}


@pytest.mark.parametrize("plan", [
    '1. describe({"$$k": 1, "a$$1": 2, "$x": 3})\n2. join()\n<END_OF_PLAN>',
    '{"actions": [{"id": 1, "tool": "describe", "args": '
    '{"item": {"$$k": 1, "a$$1": 2, "$x": 3}}}]}',
])
async def test_the_tool_gets_the_keys_as_text(plan_workflow: PlanWorkflow, recorder: Recorder,
                                              plan: str) -> None:
    llm = ScriptedLLM([("Actions and observations", "Finish($1)"), ("Question", plan)])
    fmt = "json" if plan.startswith("{") else "text"
    result = await plan_workflow(llm, format=fmt,
                                 outputs={"answer": "${steps.p.output}"}).run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == {"answer": "$k=1,$x=3,a$1=2"}
