"""Text plans: a call one argument of which Python's parser cannot read
(`search(query="a", bogus=, extra=3)`) had only that reported; the arguments around it
are now read one by one, so that the call's other problems are reported with it: a
keyword the tool does not have (`bogus` and `extra`), a bad `$N` in an argument that
was read. A missing argument is not said: the unreadable one may be it."""

from __future__ import annotations

from planners.llmcompiler import parse_plan
from planners.tools import ToolCatalog

LATER = ("which is not an earlier action (an action can only use results of the actions "
         "above it)")


def problems(plan: str, catalog: ToolCatalog) -> list[tuple[int | None, str, str]]:
    return [(p.line, p.code, p.message) for p in parse_plan(plan, catalog).problems]


def test_unknown_keywords_around_an_unreadable_argument_are_reported(
        catalog: ToolCatalog) -> None:
    found = problems('1. search(query="a", bogus=, extra=3)\n2. join()\n', catalog)
    assert found == [
        (1, "bad_args", "action 1: cannot parse the arguments 'query=\"a\", bogus=, extra=3': "
                        "invalid syntax"),
        (1, "bad_args", "search() has no argument 'bogus' (arguments: query); search() has "
                        "no argument 'extra' (arguments: query)")]


def test_a_bad_reference_next_to_an_unreadable_argument_is_reported(
        catalog: ToolCatalog) -> None:
    found = problems('1. lookup(city=$7, attribute=)\n2. join()\n', catalog)
    assert found == [
        (1, "bad_args", "action 1: cannot parse the arguments 'city=$7, attribute=': "
                        "invalid syntax"),
        (1, "bad_reference", f"action 1 refers to $7, {LATER}")]


def test_an_argument_that_is_no_literal_hides_no_unknown_keyword(
        catalog: ToolCatalog) -> None:
    found = problems('1. search(query=foo(), extra=3)\n2. join()\n', catalog)
    assert [f[1:] for f in found] == [
        ("bad_args", "action 1: `foo()` is not a literal (strings, numbers, lists, objects, "
                     "true/false/null and $N only)"),
        ("bad_args", "search() has no argument 'extra' (arguments: query)")]


def test_a_call_whose_arguments_all_fit_says_only_what_is_unreadable(
        catalog: ToolCatalog) -> None:
    # commas inside strings and brackets do not split an argument; nothing else is wrong
    found = problems('1. pair(a=[1, "x, y"], b=)\n2. join()\n', catalog)
    assert [f[1] for f in found] == ["bad_args"]
    assert "'a=[1, \"x, y\"], b='" in found[0][2]
