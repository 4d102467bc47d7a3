"""A JSON plan's errors name the line of the offending value, not the line the text
or the object starts on: blank lines, a fence or a key before the value move it down."""

from __future__ import annotations

import pytest

from planners.plan import PlanBuilder, PlanProblem
from planners.plan_json import JsonPlanParser
from planners.tools import ToolCatalog


def problems(text: str, catalog: ToolCatalog, *, streamed: bool = False
             ) -> list[tuple[str, str, int | None]]:
    parser = JsonPlanParser(PlanBuilder(catalog))
    found = []
    for piece in list(text) if streamed else [text]:
        found += parser.feed(piece)
    found += parser.close()
    return [(e.code, e.message, e.line) for e in found if isinstance(e, PlanProblem)]


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize(("text", "shown", "line"), [
    ("1", "'1'", 1),
    ("\n1", "'1'", 2),
    ("\r\n\r\n  \"x\"", "'\"x\"'", 3),
    ("\ufeff\n x", "'x'", 2),
    ("\n\n```json\n1\n```", "'1\\n```'", 4),
    ("```json\n```", "'```'", 2),
])
def test_text_that_is_no_object_is_located_at_its_value(
        catalog: ToolCatalog, text: str, shown: str, line: int, streamed: bool) -> None:
    assert problems(text, catalog, streamed=streamed) == [
        ("garbage", f"expected a JSON object, got {shown}", line)]


NOT_AN_OBJECT = """\
{
  "actions": [
    {"id": 1, "tool": "search", "args": {"query": "a"}},
    5,
    {"id": 2,
     "tool": "search",
     "args": {"query": "b"}}
  ]
}
"""


@pytest.mark.parametrize("streamed", [False, True])
def test_an_action_that_is_no_object_is_reported_at_its_line(
        catalog: ToolCatalog, streamed: bool) -> None:
    # it was not reported at all, and the action after it was taken for a second action 2
    assert problems(NOT_AN_OBJECT, catalog, streamed=streamed) == [
        ("bad_json", "each action must be an object, got 5", 4)]


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize(("text", "expected"), [
    ('{\n  "actions":\n     5\n}',
     ("bad_json", 'the plan must be an object with an "actions" list', 3)),
    ('{"city": "x"}\n{\n"answer": 1}',
     ("bad_json", 'the plan must be an object with an "actions" list', 1)),
    ('{"city": "x"}\n{\n"actions": 5}',  # the first object is the one reported
     ("bad_json", 'the plan must be an object with an "actions" list', 1)),
    ('{\n  "answer": "nope",\n  "actions": [\n'
     '    {"id": 1, "tool": "search", "args": {"query": "a"}}\n  ]\n}',
     ("bad_reference", '"answer" must name an action as "$N", got "nope"', 2)),
])
def test_a_bad_top_level_value_is_reported_at_its_line(
        catalog: ToolCatalog, text: str, expected: tuple[str, str, int],
        streamed: bool) -> None:
    assert problems(text, catalog, streamed=streamed) == [expected]


def test_an_answer_naming_no_action_is_reported_at_its_line(catalog: ToolCatalog) -> None:
    text = ('{\n  "actions": [\n    {"id": 1, "tool": "search", "args": {"query": "a"}}\n'
            '  ],\n  "answer": "$9"\n}')
    [(code, _, line)] = problems(text, catalog)
    assert (code, line) == ("bad_reference", 5)
