"""Plans saved or streamed with other line endings, or opening with a byte order mark,
read as the same plan: a lone CR ends a line as a LF and a CRLF do (a CRLF split between
two streamed pieces is one line break), and a BOM before the plan is no part of it.
Errors name the line an editor shows."""

from __future__ import annotations

import pytest

from planners.llmcompiler import LLMCompilerPlanner
from planners.plan import Action, Joined, ParseEvent, PlanBuilder, PlanProblem
from planners.plan_json import JsonPlanParser
from planners.plan_text import TextPlanParser
from planners.tools import ToolCatalog

TEXT = ('Thought: two look-ups\n1. search("a")\n2. search("b $1")\n\n3. pair(1,\n2)\n'
        '4. join()\n<END_OF_PLAN>\n')
JSON = ('{"actions": [\n{"id": 1, "tool": "search", "args": {"query": "a"}},\n'
        '{"id": 2, "tool": "search", "args": {"query": "b $1"}}\n]}\n')


def events(text: str, catalog: ToolCatalog, *, json: bool, pieces: list[str] | None = None
           ) -> list[ParseEvent]:
    builder = PlanBuilder(catalog)
    parser = JsonPlanParser(builder) if json else TextPlanParser(builder)
    out: list[ParseEvent] = []
    for piece in pieces if pieces is not None else [text]:
        out += parser.feed(piece)
    return out + parser.close()


def shown(found: list[ParseEvent]) -> list[tuple[str, object, int | None]]:
    out: list[tuple[str, object, int | None]] = []
    for e in found:
        if isinstance(e, Action):
            out.append(("action", (e.id, e.tool, e.deps, e.thought), e.line))
        elif isinstance(e, PlanProblem):
            out.append((e.code, e.message, e.line))
        else:
            assert isinstance(e, Joined)
            out.append(("join", e.answer, e.line))
    return out


def splits(text: str) -> list[list[str]]:
    """The text whole, one character a piece, and cut after each CR (a CRLF split)."""
    after_cr = [p + "\r" for p in text.split("\r")]
    after_cr[-1] = after_cr[-1][:-1]
    return [[text], list(text), after_cr]


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("ending", ["\r", "\r\n"])
def test_cr_and_crlf_end_lines_as_lf_does(catalog: ToolCatalog, fmt: str, ending: str) -> None:
    plan = TEXT if fmt == "text" else JSON
    want = shown(events(plan, catalog, json=fmt == "json"))
    assert want and not any(isinstance(w[0], str) and w[0] not in ("action", "join")
                            for w in want)
    written = plan.replace("\n", ending)
    for pieces in splits(written):
        assert shown(events(written, catalog, json=fmt == "json", pieces=pieces)) == want


def test_a_lone_cr_plan_s_errors_name_their_lines(catalog: ToolCatalog) -> None:
    # was one line, 'unexpected text after the call: \'2. search("b")\\r3. join()\'',
    # and "the plan does not end with join()"
    text = '1. search("a")\r2. nope("b")\r\r4. join()\r<END_OF_PLAN>\r5. search("c")\r'
    assert [(code, line) for code, _, line in shown(events(text, catalog, json=False))
            if code not in ("action", "join")] == [("unknown_tool", 2), ("after_end", 6)]
    bad = '{"actions": [\r{"id": 1, "tool": "search", "args": {"query": "a"}}\r x]}'
    assert [(code, line) for code, _, line in shown(events(bad, catalog, json=True))
            if code == "bad_json"] == [("bad_json", 3)]


def test_cr_then_lf_pieces_are_one_line_break_and_lf_after_it_another(
        catalog: ToolCatalog) -> None:
    text = '1. search("a")\r\n\n2. nope()\n3. join()\n'
    for pieces in (["1. search(\"a\")\r", "\n", "\n2. nope()\n3. join()\n"],
                   ["1. search(\"a\")\r", "\n\n", "2. nope()\n3. join()\n"]):
        problems = [(c, line) for c, _, line in shown(events(text, catalog, json=False,
                                                              pieces=pieces))
                    if c == "unknown_tool"]
        assert problems == [("unknown_tool", 3)]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_byte_order_mark_before_the_plan_is_skipped(catalog: ToolCatalog, fmt: str) -> None:
    # a text plan's first line was 'expected `N. tool(arguments)` ..., got
    # \'\\ufeff1. search("a")\''
    plan = TEXT if fmt == "text" else JSON
    want = shown(events(plan, catalog, json=fmt == "json"))
    for pieces in (["\ufeff" + plan], ["\ufeff", plan], ["", "\ufeff", plan[:3], plan[3:]]):
        assert shown(events("", catalog, json=fmt == "json", pieces=pieces)) == want



@pytest.mark.parametrize(("text", "fmt"), [
    # the text action after a CR-ended line of prose was not seen: the JSON-looking
    # string made it a JSON plan
    ('Here is the plan:\r1. search("{\\"actions\\": 1}")\r2. join()\r', "text"),
    ('\ufeffHere is the plan:\r\n1. search("{\\"actions\\": 1}")\r\n2. join()\r\n', "text"),
    ('\ufeff```json\r{"actions": [{"id": 1, "tool": "search", "args": ["a"]}]}\r```\r',
     "json"),
])
def test_the_format_is_told_apart_whatever_the_line_endings(text: str, fmt: str) -> None:
    doc = LLMCompilerPlanner.parse_document(text, any_tool=True)
    assert (doc["format"], doc["ok"], [a["id"] for a in doc["actions"]]) == (fmt, True, [1])
