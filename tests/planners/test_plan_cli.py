"""`ponder plan parse FILE|- [--json]`: the parsed DAG, or every error with its line."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from orchestrator.cli.plan_cmd import plan_app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "planners"
GOOD = '1. lookup("Paris", "population")\n2. lookup("Rome", "population")\n' \
       '3. calc("$1 + $2")\n4. join()\n<END_OF_PLAN>\n'
BAD = '1. calc("1 + 1")\n2. calc($4)\n2. calc(7)\ncalc(8)\njoin()\njoin()\n'


def cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(plan_app, name="plan")
    return app


def test_a_valid_plan_prints_its_dag(tmp_path: Path) -> None:
    plan = tmp_path / "plan.txt"
    plan.write_text(GOOD)
    result = CliRunner().invoke(cli(), ["plan", "parse", str(plan), "--workflow",
                                        str(EXAMPLES / "parallel_qa.yaml")])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["1", "lookup", '{"city":', '"Paris",', '"attribute":',
                                '"population"}', "deps:", "-"]
    assert lines[2].endswith("deps: $1, $2")
    assert lines[-1] == "ok: 3 actions (text format)"


def test_a_plan_that_names_its_answer_says_which() -> None:
    named = GOOD.replace("join()", "join($3)")
    assert named != GOOD
    result = CliRunner().invoke(cli(), ["plan", "parse", "-"], input=named)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "ok: 3 actions (text format); answer: $3"


def test_json_output_from_stdin() -> None:
    result = CliRunner().invoke(cli(), ["plan", "parse", "-", "--json"], input=GOOD)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["format"] == "text"
    assert [(a["id"], a["tool"], a["deps"]) for a in doc["actions"]] == [
        (1, "lookup", []), (2, "lookup", []), (3, "calc", [1, 2])]
    assert doc["actions"][2]["args"] == {"expression": "$1 + $2"}


def test_every_error_is_printed_with_its_line(tmp_path: Path) -> None:
    plan = tmp_path / "bad.txt"
    plan.write_text(BAD)
    result = CliRunner().invoke(cli(), ["plan", "parse", str(plan)])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert [e.split(": error: ")[0] for e in errors] == [f"{plan}:{n}"
                                                         for n in (2, 3, 3, 4, 6)]
    assert "[bad_reference]" in errors[0] and "[bad_id]" in errors[1]
    # the repeated id does not hide the mistyped argument of its line
    assert "[bad_args]" in errors[2]
    assert "[garbage]" in errors[3] and "[two_joins]" in errors[4]
    assert "5 errors in the plan" in result.stderr
    doc = json.loads(CliRunner().invoke(cli(), ["plan", "parse", str(plan), "--json"]).stdout)
    assert not doc["ok"] and [e["line"] for e in doc["errors"]] == [2, 3, 3, 4, 6]


def test_the_allowlist_and_json_plans() -> None:
    text = '{"actions": [{"id": 1, "tool": "search", "args": {"query": "x"}}]}'
    result = CliRunner().invoke(cli(), ["plan", "parse", "-", "--json", "--tool", "calc"],
                                input=text)
    doc = json.loads(result.stdout)
    assert result.exit_code == 1 and doc["format"] == "json"
    assert doc["errors"][0]["code"] == "unknown_tool"
    result = CliRunner().invoke(cli(), ["plan", "parse", "-"], input=text)
    assert result.exit_code == 0  # without an allowlist any other tool name is accepted


def test_a_missing_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli(), ["plan", "parse", str(tmp_path / "none.txt")])
    assert result.exit_code == 2 and "cannot read" in result.stderr  # 1: the plan has errors
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_file_that_is_not_utf8_names_the_file_line_and_byte(tmp_path: Path) -> None:
    plan = tmp_path / "latin1.txt"
    plan.write_bytes('1. search("a")\n2. search("café")\n3. join()\n'.encode("latin-1"))
    result = CliRunner().invoke(cli(), ["plan", "parse", str(plan)])
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    assert result.stderr.strip() == (f"error: {plan}:2: not UTF-8 text: byte 0xe9 at offset "
                                     "29 (invalid continuation byte); save the plan as UTF-8")
    piped = CliRunner().invoke(cli(), ["plan", "parse", "-"], input=plan.read_bytes())
    assert piped.exit_code == 2 and "<stdin>:2: not UTF-8 text" in piped.stderr


def test_a_utf8_file_with_a_bom_parses(tmp_path: Path) -> None:
    plan = tmp_path / "bom.txt"
    plan.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    result = CliRunner().invoke(cli(), ["plan", "parse", str(plan)])
    assert result.exit_code == 0, result.output


def test_a_bad_option_exits_2() -> None:
    result = CliRunner().invoke(cli(), ["plan", "parse", "-", "--format", "xml"], input=GOOD)
    assert result.exit_code == 2 and "--format must be text, json or auto" in result.stderr


def test_json_output_names_the_plans_answer() -> None:
    text = GOOD.replace("4. join()", "4. join($3)")
    doc = json.loads(CliRunner().invoke(cli(), ["plan", "parse", "-", "--json"],
                                        input=text).stdout)
    assert doc["ok"] and doc["answer"] == 3
    plain = json.loads(CliRunner().invoke(cli(), ["plan", "parse", "-", "--json"],
                                          input=GOOD).stdout)
    assert "answer" not in plain


def test_a_tool_option_naming_no_known_tool_says_how_to_allow_it() -> None:
    result = CliRunner().invoke(cli(), ["plan", "parse", "-", "-t", "lookup"], input=GOOD)
    assert result.exit_code == 2
    assert ("--tool 'lookup' is neither a built-in tool nor one of a workflow's `tools:`"
            in result.stderr)
    assert "give --workflow FILE, or leave out --tool to accept any tool name" in result.stderr
    ok = CliRunner().invoke(cli(), ["plan", "parse", "-", "--workflow",
                                    str(EXAMPLES / "parallel_qa.yaml"), "-t", "lookup",
                                    "-t", "calc"], input=GOOD)
    assert ok.exit_code == 0, ok.stderr


def test_a_json_plan_after_a_line_of_prose_is_read_as_json() -> None:
    text = ('Here is the plan:\n{"actions": [{"id": 1, "tool": "calc", '
            '"args": {"expression": "1 + 1"}}]}\nDone.\n')
    result = CliRunner().invoke(cli(), ["plan", "parse", "-", "--json"], input=text)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["format"] == "json" and [a["tool"] for a in doc["actions"]] == ["calc"]
