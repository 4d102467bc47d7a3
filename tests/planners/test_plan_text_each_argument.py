"""Text plans: each argument of a call is read whatever the others are. An argument
that is no literal (`foo`) hid every other unreadable one and every reference of the
action; now the action's bad_args problem names each, and the references of the
arguments that were read are checked too."""

from __future__ import annotations

import pytest

from planners.llmcompiler import parse_plan
from planners.plan_text import ArgSyntaxError, parse_call_args, read_call_args
from planners.tools import ToolCatalog

LATER = ("which is not an earlier action (an action can only use results of the actions "
         "above it)")


def test_every_unreadable_argument_and_every_bad_reference_is_reported(
        catalog: ToolCatalog) -> None:
    plan = '1. search("a")\n2. pair(foo, $5, x=bar, y=$-1)\n3. search("c")\n4. join()\n'
    found = [(p.line, p.code, p.message) for p in parse_plan(plan, catalog).problems]
    assert found == [
        (2, "bad_args", 'action 2: `foo` is not a literal; quote text, e.g. "foo"; `bar` is '
                        'not a literal; quote text, e.g. "bar"'),
        (2, "bad_reference", "action 2: no such action $-1"),
        (2, "bad_reference", f"action 2 refers to $5, {LATER}"),
        # pair() takes a and b: the names are checked whatever their values are
        (2, "bad_args", "pair() has no argument 'x' (arguments: a, b); pair() has no "
                        "argument 'y' (arguments: a, b)")]


def test_a_wrong_number_leaves_the_references_unjudged(catalog: ToolCatalog) -> None:
    plan = '1. search("a")\n1. pair(foo, $1)\n2. join()\n'
    assert [(p.line, p.code) for p in parse_plan(plan, catalog).problems] == [
        (2, "bad_args"), (2, "bad_id")]


def test_repeated_and_double_star_keywords_are_each_named() -> None:
    assert read_call_args('1, a=2, a=3, **{"b": 1}, c=zz') == (
        [1], {"a": 2}, ["argument 'a' is given twice", "`**` is not allowed in arguments",
                        '`zz` is not a literal; quote text, e.g. "zz"'])


def test_parse_call_args_raises_naming_each() -> None:
    with pytest.raises(ArgSyntaxError) as info:
        parse_call_args("foo, bar")
    assert str(info.value) == ('`foo` is not a literal; quote text, e.g. "foo"; `bar` is not '
                               'a literal; quote text, e.g. "bar"')
    assert parse_call_args('"a", x=$1') == (["a"], {"x": parse_call_args("$1")[0][0]})


def test_an_action_with_one_unreadable_argument_reads_as_before(catalog: ToolCatalog) -> None:
    plan = '1. search("a")\n2. search(foo)\n3. join()\n'
    assert [(p.line, p.code, p.message) for p in parse_plan(plan, catalog).problems] == [
        (2, "bad_args", 'action 2: `foo` is not a literal; quote text, e.g. "foo"')]
