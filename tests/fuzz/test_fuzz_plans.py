"""The LLMCompiler plan parsers (text and JSON), the joiner and the AGoT readers on
generated model output: they never raise, and the streaming parsers give the same
events whatever the chunking of the stream."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fuzz.support import FUZZ, PLAIN_JSON
from hypothesis import example, given
from hypothesis import strategies as st

pytest.importorskip("planners.llmcompiler")

from orchestrator.runtime.registry import Registry
from planners.joiner import Decision, parse_decision
from planners.llmcompiler import parse_plan
from planners.plan import Action, Joined, PlanBuilder, PlanProblem
from planners.plan_json import JsonPlanParser
from planners.plan_text import TextPlanParser
from planners.tools import ToolCatalog

CATALOG = ToolCatalog.from_registry(Registry(), ["calc", "extract", "sleep"])
OPEN = ToolCatalog({}, open=True)

ARG = st.one_of(
    st.sampled_from(['"text"', "1", "2.5", "-3", "true", "None", "[1, $1]", '{"k": $2}',
                     '"$1 + $2"', "$1", "${2}", "$99", "${x}", "expression=\"1 + 1\"",
                     'text=$1, pattern="\\\\d+"', "seconds=0", "((", '"unclosed', "1 +",
                     "lambda: 1", "__import__('os')", "x=1, x=2", "*args", "[" * 40]),
    PLAIN_JSON.map(json.dumps),
)
LINE = st.one_of(
    st.builds(lambda i, tool, args: f"{i}. {tool}({', '.join(args)})",
              st.integers(-1, 12), st.sampled_from(["calc", "extract", "sleep", "search",
                                                   "join", "1bad", "os.system"]),
              st.lists(ARG, max_size=3)),
    st.sampled_from(["Thought: compute it", "join()", "5. join()", "<END_OF_PLAN>", "```",
                     "```json", "", "   ", "Thought:", "1. calc(", ")", "1. calc(\"1\"", "]",
                     "Action: calc", "JOIN ( )"]),
    st.text(max_size=30),
)
TEXT_PLANS = st.lists(LINE, max_size=10).map("\n".join)

JSON_ACTION = st.fixed_dictionaries(
    {"id": st.integers(-1, 8) | st.sampled_from(["1", None, 1.5]),
     "tool": st.sampled_from(["calc", "extract", "search", "", 3])},
    optional={"args": st.dictionaries(st.sampled_from(["expression", "text", "pattern", "x"]),
                                      st.sampled_from(["$1", "${2}", "1 + $1", 3, None, [],
                                                       {"$1": 1}]) | PLAIN_JSON, max_size=3)
              | st.lists(PLAIN_JSON, max_size=2),
              "thought": st.text(max_size=10), "extra": st.just(1)},
)
JSON_PLANS = st.one_of(
    st.builds(lambda acts: json.dumps({"actions": acts}), st.lists(JSON_ACTION, max_size=5)),
    st.builds(lambda acts, cut: json.dumps({"actions": acts})[:cut],
              st.lists(JSON_ACTION, min_size=1, max_size=4), st.integers(0, 200)),
    PLAIN_JSON.map(json.dumps),
    st.builds(lambda s: "```json\n" + s + "\n```", st.lists(JSON_ACTION, max_size=3).map(
        lambda a: json.dumps({"actions": a}))),
)


def events(parser_cls: Any, catalog: ToolCatalog, chunks: list[str]) -> list[Any]:
    parser = parser_cls(PlanBuilder(catalog))
    out: list[Any] = []
    for chunk in chunks:
        out += parser.feed(chunk)
    return out + parser.close()


def split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    return [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]


def check_plan(text: str, cuts: list[int]) -> None:
    for catalog in (CATALOG, OPEN):
        plan = parse_plan(text, catalog)
        assert all(isinstance(a, Action) for a in plan.actions)
        assert all(isinstance(p, PlanProblem) and p.code and p.message for p in plan.problems)
        json.dumps(plan.to_json(), default=repr)
        for cls in (TextPlanParser, JsonPlanParser):
            whole = events(cls, catalog, [text])
            assert all(isinstance(e, Action | Joined | PlanProblem) for e in whole)
            assert events(cls, catalog, split(text, cuts)) == whole, cls.__name__


@FUZZ
@given(TEXT_PLANS, st.lists(st.integers(0, 10_000), max_size=6))
@example('1. calc("1 + 1")\n2. calc("$1 * 2")\njoin()\n<END_OF_PLAN>', [3, 17, 40])
@example("1. calc(" + "[" * 200 + ")", [5])
def test_text_plans(text: str, cuts: list[int]) -> None:
    check_plan(text, cuts)


@FUZZ
@given(JSON_PLANS, st.lists(st.integers(0, 10_000), max_size=6))
@example('{"actions": [{"id": 1, "tool": "calc", "args": {"expression": "1"}}]}', [1, 9])
@example('{"actions": ' + "[" * 300 + "]" * 300 + "}", [50])
def test_json_plans(text: str, cuts: list[int]) -> None:
    check_plan(text, cuts)


@FUZZ
@given(st.text(max_size=200), st.lists(st.integers(0, 10_000), max_size=4))
def test_plans_from_random_text(text: str, cuts: list[int]) -> None:
    check_plan(text, cuts)


JOINER = st.one_of(
    st.text(max_size=80),
    st.builds(json.dumps, st.fixed_dictionaries({}, optional={
        "action": st.sampled_from(["finish", "Finish", "replan", "", "x", 3]),
        "answer": PLAIN_JSON, "reason": PLAIN_JSON, "thought": PLAIN_JSON})),
    st.sampled_from(["Finish(42)", "Replan(need more)", "finish(", "Action: Finish(x)",
                     '{"action": "finish"}', "{" * 100]),
)


@FUZZ
@given(JOINER)
def test_joiner_decisions(text: str) -> None:
    decision = parse_decision(text)
    assert isinstance(decision, Decision | PlanProblem)


@FUZZ
@given(st.one_of(st.text(max_size=80), PLAIN_JSON.map(json.dumps), st.builds(
    lambda items: json.dumps({"thoughts": items}), st.lists(st.one_of(
        st.text(max_size=10), st.fixed_dictionaries({}, optional={
            "thought": PLAIN_JSON, "parents": st.lists(st.sampled_from(
                [1, "T1", "T9", 0, -1, None, "x"]), max_size=2) | PLAIN_JSON,
            "final": PLAIN_JSON})), max_size=4))),
    st.integers(0, 5), st.integers(1, 4))
def test_agot_layers_and_checks(text: str, existing: int, max_nodes: int) -> None:
    agot = pytest.importorskip("planners.agot")
    layer = agot.parse_layer(text, existing, max_nodes)
    assert isinstance(layer, agot.Layer | PlanProblem)
    complex_, problem = agot.parse_check(text)
    assert isinstance(complex_, bool) and (problem is None or isinstance(problem, PlanProblem))
