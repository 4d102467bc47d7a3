"""The text plan parser on adversarial token streams: cut at every position, one
character at a time, with empty pieces, the result is the whole text's; CRLF line ends
read as LF; a long line streams in linear time; a string may run over lines."""

from __future__ import annotations

import time
from typing import Any

import pytest

from planners.plan import Action, PlanBuilder, PlanProblem
from planners.plan_text import TextPlanParser
from planners.tools import ToolCatalog


def events(catalog: ToolCatalog, chunks: list[str]) -> list[Any]:
    parser = TextPlanParser(PlanBuilder(catalog))
    out: list[Any] = []
    for chunk in chunks:
        out += parser.feed(chunk)
    return out + parser.close()


def summary(found: list[Any]) -> list[tuple[Any, ...]]:
    """The events without the text they were read from (a CRLF plan's differs)."""
    return [(e.id, e.tool, e.args, e.deps, e.line, e.thought) if isinstance(e, Action)
            else (e.code, e.message, e.line) if isinstance(e, PlanProblem) else e
            for e in found]


ADVERSARIAL = [
    'Thought: two\n1. search("Paris")\n2. search("Rome")\n3. calc("$1 + $2")\n4. join()\n'
    "<END_OF_PLAN>\n",
    # a thought, a join and the end marker cut anywhere; the marker right after join()
    "Thought: a long thought that\n spans\n1. search(\"x\")\n2. join()<END_OF_PLAN>",
    '1. search("x")\r\n2. pair($1, [$1, "$1", ["${1}"]])\r\nThought: ok\r\n3. join()\r\n'
    "<END_OF_PLAN>\r\n",
    '1. search("é 🎉 \\u00e9 \\ud83d\\ude00 \u201ccurly\u201d \u2018single\u2019 “curly”")\n2. join()\n',
    "1. search(\u201cParis\u201d)\n2. search(\u2018it\u2019s\u2019)\n3. join()\n",
    '1. search("a \\"quoted\\" (")\n2. search(\'it\\\'s $$5 )\')\n3. join()\n',
    '1. search("x")  # a comment with ( and "quote\n# full line ( comment\n'
    '2. calc("$1")  # ) \n3. join()  # done\n',
    '1. pair(\n  [1,\n   2],\n  {"k": [$0, "$1"]}\n)\n2. join()\n',
    '1. search("x")\n2. search(f"in {$1} and {{braces}}")\n3. join($2)\n<END_OF_PLAN>trailing\n'
    '4. search("z")\n',
    '```\n1. search("x")\n```\nHere you go.\n2. join()\n',
    '**1.** `search("x")`\n- 2) search(query="y")\nAction 3: calc("$1*$2")\nStep 4: join()\n',
    '1. search("x")\n<END_OF_PL',
    '1. search("multi\nline\r\nstring")\n2. join()\n',
    '1. search("x"\n2. join()\n',
    '1. search("x")\n2. join()\n<END_OF_PLAN>\r\n3. search("y")\r\n',
    '1. search("x")\n2. pair($1["a b"], $1[-1])\n3. join($-1)',
    '1. search($9999999999)\n2. calc("$$1 ${3}")\n',
]


@pytest.mark.parametrize("text", ADVERSARIAL)
def test_a_stream_cut_anywhere_parses_as_the_whole_text(catalog: ToolCatalog, text: str
                                                        ) -> None:
    whole = events(catalog, [text])
    for i in range(len(text) + 1):
        assert events(catalog, [text[:i], "", text[i:]]) == whole, i
    assert events(catalog, ["", *text, ""]) == whole


CRLF_PLANS = [
    'Thought: look up\n1. search("Paris")  # a comment\n2. total([1,\n  2,  # two\n  3])\n'
    "3. join($2)\n<END_OF_PLAN>\n",
    '1. search("two\nlines")\n2. search("x")\nand some prose\n3. join()\n',
    '1. search("x"\n2. join()\n',
]


@pytest.mark.parametrize("text", CRLF_PLANS)
def test_crlf_line_ends_read_as_lf(catalog: ToolCatalog, text: str) -> None:
    crlf = text.replace("\n", "\r\n")
    assert summary(events(catalog, list(crlf))) == summary(events(catalog, [text]))


def test_a_string_may_run_over_lines(catalog: ToolCatalog) -> None:
    # Python's parser refused the line break: "unterminated string literal (detected at
    # line 1)", a line of its own count; a JSON plan's string may hold one
    text = '1. search("first\nsecond \\" # not a comment\r\nthird")  # one\n2. join()\n'
    found = events(catalog, [text])
    assert not [e for e in found if isinstance(e, PlanProblem)], found
    assert found[0].args == {"query": 'first\nsecond " # not a comment\nthird'}
    assert found[0].line == 1


def test_a_long_line_streams_in_linear_time(catalog: ToolCatalog) -> None:
    text = '1. search("' + "x" * 300_000 + '")\n2. join()\n<END_OF_PLAN>\n'
    parser = TextPlanParser(PlanBuilder(catalog))
    started = time.perf_counter()
    found: list[Any] = []
    for i in range(0, len(text), 3):
        found += parser.feed(text[i:i + 3])
    found += parser.close()
    # the line so far was copied and searched for every token: 15 s on a developer's
    # machine, 0.3 s once it is held in pieces
    assert time.perf_counter() - started < 4
    assert [type(e).__name__ for e in found] == ["Action", "Joined"]
