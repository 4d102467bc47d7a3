"""An argument by name written as in JSON (`lookup(city: "Paris")`) is a `bad_args`
problem that says how to write it: the message was Python's own "invalid syntax", which
tells the planner (and the person reading `ponder plan parse`) nothing."""

from __future__ import annotations

import pytest

from planners.llmcompiler import parse_plan
from planners.plan_text import ArgSyntaxError, parse_call_args
from planners.tools import ToolCatalog


@pytest.mark.parametrize("args, name", [
    ('query: "b"', "query"),
    ('city: "Paris", attribute: "area"', "city"),
    ('"Paris", attribute: "area"', "attribute"),
    ('"Paris",\n  attribute : $1', "attribute"),
    ('"a, b: c", city: "Paris"', "city"),  # not `b`, inside the string
])
def test_a_colon_keyword_says_name_equals_value(args: str, name: str) -> None:
    with pytest.raises(ArgSyntaxError) as caught:
        parse_call_args(args)
    assert str(caught.value).endswith(
        f": write an argument by name as {name}=value, not {name}: value"), caught.value


@pytest.mark.parametrize("args", ['city: "Paris",, "area"', '"a" +* 1'])
def test_other_syntax_errors_keep_the_parser_s_words(args: str) -> None:
    with pytest.raises(ArgSyntaxError) as caught:
        parse_call_args(args)
    assert "by name" not in str(caught.value) and "invalid syntax" in str(caught.value)


@pytest.mark.parametrize("args, value", [('"time: 10:30"', ["time: 10:30"]),
                                         ('{"city": "Paris"}', [{"city": "Paris"}])])
def test_a_colon_in_a_string_or_an_object_is_no_keyword(args: str, value: list[object]
                                                        ) -> None:
    assert parse_call_args(args) == (value, {})


def test_the_plan_problem_is_at_its_line(catalog: ToolCatalog) -> None:
    plan = parse_plan('1. search("a")\n2. lookup(city: "Paris")\n3. join()\n', catalog)
    assert [(p.line, p.code) for p in plan.problems] == [(2, "bad_args")]
    assert "write an argument by name as city=value" in plan.problems[0].message
