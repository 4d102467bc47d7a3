"""`ponder plan parse` without --tool/--workflow accepts any tool name: its "ok" said
nothing of the tools it could not check. A note (stderr; `note` and `unchecked_tools` in
--json) names them and says how to have them checked."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from orchestrator.cli.plan_cmd import plan_app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "planners"
PLAN = '1. lookup("Paris", "population")\n2. calc("$1 * 2")\n3. join()\n'
NOTE = ("tool 'lookup' is not a built-in tool: its name and arguments were not checked; "
        "give --workflow FILE (its `tools:`) or --tool NAME to check them")


def cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(plan_app, name="plan")
    return app


def test_an_unchecked_tool_is_named_in_a_note_on_stderr() -> None:
    result = CliRunner().invoke(cli(), ["plan", "parse", "-"], input=PLAN)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [f"<stdin>: note: {NOTE}"]
    assert result.stdout.splitlines()[-1] == "ok: 2 actions (text format)"


def test_the_note_is_a_field_of_the_json_output() -> None:
    result = CliRunner().invoke(cli(), ["plan", "parse", "-", "--json"], input=PLAN)
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["unchecked_tools"] == ["lookup"] and doc["note"] == NOTE


def test_several_unchecked_tools_are_each_named() -> None:
    plan = '1. lookup("a")\n2. weather("b")\n3. join()\n'
    doc = json.loads(CliRunner().invoke(cli(), ["plan", "parse", "-", "--json"],
                                        input=plan).stdout)
    assert doc["unchecked_tools"] == ["lookup", "weather"]
    assert doc["note"].startswith("tools 'lookup', 'weather' are not built-in tools: their "
                                  "names and arguments were not checked"), doc["note"]


def test_no_note_when_the_tools_were_checked() -> None:
    for options in (["--workflow", str(EXAMPLES / "parallel_qa.yaml")], ["-t", "calc"]):
        plan = PLAN if "--workflow" in options else '1. calc("1 + 1")\n2. join()\n'
        result = CliRunner().invoke(cli(), ["plan", "parse", "-", "--json", *options],
                                    input=plan)
        doc = json.loads(result.stdout)
        assert result.exit_code == 0 and doc["note"] is None and doc["unchecked_tools"] == []
    built_in = CliRunner().invoke(cli(), ["plan", "parse", "-"], input='1. calc("1")\n2. join()\n')
    assert built_in.exit_code == 0 and built_in.stderr == ""


def test_a_plan_with_errors_gets_no_note_but_lists_the_tools() -> None:
    plan = '1. lookup("a")\n2. lookup($5)\n3. join()\n'
    result = CliRunner().invoke(cli(), ["plan", "parse", "-"], input=plan)
    assert result.exit_code == 1 and "note:" not in result.stderr
    doc = json.loads(CliRunner().invoke(cli(), ["plan", "parse", "-", "--json"],
                                        input=plan).stdout)
    assert doc["note"] is None and doc["unchecked_tools"] == ["lookup"]
