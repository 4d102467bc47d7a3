"""Every bad `$N` of one action is reported, each at its line: `3. pair($5, $7)` named
$5 only, and a malformed reference (`$-1`) hid the missing ones after it. A planner
still gives up its plan at the first bad action, and its recorded error (which the
repair prompt quotes) names every bad reference of that action."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from orchestrator import Workflow
from orchestrator.cli.plan_cmd import plan_app
from planners.llmcompiler import parse_plan
from planners.plan import PlanBuilder, PlanProblem
from planners.testing import ScriptedLLM
from planners.tools import ToolCatalog

PlanWorkflow = Callable[..., Workflow]
LATER = "which is not an earlier action"

TWO_LATER = {
    "text": '1. search("a")\n2. search("b")\n3. pair($5, $7)\n4. join()\n',
    "json": '{"actions": [\n{"id": 1, "tool": "search", "args": ["a"]},\n'
            '{"id": 2, "tool": "search", "args": ["b"]},\n'
            '{"id": 3, "tool": "pair", "args": ["$5", "$7"]}\n]}',
}


def found(text: str, catalog: ToolCatalog, fmt: str = "text") -> list[tuple[int | None, str,
                                                                            str]]:
    return [(p.line, p.code, p.message) for p in parse_plan(text, catalog, fmt=fmt).problems]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_each_later_reference_of_an_action_is_reported(catalog: ToolCatalog, fmt: str) -> None:
    line = 3 if fmt == "text" else 4
    assert found(TWO_LATER[fmt], catalog, fmt) == [
        (line, "bad_reference", f"action 3 refers to $5, {LATER} (an action can only use "
                                "results of the actions above it)"),
        (line, "bad_reference", f"action 3 refers to $7, {LATER} (an action can only use "
                                "results of the actions above it)")]


def test_self_later_and_missing_references_of_one_action_are_each_reported(
        catalog: ToolCatalog) -> None:
    plan = '1. search("a")\n2. pair($2, [$0, "${3} and $9"])\n3. search("c")\n4. join()\n'
    assert [m for _, _, m in found(plan, catalog)] == [
        "action 2: no such action $0", "action 2 refers to its own result $2",
        f"action 2 refers to $3, {LATER} (an action can only use results of the actions "
        "above it)",
        f"action 2 refers to $9, {LATER} (an action can only use results of the actions "
        "above it)"]


@pytest.mark.parametrize(("fmt", "plan"), [
    ("text", '1. pair("$-1", "${x} $5 $12345678901")\n2. join()\n'),
    ("json", '{"actions": [{"id": 1, "tool": "pair", '
             '"args": ["$-1", "${x} $5 $12345678901"]}]}'),
])
def test_malformed_references_hide_no_other_reference(catalog: ToolCatalog, fmt: str,
                                                      plan: str) -> None:
    messages = [m for line, code, m in found(plan, catalog, fmt)]
    assert messages == [
        "action 1: no such action $-1",
        "${x} is not a reference to an action; write $N or ${N} (a literal $ is $$, and a "
        "plan cannot write the text ${)",
        "action 1: no such action $12345678901",
        f"action 1 refers to $5, {LATER} (an action can only use results of the actions "
        "above it)"]


def test_a_reference_repeated_in_an_action_is_reported_once(catalog: ToolCatalog) -> None:
    assert len(found("1. pair($4, ${4})\n2. join()\n", catalog)) == 1


def test_a_cycle_through_an_action_s_second_later_reference_is_found(
        catalog: ToolCatalog) -> None:
    """Action 1's first bad reference ($3) is to no action of a cycle; its second ($2)
    closes one with action 2. Only the first used to be an edge."""
    plan = '1. pair($3, $2)\n2. search($1)\n3. search("c")\n4. join()\n'
    codes = [(line, code) for line, code, _ in found(plan, catalog)]
    assert codes == [(1, "bad_reference"), (1, "bad_reference"), (1, "cycle")]
    assert found(plan, catalog)[-1][2] == "cycle: $1 -> $2 -> $1"


def test_the_builder_still_returns_the_first_problem_only(catalog: ToolCatalog) -> None:
    builder = PlanBuilder(catalog)
    builder.action(1, "search", ["a"], {}, line=1, text='search("a")')
    got = builder.action(2, "pair", ["$5", "$7"], {}, line=2, text='pair("$5", "$7")')
    assert isinstance(got, PlanProblem) and "$5" in got.message and "$7" not in got.message
    told = builder.planner_problem(got)
    assert (told.code, told.line) == ("bad_reference", 2)
    assert told.message == (f"action 2 refers to $5, {LATER} (an action can only use results "
                            f"of the actions above it); action 2 refers to $7, {LATER} (an "
                            "action can only use results of the actions above it)")


def test_the_planner_s_message_leaves_the_tool_problem_to_the_next_try(
        catalog: ToolCatalog) -> None:
    builder = PlanBuilder(catalog)
    got = builder.action(1, "clac", ["$5", "$7"], {}, line=1, text='clac("$5", "$7")')
    assert isinstance(got, PlanProblem)
    told = builder.planner_problem(got).message
    assert "$5" in told and "$7" in told and "clac" not in told
    assert builder.planner_problem(PlanProblem("no_join", "x")) == PlanProblem("no_join", "x")


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_the_recorded_plan_error_names_every_bad_reference(
        plan_workflow: PlanWorkflow, recorder: Any, fmt: str) -> None:
    repaired = {"text": '1. search("a")\n2. join()\n<END_OF_PLAN>',
                "json": '{"actions": [{"id": 1, "tool": "search", "args": ["a"]}]}'}
    llm = ScriptedLLM([("Actions and observations", '{"action": "finish", "answer": "ok"}'),
                       ("rejected", repaired[fmt]), ("Question", TWO_LATER[fmt])])
    result = await plan_workflow(llm, format=fmt).run(hooks=[recorder])
    assert result.ok, result.error
    error = recorder.of("plan_error")[0]
    assert (error.code, error.line) == ("bad_reference", 3 if fmt == "text" else 4)
    assert "refers to $5" in error.error and "refers to $7" in error.error
    assert error.error in llm.prompts("rejected")[0]


def test_ponder_plan_parse_prints_each_bad_reference() -> None:
    app = typer.Typer()
    app.add_typer(plan_app, name="plan")
    plan = TWO_LATER["text"]
    result = CliRunner().invoke(app, ["plan", "parse", "-"], input=plan)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert [e.split(": error: ")[0][-2:] for e in errors] == [":3", ":3"], result.stderr
    assert "refers to $5" in errors[0] and "refers to $7" in errors[1]
    doc = json.loads(CliRunner().invoke(app, ["plan", "parse", "-", "--json"],
                                        input=plan).stdout)
    assert [(e["line"], e["code"]) for e in doc["errors"]] == [(3, "bad_reference")] * 2


@pytest.mark.parametrize(("call", "messages"), [
    # a bare `$-1` (or a number too long for an id) stopped the reading of the arguments
    ("pair($0, ${-1})", ["action 2: no such action $-1", "action 2: no such action $0"]),
    ('pair($-1["x"], [$7])', ["action 2: no such action $-1",
                              f"action 2 refers to $7, {LATER} (an action can only use "
                              "results of the actions above it)"]),
    ('search(f"{$-2.y} {$99999999999} {$1}")', ["action 2: no such action $-2",
                                                "action 2: no such action $99999999999"]),
])
def test_a_bare_reference_to_no_action_hides_no_other(catalog: ToolCatalog, call: str,
                                                      messages: list[str]) -> None:
    plan = f'1. search("a")\n2. {call}\n3. join()\n'
    assert found(plan, catalog) == [(2, "bad_reference", m) for m in messages]


def test_a_bare_reference_to_no_action_is_still_named_as_written(catalog: ToolCatalog) -> None:
    assert [m for _, _, m in found("1. search($-1abc)\n2. join()\n", catalog)] == [
        "action 1: `$-1abc` is not a reference: $N is a number only; write it apart, or "
        "quote text (a literal $ is $$)"]
