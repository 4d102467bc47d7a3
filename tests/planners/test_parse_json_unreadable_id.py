"""A JSON action whose id cannot be read (`"id": true`, `"id": "x"`, `1.5`, none) still
takes its number: the next action skipped none, yet was told `action id 2 skips a number:
expected 1`. It takes the number expected (the next action may also go on as if it were
not there), later actions may use its `$N`, and its tool and arguments are checked as
those of an action with that number."""

from __future__ import annotations

import json
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from orchestrator.cli.plan_cmd import plan_app
from planners.llmcompiler import parse_plan
from planners.tools import ToolCatalog


def plan(*actions: Any) -> str:
    return '{"actions": [\n' + ",\n".join(json.dumps(a) for a in actions) + "\n]}"


def found(text: str, catalog: ToolCatalog) -> list[tuple[int | None, str]]:
    return [(p.line, p.code) for p in parse_plan(text, catalog, fmt="json").problems]


def calc(id_: Any, expression: str = "1") -> dict[str, Any]:
    return {"id": id_, "tool": "calc", "args": {"expression": expression}}


@pytest.mark.parametrize("bad", [True, False, "x", "", None, 1.5, [1], {"n": 1}, "$1"])
def test_the_next_action_skips_no_number(catalog: ToolCatalog, bad: Any) -> None:
    assert found(plan(calc(bad), calc(2), calc(3, "$1 + $2")), catalog) == [(2, "bad_json")]


def test_an_action_without_an_id_too(catalog: ToolCatalog) -> None:
    text = plan(calc(1), {"tool": "calc", "args": {"expression": "2"}}, calc(3, "$2"))
    assert found(text, catalog) == [(3, "bad_json")]


def test_the_next_may_go_on_as_if_it_were_not_there(catalog: ToolCatalog) -> None:
    assert found(plan(calc(True), calc(1), calc(2, "$1")), catalog) == [(2, "bad_json")]
    assert found(plan(calc(1), calc("x"), calc(2), calc(3)), catalog) == [(3, "bad_json")]


def test_a_wrong_number_still_counts_as_one_or_other(catalog: ToolCatalog) -> None:
    # after `3` (expected 2) the plan may go on from 4: the unreadable one is it, then 5
    assert found(plan(calc(1), calc(3), calc("x"), calc(5)), catalog) == [
        (3, "bad_id"), (4, "bad_json")]
    # or from 2: the unreadable one is 2, then 3
    assert found(plan(calc(1), calc(3), calc("x"), calc(3, "$2")), catalog) == [
        (3, "bad_id"), (4, "bad_json")]


def test_a_real_skip_after_it_is_still_reported(catalog: ToolCatalog) -> None:
    got = parse_plan(plan(calc(1), calc(None), calc(4)), catalog, fmt="json").problems
    assert [(p.line, p.code) for p in got] == [(3, "bad_json"), (4, "bad_id")]
    assert got[1].message == "action id 4 skips a number: expected 3"


def test_its_tool_and_arguments_are_checked(catalog: ToolCatalog) -> None:
    text = plan(calc(1), {"id": "x", "tool": "clac", "args": {}},
                {"id": None, "tool": "calc", "args": {"expression": "$3 + $0"}},
                {"id": True, "tool": "calc", "args": {"expr": "1"}}, calc(5, "$2 + $3 + $4"))
    got = parse_plan(text, catalog, fmt="json").problems
    assert [(p.line, p.code) for p in got] == [
        (3, "bad_json"), (3, "unknown_tool"),
        (4, "bad_json"), (4, "bad_reference"), (4, "bad_reference"),
        (5, "bad_json"), (5, "bad_args")]
    assert [p.message for p in got[3:5]] == ["action 3: no such action $0",
                                             "action 3 refers to its own result $3"]


def test_after_join_it_is_after_join(catalog: ToolCatalog) -> None:
    text = plan(calc(1), {"tool": "join"}, calc("x"))
    assert found(text, catalog) == [(4, "bad_json"), (4, "after_join")]


def test_ponder_plan_parse_prints_one_error() -> None:
    app = typer.Typer()
    app.add_typer(plan_app, name="plan")
    text = plan(calc(True), calc(2), calc(3, "$1"))
    result = CliRunner().invoke(app, ["plan", "parse", "-", "--json"], input=text)
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert [(e["line"], e["code"]) for e in doc["errors"]] == [(2, "bad_json")]
    assert [a["id"] for a in doc["actions"]] == [2, 3]
