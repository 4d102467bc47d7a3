"""`ponder plan parse --first-id N` checks a replan's plan, whose actions start at N: it
may use the results of the earlier rounds' actions 1 to N-1 (ids continue counting
across replans), as the run lets it. Each such `$N` was "no such action"."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from orchestrator.cli.plan_cmd import plan_app
from planners.llmcompiler import parse_plan
from planners.tools import ToolCatalog

REPLAN = '5. calc("$4 + $1")\n6. total([$2, $5])\n7. join($3)\n<END_OF_PLAN>\n'
REPLAN_JSON = json.dumps({"actions": [
    {"id": 5, "tool": "calc", "args": {"expression": "$4 + $1"}},
    {"id": 6, "tool": "total", "args": {"values": ["$2", "$5"]}}], "answer": "$3"})


@pytest.mark.parametrize("text", [REPLAN, REPLAN_JSON])
def test_a_replan_may_use_the_earlier_rounds_results(catalog: ToolCatalog, text: str) -> None:
    plan = parse_plan(text, catalog, first_id=5)
    assert plan.problems == [], plan.problems
    assert [(a.id, a.deps) for a in plan.actions] == [(5, (1, 4)), (6, (2, 5))]
    assert plan.answer == 3


@pytest.mark.parametrize("text, found", [
    ('5. calc("$5")\n6. join()\n', [(1, "bad_reference")]),  # itself
    ('5. calc("$6")\n6. calc("1")\n7. join()\n', [(1, "bad_reference")]),  # a later one
    ('5. calc("$0")\n6. join()\n', [(1, "bad_reference")]),
    ('1. calc("2")\n2. join()\n', [(1, "bad_id")]),  # an earlier round's number
])
def test_what_is_no_earlier_result_is_still_refused(catalog: ToolCatalog, text: str,
                                                    found: list[tuple[int, str]]) -> None:
    plan = parse_plan(text, catalog, first_id=5)
    assert [(p.line, p.code) for p in plan.problems] == found, plan.problems


def test_plan_parse_first_id() -> None:
    app = typer.Typer()
    app.add_typer(plan_app, name="plan")
    result = CliRunner().invoke(app, ["plan", "parse", "--first-id", "5", "-"], input=REPLAN)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].endswith("deps: $1, $4"), result.stdout
    assert result.stdout.splitlines()[-1] == "ok: 2 actions (text format); answer: $3"


def test_a_huge_first_id_costs_no_memory(catalog: ToolCatalog) -> None:
    """The ids before it were made into a set: `--first-id 100000000` took 11 GB, and a
    larger one was killed for memory."""
    first = 999_999_998  # the largest ids have 9 digits
    plan = parse_plan(f'{first}. calc("$1 + ${first - 1}")\n{first + 1}. join(${first})\n',
                      catalog, first_id=first)
    assert plan.problems == [], plan.problems
    assert [(a.id, a.deps) for a in plan.actions] == [(first, (1, first - 1))]
    late = parse_plan('7. calc("$2")\n8. join()\n', catalog, first_id=first)
    assert [p.code for p in late.problems] == ["bad_id"]


@pytest.mark.parametrize("first", ["1000000000", "99999999999999999999999"])
def test_a_first_id_no_action_can_have_is_a_usage_error(first: str) -> None:
    app = typer.Typer()
    app.add_typer(plan_app, name="plan")
    result = CliRunner().invoke(app, ["plan", "parse", "--first-id", first, "-"], input=REPLAN)
    assert result.exit_code == 2, result.output
    assert result.stderr == (f"error: --first-id {first}: an action's number has at most 9 "
                             "digits\n")
