"""`ponder plan parse` lists a plan's problems in the order of their lines: a JSON
plan's element that is no object was listed after the problems of the actions below
it (it is found once the whole object is read)."""

from __future__ import annotations

from planners.llmcompiler import parse_plan
from planners.tools import ToolCatalog


def test_a_json_element_that_is_no_object_is_listed_at_its_line(catalog: ToolCatalog) -> None:
    plan = ('{"actions": [\n7,\n{"id": 1, "tool": "search", "args": ["a"]},\n'
            '{"id": 1, "tool": "search", "args": ["b"]}\n], "answer": "$9"}')
    found = [(p.line, p.code) for p in parse_plan(plan, catalog, fmt="json").problems]
    assert found == [(2, "bad_json"), (4, "bad_id"), (5, "bad_reference")]


def test_a_cycle_is_listed_at_its_first_action_and_no_line_comes_last(
        catalog: ToolCatalog) -> None:
    plan = '1. calc("$2")\n2. calc("$1")\n3. frob("x")\n'
    found = [(p.line, p.code) for p in parse_plan(plan, catalog).problems]
    assert found == [(1, "bad_reference"), (1, "cycle"), (3, "unknown_tool"), (3, "no_join")]
    assert [(p.line, p.code) for p in parse_plan("", catalog).problems] == [
        (None, "empty_plan")]
