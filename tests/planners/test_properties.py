"""Property tests: arbitrary text never makes a parser raise; streaming in any chunks
gives what parsing the whole text gives; generated valid plans parse as generated."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.runtime.registry import tool_spec
from planners.agot import parse_check, parse_layer
from planners.joiner import Decision, parse_decision
from planners.llmcompiler import parse_plan
from planners.plan import PlanBuilder, PlanProblem
from planners.plan_json import JsonPlanParser
from planners.plan_text import TextPlanParser
from planners.tools import ToolCatalog


def _catalog() -> ToolCatalog:
    def search(query: str) -> str:
        return query

    def calc(expression: str) -> int:
        return 0

    def pair(a: int, b: Any = None) -> list[Any]:
        return [a, b]

    return ToolCatalog.of([tool_spec(search), tool_spec(calc), tool_spec(pair)])


CATALOG = _catalog()
SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
# text made of the plan language's own pieces finds more paths than random characters
PIECES = st.sampled_from(["1", "2", "3", ". ", "search", "calc", "pair", "join", "(", ")",
                          "[", "]", "{", "}", '"', "'", ",", "$", "${", "$1", "$2", "=",
                          "\n", " ", "Thought:", "<END_OF_PLAN>", "```", "true", "null",
                          "\\", "x", '{"actions": [', '{"id": 1, "tool": "calc", "args": {',
                          # other line endings, a BOM, ids no action has, digits int()
                          # refuses ("²", thousands of them), AGoT's and the joiner's keys
                          "\r", "\r\n", "\ufeff", "-1", "0", "123456789", "\u00b2",
                          "9" * 4500, '{"thoughts": [', '"parents": [', '"T', '"complex": ',
                          '{"action": "finish", "answer": '])
PLANISH = st.lists(st.one_of(PIECES, st.text(max_size=3)), max_size=60).map("".join)
ANY_TEXT = st.one_of(st.text(max_size=300), PLANISH)


def _events(parser: Any, chunks: list[str]) -> list[Any]:
    out: list[Any] = []
    for c in chunks:
        out += parser.feed(c)
    return out + parser.close()


@SETTINGS
@given(ANY_TEXT)
def test_any_text_gives_a_typed_result(text: str) -> None:
    for fmt in ("text", "json", "auto"):
        plan = parse_plan(text, CATALOG, fmt=fmt)
        assert all(isinstance(p, PlanProblem) for p in plan.problems)
        assert plan.ok or plan.problems
        # a line ends with LF, CRLF or a lone CR
        n_lines = text.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1
        assert all(p.line is None or 1 <= p.line <= n_lines for p in plan.problems)


@SETTINGS
@given(ANY_TEXT, st.lists(st.integers(min_value=1, max_value=7), max_size=40))
def test_streaming_in_any_chunks_matches_the_whole_text(text: str, cuts: list[int]) -> None:
    chunks, pos = [], 0
    for cut in cuts:
        chunks.append(text[pos:pos + cut])
        pos += cut
    chunks.append(text[pos:])
    for cls in (TextPlanParser, JsonPlanParser):
        whole = _events(cls(PlanBuilder(CATALOG)), [text])
        streamed = _events(cls(PlanBuilder(CATALOG)), chunks)
        assert streamed == whole


@st.composite
def valid_plans(draw: st.DrawFn) -> tuple[str, list[tuple[int, ...]]]:
    n = draw(st.integers(min_value=1, max_value=8))
    lines, deps = [], []
    for i in range(1, n + 1):
        uses = sorted(draw(st.sets(st.integers(min_value=1, max_value=i - 1), max_size=3))
                      if i > 1 else set())
        if uses and draw(st.booleans()):
            lines.append(f'{i}. calc("' + " + ".join(f"${u}" for u in uses) + '")')
        elif len(uses) == 1:
            lines.append(f"{i}. pair(a=${{{uses[0]}}})")
        else:
            query = draw(st.text(alphabet="abc xyz()'", max_size=10)).replace("'", "")
            lines.append(f'{i}. search("{query}")')
            uses = []
        deps.append(tuple(uses))
    return "\n".join([*lines, f"{n + 1}. join()", "<END_OF_PLAN>"]), deps


@SETTINGS
@given(valid_plans())
def test_generated_valid_plans_parse_as_generated(case: tuple[str, list[tuple[int, ...]]]
                                                  ) -> None:
    text, deps = case
    plan = parse_plan(text, CATALOG)
    assert plan.ok, plan.problems
    assert [a.deps for a in plan.actions] == deps


@SETTINGS
@given(ANY_TEXT)
def test_joiner_and_agot_readers_never_raise(text: str) -> None:
    assert isinstance(parse_decision(text), Decision | PlanProblem)
    assert isinstance(parse_check(text)[0], bool)
    parse_layer(text, 2, 3)
