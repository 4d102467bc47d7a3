"""Two strings side by side in a text plan's call (`lookup("Paris" "area")`, a comma left
out) are a `bad_args` problem: Python's parser reads them as one string, so the plan was
valid and the tool ran with "Parisarea" and one argument fewer."""

from __future__ import annotations

import pytest

from planners.llmcompiler import parse_plan
from planners.plan_text import ArgSyntaxError, parse_call_args
from planners.testing import ScriptedLLM
from planners.tools import ToolCatalog
from tests.planners.conftest import PlanWorkflow, Recorder

pytestmark = pytest.mark.anyio
GLUED = "are strings side by side, which read as one: put a comma between two arguments, " \
        "or write one string"


@pytest.mark.parametrize("args, shown", [
    ('"Paris" "area"', '"Paris" "area"'),
    ("'Paris' \"area\"", "'Paris' \"area\""),
    ('["a" "b", "c"]', '"a" "b"'),
    ('query="a" "b"', '"a" "b"'),
    ('"$1" "b" "c"', '"$1" "b" "c"'),
    ('f"in {$1}" "b"', '"in ${1}" "b"'),
    # lines indented less than the one before (tokenized alone, that was a dedent error
    # that hid the rest)
    ('"x",\n    "y"\n  "z" "w"', '"z" "w"'),
])
def test_strings_side_by_side_are_named(args: str, shown: str) -> None:
    with pytest.raises(ArgSyntaxError) as caught:
        parse_call_args(args)
    assert str(caught.value) == f"{shown} {GLUED}"


@pytest.mark.parametrize("args, value", [
    ('"a very long "\n  "query"', "a very long query"),  # one string written over two lines
    ('"Paris", "area"', None),
    ('"a \\" b"', 'a " b'),
    ('"it\'s" ', "it's"),
])
def test_what_is_no_glued_string_reads_as_before(args: str, value: str | None) -> None:
    positional, _ = parse_call_args(args)
    if value is not None:
        assert positional == [value]


def test_the_plan_names_the_line_and_the_other_problems_of_the_action(
        catalog: ToolCatalog) -> None:
    plan = parse_plan('1. lookup("Paris" "area", x)\n2. join()\n', catalog)
    assert [(p.line, p.code) for p in plan.problems] == [(1, "bad_args")], plan.problems
    assert plan.problems[0].message == (f'action 1: "Paris" "area" {GLUED}; `x` is not a '
                                        'literal; quote text, e.g. "x"')
    assert plan.actions == []


async def test_a_run_asks_again_and_the_tool_never_sees_the_glued_text(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    llm = ScriptedLLM([("Actions and observations", '{"action": "finish", "answer": "ok"}'),
                       ("rejected", '1. lookup("Paris", "area")\n2. join()\n<END_OF_PLAN>'),
                       ("Question", '1. lookup("Paris" "area")\n2. join()\n<END_OF_PLAN>')])
    result = await plan_workflow(llm, tools=["lookup"]).run(hooks=[recorder])
    assert result.ok, result.error
    (error,) = recorder.of("plan_error")
    assert (error.code, error.line) == ("bad_args", 1) and GLUED in error.error
    started = [e.input for e in recorder.of("step_started") if e.step_id != "p"]
    assert all("Parisarea" not in str(i) for i in started), started
