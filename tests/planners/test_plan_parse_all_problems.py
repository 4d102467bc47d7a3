"""`ponder plan parse` reports every problem of a plan: in one action a bad `$N`
hid the action's unknown tool or bad arguments. A malformed reference (`"$-1"`, read
by the tool as text) does not bring a type error of its own, and a planner still
repairs its plan one problem at a time."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from orchestrator.cli.plan_cmd import plan_app
from planners.llmcompiler import parse_plan
from planners.plan import PlanBuilder, PlanProblem
from planners.tools import ToolCatalog


def problems(text: str, catalog: ToolCatalog, fmt: str = "text") -> list[tuple[int | None, str]]:
    return [(p.line, p.code) for p in parse_plan(text, catalog, fmt=fmt).problems]


@pytest.mark.parametrize(("text", "fmt"), [
    ('1. calc("1")\n2. clac("$7")\n3. join()\n', "text"),
    ('{"actions": [{"id": 1, "tool": "calc", "args": ["1"]},\n'
     '{"id": 2, "tool": "clac", "args": ["$7"]}]}', "json"),
])
def test_a_bad_reference_and_an_unknown_tool_of_one_action_are_both_reported(
        catalog: ToolCatalog, text: str, fmt: str) -> None:
    assert problems(text, catalog, fmt) == [(2, "bad_reference"), (2, "unknown_tool")]


def test_a_bad_reference_and_bad_arguments_are_both_reported(catalog: ToolCatalog) -> None:
    found = parse_plan('1. calc("1")\n2. calc("$1 + $3", 5)\n3. join()\n', catalog).problems
    assert [(p.line, p.code) for p in found] == [(2, "bad_reference"), (2, "bad_args")]
    assert "takes at most 1 argument" in found[1].message


def test_a_malformed_reference_brings_no_type_error(catalog: ToolCatalog) -> None:
    """pair's `b` is an integer: "$-1" is no reference, and no integer either."""
    assert problems('1. pair(1, "$-1")\n2. join()\n', catalog) == [(1, "bad_reference")]
    assert problems('1. clac("$-1")\n2. join()\n', catalog) == [(1, "bad_reference"),
                                                                 (1, "unknown_tool")]


def test_the_planner_is_still_given_the_first_problem_only(catalog: ToolCatalog) -> None:
    builder = PlanBuilder(catalog)
    got = builder.action(1, "clac", ["$3"], {}, line=1, text='1. clac("$3")')
    assert isinstance(got, PlanProblem) and got.code == "bad_reference"


def test_ponder_plan_parse_prints_both() -> None:
    app = typer.Typer()
    app.add_typer(plan_app, name="plan")
    plan = '1. calc("1")\n2. clac("$7")\n3. join()\n'
    result = CliRunner().invoke(app, ["plan", "parse", "-", "--tool", "calc"], input=plan)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 2, result.stderr
    assert ":2: error: action 2 refers to $7" in errors[0], errors
    assert errors[1].endswith("tool 'clac' is not allowed here (allowed: calc) [unknown_tool]")
    doc = json.loads(CliRunner().invoke(app, ["plan", "parse", "-", "--json", "--tool", "calc"],
                                        input=plan).stdout)
    assert [(e["line"], e["code"]) for e in doc["errors"]] == [(2, "bad_reference"),
                                                              (2, "unknown_tool")]
