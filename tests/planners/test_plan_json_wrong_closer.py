"""A JSON plan whose bracket closes the wrong one (`]` where `}` was due) is not valid JSON
there; it was reported as "incomplete ... before its object closes", as if the model had
been cut short, naming neither the line nor the text where it broke."""

from __future__ import annotations

import pytest

from planners.llmcompiler import parse_plan
from planners.tools import ToolCatalog


@pytest.mark.parametrize("text, line, shown", [
    ('{"actions": [\n {"id": 1, "tool": "search", "args": {"query": "a"}]\n}\n', 2, "] }"),
    ('{"actions": [\n {"id": 1, "tool": "search", "args": {"query": "a"}}}\n]}\n', 2, "} ]}"),
    ('{"actions": [\n {id: 1, tool: search}}\n]}\n', 2, "id: 1, tool: search}}"),
])
def test_a_bracket_closing_the_wrong_one_is_invalid_json_where_it_breaks(
        catalog: ToolCatalog, text: str, line: int, shown: str) -> None:
    (problem,) = parse_plan(text, catalog, fmt="json").problems
    assert (problem.code, problem.line) == ("bad_json", line)
    assert problem.message.startswith("the JSON plan is not valid JSON: "), problem.message
    assert "incomplete" not in problem.message and shown in problem.message, problem.message


def test_a_plan_cut_short_is_still_incomplete(catalog: ToolCatalog) -> None:
    text = '{"actions": [\n {"id": 1, "tool": "search", "args": {"query": "a"}}\n'
    (problem,) = parse_plan(text, catalog, fmt="json").problems
    assert problem.code == "bad_json" and "incomplete" in problem.message, problem.message
