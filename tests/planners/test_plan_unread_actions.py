"""An action line the parser cannot read whole (its arguments, text after its call, a
call never closed; in JSON a missing "tool", "args" that are no object) still uses its
number: the next action was said to skip one, an error that was not there. Its wrong
number and unknown tool are reported too, as is what a wrong number hid (the tool, the
arguments). A planner still gets the line's own problem first."""

from __future__ import annotations

import json

import pytest

from planners.llmcompiler import parse_plan
from planners.plan import PlanBuilder, PlanProblem
from planners.tools import ToolCatalog

LineCode = tuple[int | None, str]


def codes(text: str, catalog: ToolCatalog, fmt: str = "text") -> list[LineCode]:
    return [(p.line, p.code) for p in parse_plan(text, catalog, fmt=fmt).problems]


@pytest.mark.parametrize(("bad", "code"), [
    ('search("b") trailing', "garbage"),
    ("search(foo)", "bad_args"),
    ("search(${-1})", "bad_reference"),
    ('search(f"{x}")', "bad_args"),
    ('search(["b")]', "garbage"),
])
def test_an_unreadable_action_uses_its_number(catalog: ToolCatalog, bad: str,
                                              code: str) -> None:
    plan = f'1. search("a")\n2. {bad}\n3. search("c")\n4. join()\n'
    assert codes(plan, catalog) == [(2, code)]


def test_a_call_never_closed_uses_its_number(catalog: ToolCatalog) -> None:
    plan = '1. search("a")\n2. search("b"\n3. search("c")\n4. join()\n'
    assert codes(plan, catalog) == [(2, "unterminated")]


@pytest.mark.parametrize(("line", "code"), [
    ('{"id": 2, "args": ["b"]}', "bad_json"),
    ('{"id": 2, "tool": "search", "args": "b"}', "bad_args"),
])
def test_an_unreadable_json_action_uses_its_number(catalog: ToolCatalog, line: str,
                                                   code: str) -> None:
    plan = ('{"actions": [\n{"id": 1, "tool": "search", "args": ["a"]},\n' + line
            + ',\n{"id": 3, "tool": "search", "args": ["c"]}\n]}')
    assert codes(plan, catalog, "json") == [(3, code)]


def test_an_unreadable_action_s_number_and_tool_are_checked(catalog: ToolCatalog) -> None:
    plan = '1. search("a")\n3. frob(foo)\n4. frob(x) y\n5. join()\n'
    found = parse_plan(plan, catalog).problems
    assert [(p.line, p.code) for p in found] == [
        (2, "bad_args"), (2, "bad_id"), (2, "unknown_tool"),
        (3, "garbage"), (3, "unknown_tool")]
    assert found[1].message == "action id 3 skips a number: expected 2"
    assert "'frob' is not allowed here" in found[2].message


def test_an_unreadable_action_after_join_is_said_to_be_after_it(catalog: ToolCatalog) -> None:
    plan = '1. search("a")\n2. join()\n3. search(foo)\n'
    assert codes(plan, catalog) == [(3, "bad_args"), (3, "after_join")]


def test_a_json_action_without_args_as_an_object_has_its_tool_checked(
        catalog: ToolCatalog) -> None:
    plan = json.dumps({"actions": [{"id": 1, "tool": "frob", "args": "x"}]})
    assert codes(plan, catalog, "json") == [(1, "bad_args"), (1, "unknown_tool")]


@pytest.mark.parametrize(("plan", "fmt", "expected"), [
    ('1. search("a")\n3. frob("b")\n4. join()\n', "text",
     [(2, "bad_id"), (2, "unknown_tool")]),
    ('1. search("a")\n1. search(5)\n2. join()\n', "text", [(2, "bad_id"), (2, "bad_args")]),
    ('1. search("a")\n3. search("$-1")\n4. join()\n', "text",
     [(2, "bad_id"), (2, "bad_reference")]),
    ('{"actions": [\n{"id": 1, "tool": "search", "args": ["a"]},\n'
     '{"id": 3, "tool": "frob", "args": ["b"]}\n]}', "json",
     [(3, "bad_id"), (3, "unknown_tool")]),
])
def test_a_wrong_number_hides_no_problem_of_the_tool_or_its_values(
        catalog: ToolCatalog, plan: str, fmt: str, expected: list[LineCode]) -> None:
    assert codes(plan, catalog, fmt) == expected


def test_a_wrong_number_does_not_judge_references_by_it(catalog: ToolCatalog) -> None:
    """`1.` repeated: `$1` there would be a self reference only because of the slip."""
    assert codes('1. search("a")\n1. search($1)\n2. join()\n', catalog) == [(2, "bad_id")]


def test_the_planner_gets_the_line_s_own_problem(catalog: ToolCatalog) -> None:
    builder = PlanBuilder(catalog)
    own = PlanProblem("bad_args", "action 3: `foo` is not a literal", 2)
    assert builder.unread(3, "frob", own) is own
    assert builder.planner_problem(own) == own
    assert [h.code for p, h in builder.hidden if p is own] == ["bad_id", "unknown_tool"]
