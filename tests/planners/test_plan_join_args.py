"""A text plan's `join("done")` (a join with arguments other than one `$N`) is the plan's
join() written wrong: it was read as a call of a tool named `join`, so the planner was told
"tool 'join' is not allowed here (allowed: ...)" and "the plan does not end with join()",
two wrong problems that point the repair away from the join."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.runtime.registry import tool_spec
from planners.llmcompiler import parse_plan
from planners.testing import ScriptedLLM
from planners.tools import ToolCatalog
from tests.planners.conftest import PlanWorkflow, Recorder

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("line", ['2. join("done")', '2. join($1, $1)', "2. JOIN(1)",
                                  'join("done")', '2. `join("done")`'])
def test_a_join_with_arguments_is_one_bad_args_problem(catalog: ToolCatalog,
                                                         line: str) -> None:
    plan = parse_plan(f'1. search("a")\n{line}\n<END_OF_PLAN>\n', catalog)
    assert [(p.line, p.code) for p in plan.problems] == [(2, "bad_args")], plan.problems
    (problem,) = plan.problems
    assert problem.message.startswith("join() takes no arguments (or one $N, the action "
                                      "whose result is the answer), got "), problem.message
    assert [a.id for a in plan.actions] == [1]


def test_a_join_with_arguments_written_over_two_lines_is_shown_on_one(
        catalog: ToolCatalog) -> None:
    (problem,) = parse_plan('1. search("a")\n2. join(\n  "done")\n', catalog).problems
    assert (problem.line, problem.code) == (2, "bad_args")
    assert problem.message.endswith("""got 'join( "done")'"""), problem.message


def test_a_second_join_with_arguments_is_also_a_second_join(catalog: ToolCatalog) -> None:
    plan = parse_plan('1. search("a")\n2. join()\n3. join(1)\n', catalog)
    assert [(p.line, p.code) for p in plan.problems] == [(3, "bad_args"), (3, "two_joins")]


@pytest.mark.parametrize("fine", ["2. join()", "2. join($1)", "2. join(${1})"])
def test_a_join_without_arguments_or_with_one_reference_is_fine(catalog: ToolCatalog,
                                                                fine: str) -> None:
    plan = parse_plan(f'1. search("a")\n{fine}\n<END_OF_PLAN>\n', catalog)
    assert plan.problems == [] and plan.joined


def test_a_tool_named_join_is_still_called(catalog: ToolCatalog) -> None:
    def join(parts: list[str]) -> str:
        return "".join(parts)

    tools = ToolCatalog({**catalog.tools, **ToolCatalog.of([tool_spec(join, "join")]).tools})
    plan = parse_plan('1. search("a")\n2. join(["$1", "b"])\n3. join()\n', tools)
    assert plan.problems == [], plan.problems
    assert [(a.id, a.tool) for a in plan.actions] == [(1, "search"), (2, "join")]


async def test_a_run_records_it_and_the_repair_prompt_names_it(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    finish: Any = '{"action": "finish", "answer": "ok"}'
    llm = ScriptedLLM([("Actions and observations", finish),
                       ("rejected", '1. search("a")\n2. join()\n<END_OF_PLAN>'),
                       ("Question", '1. search("a")\n2. join("done")\n<END_OF_PLAN>')])
    result = await plan_workflow(llm, tools=["search"]).run(hooks=[recorder])
    assert result.ok, result.error
    (error,) = recorder.of("plan_error")
    assert (error.code, error.line) == ("bad_args", 2)
    assert "join() takes no arguments" in error.error and "not allowed" not in error.error
    assert error.error in llm.prompts("rejected")[0]


def test_a_join_with_arguments_after_the_end_is_after_end(catalog: ToolCatalog) -> None:
    """`join()` after <END_OF_PLAN> was reported, `join("x")` skipped as a remark."""
    plan = parse_plan('1. search("a")\n2. join()\n<END_OF_PLAN>\njoin()\njoin("x")\n',
                      catalog)
    assert [(p.line, p.code) for p in plan.problems] == [(4, "after_end"), (5, "after_end")]
