"""JSON plans: a ``{"tool": "join"}`` element with arguments is the plan's join() written
wrong, one ``bad_args`` problem at its line (its arguments were dropped silently); an
``"id"`` written as an integral float (``1.0``) is that action's number, as AGoT reads a
parent ``1.0``; ``1.5`` is refused, showing the value."""

from __future__ import annotations

import pytest

from orchestrator.runtime.registry import tool_spec
from planners.llmcompiler import parse_plan
from planners.tools import ToolCatalog

_HEAD = '{"actions": [\n  {"id": 1, "tool": "search", "args": {"query": "a"}},\n'


@pytest.mark.parametrize("args", ['{"answer": "$1"}', '["done"]', '{"x": 1}'])
def test_a_join_element_with_arguments_is_one_bad_args_problem(catalog: ToolCatalog,
                                                               args: str) -> None:
    plan = parse_plan(f'{_HEAD}  {{"tool": "join", "args": {args}}}\n]}}\n', catalog,
                      fmt="json")
    assert [(p.line, p.code) for p in plan.problems] == [(3, "bad_args")], plan.problems
    (problem,) = plan.problems
    assert problem.message.startswith("join takes no arguments"), problem.message
    assert args.replace(" ", "") in problem.message.replace(" ", ""), problem.message
    assert [a.id for a in plan.actions] == [1]


@pytest.mark.parametrize("args", ["", ', "args": {}', ', "args": []'])
def test_a_join_element_without_arguments_is_fine(catalog: ToolCatalog, args: str) -> None:
    plan = parse_plan(f'{_HEAD}  {{"tool": "join"{args}}}\n]}}\n', catalog, fmt="json")
    assert plan.problems == [] and plan.joined, plan.problems


def test_a_tool_named_join_with_arguments_is_still_called(catalog: ToolCatalog) -> None:
    def join(parts: list[str]) -> str:
        return "".join(parts)

    tools = ToolCatalog({**catalog.tools, **ToolCatalog.of([tool_spec(join, "join")]).tools})
    plan = parse_plan(f'{_HEAD}  {{"id": 2, "tool": "join", "args": {{"parts": ["$1"]}}}}\n'
                      ']}\n', tools, fmt="json")
    assert plan.problems == [], plan.problems
    assert [(a.id, a.tool) for a in plan.actions] == [(1, "search"), (2, "join")]


def test_an_integral_float_id_is_that_number(catalog: ToolCatalog) -> None:
    plan = parse_plan('{"actions": [{"id": 1.0, "tool": "search", "args": {"query": "a"}},\n'
                      ' {"id": 2.0, "tool": "search", "args": {"query": "$1"}}]}', catalog,
                      fmt="json")
    assert plan.problems == [], plan.problems
    assert [(a.id, a.deps) for a in plan.actions] == [(1, ()), (2, (1,))]
    assert all(type(a.id) is int for a in plan.actions)


def test_a_fractional_id_is_refused_showing_it(catalog: ToolCatalog) -> None:
    plan = parse_plan('{"actions": [{"id": 1, "tool": "search", "args": {"query": "a"}},\n'
                      ' {"id": 1.5, "tool": "search", "args": {"query": "$1"}}]}', catalog,
                      fmt="json")
    assert [(p.line, p.code, p.message) for p in plan.problems][:1] == [
        (2, "bad_json", 'an action\'s "id" must be a whole number, got 1.5')], plan.problems
