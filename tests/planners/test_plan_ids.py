"""Action ids no plan can use (negative, zero, out of order, too long to be an id) are
one ``bad_id`` problem on their own line, naming the id as written and the one expected,
in the text and the JSON format and in ``ponder plan parse``; the actions after them are
measured against the plan's numbering, not against the wrong id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from orchestrator.cli.plan_cmd import plan_app
from planners.llmcompiler import parse_plan
from planners.tools import ToolCatalog

NOT_AN_ID = "is not a valid action number (actions are numbered 1, 2, 3...)"
LONG = "1234567890123456789012345678901234567890123456789"
LONG_SHOWN = "12345678901234567890...23456789"

# (name, second action's id as written, the rest of the plan's ids, problems: (line, message))
CASES = [
    # `-1.` was prose, skipped with its action, and the plan was fine without it
    ("negative", "-1", [2], [(2, f"action id -1 {NOT_AN_ID}: expected 2")]),
    ("zero", "0", [2], [(2, f"action id 0 {NOT_AN_ID}: expected 2")]),
    # the actions after a long id were measured against it: "action id 2 goes back to
    # a number: expected 123456790"
    ("nine digits, then the plan's numbering", "123456789", [2],
     [(2, "action id 123456789 skips numbers: expected 2")]),
    ("nine digits, numbering on from it", "123456789", [123456790],
     [(2, "action id 123456789 skips numbers: expected 2")]),
    ("ten digits", "1234567890", [2], [(2, "action id 1234567890 skips numbers: expected 2")]),
    ("fifty digits", LONG, [2], [(2, f"action id {LONG_SHOWN} skips numbers: expected 2")]),
    ("one skipped", "3", [4], [(2, "action id 3 skips a number: expected 2")]),
    # the action that reached the wrong id's number was "used twice (first in line 2)"
    ("one skipped, then the plan's numbering up to it", "3", [2, 3],
     [(2, "action id 3 skips a number: expected 2")]),
    ("one skipped, then a wrong one", "3", [5],
     [(2, "action id 3 skips a number: expected 2"),
      (3, "action id 5 skips numbers: expected 2")]),
]


def text_plan(second: str, rest: list[int]) -> str:
    lines = ['1. search("a")', f'{second}. search("b")',
             *(f'{i}. search("c")' for i in rest), f"{max([2, *rest]) + 1}. join()"]
    return "\n".join(lines) + "\n<END_OF_PLAN>\n"


def json_plan(second: str, rest: list[int]) -> str:
    def action(id_: str) -> str:
        return f'{{"id": {id_}, "tool": "search", "args": {{"query": "x"}}}}'

    return '{"actions": [\n' + ",\n".join(action(i) for i in ["1", second, *map(str, rest)]) \
        + "\n]}\n"


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize(("name", "second", "rest", "want"), CASES, ids=[c[0] for c in CASES])
def test_an_id_no_action_can_have_is_one_problem_on_its_line(
        catalog: ToolCatalog, fmt: str, name: str, second: str, rest: list[int],
        want: list[tuple[int, str]]) -> None:
    text = (text_plan if fmt == "text" else json_plan)(second, rest)
    plan = parse_plan(text, catalog, fmt=fmt)
    below = 0 if fmt == "text" else 1  # (a JSON plan's actions start on its line 2)
    assert [(p.line, p.message) for p in plan.problems] == [(n + below, m) for n, m in want]
    assert {p.code for p in plan.problems} == {"bad_id"}
    # the actions whose numbers are right are kept (a plan error rejects the plan in a
    # run; `ponder plan parse` lists them)
    assert [a.id for a in plan.actions] == [1, *(i for i in rest if i not in (5,))]


@pytest.mark.parametrize("line", ["Step -1: search(\"b\")", "- -1) `search(\"b\")`",
                                  "**-1.** search(\"b\")"])
def test_a_negative_number_is_read_in_every_numbering(catalog: ToolCatalog, line: str) -> None:
    plan = parse_plan(f'1. search("a")\n{line}\n2. join()\n', catalog, fmt="text")
    assert [(p.code, p.line, p.message) for p in plan.problems] == [
        ("bad_id", 2, f"action id -1 {NOT_AN_ID}: expected 2")]


@pytest.mark.parametrize(("line", "code"), [
    ("-1. look the city up", "garbage"),  # numbered as an action, no call
    ("-5 degrees in Oslo, so dress warmly.", None),  # prose is skipped
    ("- 1. search(\"b\")", "bad_id"),  # a list bullet, then action 1 again
])
def test_a_line_starting_with_minus_is_read_as_meant(catalog: ToolCatalog, line: str,
                                                     code: str | None) -> None:
    plan = parse_plan(f'1. search("a")\n{line}\n2. join()\n', catalog, fmt="text")
    assert [(p.code, p.line) for p in plan.problems] == ([(code, 2)] if code else [])


def test_a_negative_id_after_join_is_after_join(catalog: ToolCatalog) -> None:
    plan = parse_plan('1. search("a")\n2. join()\n-1. search("b")\n', catalog, fmt="text")
    assert [(p.code, p.line, p.message) for p in plan.problems] == [
        ("after_join", 3, "action -1 comes after join() (line 2)")]


def cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(plan_app, name="plan")
    return app


@pytest.mark.parametrize(("second", "message"), [
    ("-1", f"action id -1 {NOT_AN_ID}: expected 2"),
    ("123456789", "action id 123456789 skips numbers: expected 2"),
    (LONG, f"action id {LONG_SHOWN} skips numbers: expected 2"),
])
def test_plan_parse_prints_the_line_and_the_id(tmp_path: Path, second: str,
                                               message: str) -> None:
    plan = tmp_path / "plan.txt"
    plan.write_text(text_plan(second, [2]))
    result = CliRunner().invoke(cli(), ["plan", "parse", str(plan)])
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [f"{plan}:2: error: {message} [bad_id]",
                                          "1 error in the plan"]
    result = CliRunner().invoke(cli(), ["plan", "parse", "-", "--json"],
                                input=text_plan(second, [2]))
    doc = json.loads(result.stdout)
    assert doc["errors"] == [{"line": 2, "code": "bad_id", "message": message}]
    assert [a["id"] for a in doc["actions"]] == [1, 2]
