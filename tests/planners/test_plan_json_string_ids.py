"""A JSON plan's action whose id is a string of digits (`"id": "2"`) is action 2, as a
model writing it means (and as `"$2"` refers to it): it was "an action needs an integer
id", and the next action then "skips a number"."""

from __future__ import annotations

from planners.plan import PlanBuilder, PlanProblem
from planners.plan_json import JsonPlanParser
from planners.tools import ToolCatalog


def parsed(text: str, catalog: ToolCatalog) -> list[object]:
    parser = JsonPlanParser(PlanBuilder(catalog))
    return [*parser.feed(text), *parser.close()]


def plan(second: str) -> str:
    return ('{"actions": [\n'
            '  {"id": 1, "tool": "search", "args": {"query": "a"}},\n'
            f'  {{"id": {second}, "tool": "search", "args": {{"query": "$1"}}}},\n'
            '  {"id": 3, "tool": "search", "args": {"query": "$2"}}\n'
            ']}\n')


def test_a_digit_string_id_is_its_number(catalog: ToolCatalog) -> None:
    events = parsed(plan('"2"'), catalog)
    assert [e for e in events if isinstance(e, PlanProblem)] == []
    assert events == parsed(plan("2"), catalog)


def test_a_string_id_that_is_no_number_is_reported_at_its_line(catalog: ToolCatalog
                                                               ) -> None:
    found = [(e.code, e.message, e.line) for e in parsed(plan('"two"'), catalog)
             if isinstance(e, PlanProblem)]
    assert found[0] == ("bad_json", 'an action needs an integer "id", got "two"', 3)


def test_a_digit_string_id_out_of_order_is_reported_as_its_number(catalog: ToolCatalog
                                                                  ) -> None:
    found = [(e.code, e.message, e.line) for e in parsed(plan('" 3 "'), catalog)
             if isinstance(e, PlanProblem)]
    assert found[0] == ("bad_id", "action id 3 skips a number: expected 2", 3)
