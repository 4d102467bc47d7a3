"""A `join(` the parser cannot read (never closed) is the plan's join(), not a call of a
tool named `join`: it was also reported as `tool 'join' is not allowed here` [unknown_tool]
next to its own problem (unterminated) and the plan's missing join() (no_join)."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from orchestrator.cli.plan_cmd import plan_app
from planners.llmcompiler import parse_plan
from planners.tools import ToolCatalog

PLAN = '1. calc(expression="1")\n2. join(\n'


def test_an_unclosed_join_is_not_an_unknown_tool(catalog: ToolCatalog) -> None:
    found = parse_plan(PLAN, catalog).problems
    assert [(p.line, p.code) for p in found] == [(2, "unterminated"), (2, "no_join")]


def test_plan_parse_names_two_problems_with_an_allowlist(tmp_path: Path) -> None:
    plan = tmp_path / "p.txt"
    plan.write_text(PLAN)
    app = typer.Typer()
    app.add_typer(plan_app, name="plan")
    result = CliRunner().invoke(app, ["plan", "parse", "-t", "calc", str(plan)])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert [e.rsplit(" ", 1)[-1] for e in errors] == ["[unterminated]", "[no_join]"]
    assert "2 errors in the plan" in result.stderr


def test_an_unclosed_call_of_an_unknown_tool_still_names_it(catalog: ToolCatalog) -> None:
    found = parse_plan('1. frob(\n', catalog).problems
    assert [(p.line, p.code) for p in found][:2] == [(1, "unterminated"), (1, "unknown_tool")]
