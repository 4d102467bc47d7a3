"""A planned call's arguments: every way they do not fit the tool is named in the one
bad_args problem of its action (the first one only was: an unknown keyword hid the
missing argument it was meant to be, a surplus argument the types)."""

from __future__ import annotations

import pytest

from planners.llmcompiler import parse_plan
from planners.tools import BindError, ToolCatalog


def test_an_unknown_keyword_the_argument_it_misses_and_a_type_are_all_named(
        catalog: ToolCatalog) -> None:
    with pytest.raises(BindError) as info:
        catalog.bind("lookup", [], {"citty": "Paris", "attribute": 5})
    assert info.value.code == "bad_args"
    assert info.value.message == (
        "lookup() has no argument 'citty' (arguments: city, attribute); lookup() is missing "
        "argument 'city'; lookup(): argument attribute: input should be a valid string "
        "(got 5)")


def test_too_many_arguments_a_repeated_one_and_a_type_are_all_named(
        catalog: ToolCatalog) -> None:
    with pytest.raises(BindError) as info:
        catalog.bind("pair", [1, "x", 3], {"a": 2})
    assert info.value.message.split("; ") == [
        "pair() takes at most 2 arguments (a, b), got 3", "pair() got argument 'a' twice",
        "pair(): argument b: input should be a valid integer, unable to parse string as an "
        "integer (got \"x\")"]


@pytest.mark.parametrize(("positional", "keywords", "message"), [
    (["a", "b"], {}, "search() takes at most 1 argument (query), got 2"),
    ([], {}, "search() is missing argument 'query'"),
    ([5], {}, "search(): argument query: input should be a valid string (got 5)"),
])
def test_one_problem_is_named_as_before(catalog: ToolCatalog, positional: list[object],
                                        keywords: dict[str, object], message: str) -> None:
    with pytest.raises(BindError) as info:
        catalog.bind("search", positional, keywords)
    assert info.value.message == message


@pytest.mark.parametrize(("plan", "fmt", "line"), [
    ('1. lookup(citty="Paris", attribute=5)\n2. join()\n', "text", 1),
    ('{"actions": [\n{"id": 1, "tool": "lookup", "args": {"citty": "Paris", '
     '"attribute": 5}}\n]}', "json", 2),
])
def test_plan_parse_names_them_at_the_action_s_line(catalog: ToolCatalog, plan: str,
                                                    fmt: str, line: int) -> None:
    [problem] = parse_plan(plan, catalog, fmt=fmt).problems
    assert (problem.line, problem.code) == (line, "bad_args")
    assert "'citty'" in problem.message and "missing argument 'city'" in problem.message
    assert "argument attribute" in problem.message
