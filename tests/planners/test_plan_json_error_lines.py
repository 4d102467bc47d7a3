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
