"""Text plans: an argument whose reference path is bad (`$1[x]`) is one problem of its
own; the action's other arguments are read all the same, so their problems (a value
that is no literal, a bad or later $N) are reported with it."""

from __future__ import annotations

from planners.llmcompiler import parse_plan
from planners.plan_text import read_call_args
from planners.tools import ToolCatalog

BAD_INDEX = "`$1[x]`: an index must be a whole number or a quoted key"


def test_the_other_arguments_are_read() -> None:
    positional, keywords, problems = read_call_args('$1[x], "a", foo, y=$1.b[1.5], z=2')
    assert (positional, keywords) == (["a"], {"z": 2})
    assert problems == [BAD_INDEX, '`foo` is not a literal; quote text, e.g. "foo"',
                        "`$1.b[1.5]`: an index must be a whole number or a quoted key"]


def test_the_other_arguments_problems_are_reported(catalog: ToolCatalog) -> None:
    plan = '1. search("a")\n2. pair($1[x], foo, x=$5, y=$-1)\n3. join()\n'
    found = [(p.line, p.code, p.message) for p in parse_plan(plan, catalog).problems]
    assert found == [
        (2, "bad_args", f'action 2: {BAD_INDEX}; `foo` is not a literal; quote text, '
                        'e.g. "foo"'),
        (2, "bad_reference", "action 2: no such action $-1"),
        (2, "bad_reference", "action 2 refers to $5, which is not an earlier action (an "
                             "action can only use results of the actions above it)"),
        # pair() takes a and b: the names are checked whatever their values are
        (2, "bad_args", "pair() has no argument 'x' (arguments: a, b); pair() has no "
                        "argument 'y' (arguments: a, b)")]
