"""`ponder plan parse` reports the bad `$N` of an action behind a wrong id: `3. calc("$7")`
after `1.` was only `bad_id`, though its tool and argument types were checked. The
action stands in for the action expected there (the number `bad_id` names): it may use
the results of the actions above it; its own number, the one expected or a later one, or
no action's (`$0`) is a `bad_reference` at its line."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from orchestrator.cli.plan_cmd import plan_app
from planners.llmcompiler import parse_plan
from planners.tools import ToolCatalog


def found(text: str, catalog: ToolCatalog, fmt: str = "text") -> list[tuple[int | None, str,
                                                                             str]]:
    return [(p.line, p.code, p.message) for p in parse_plan(text, catalog, fmt=fmt).problems]


FORWARD = "which is not an earlier action"


@pytest.mark.parametrize(("second", "said"), [
    ('3. calc("$7")', f"action 3 refers to $7, {FORWARD}"),
    ('3. calc("$0")', "action 3: no such action $0"),
    ('3. calc("$3")', "action 3 refers to its own result $3"),
    ('3. calc("$2")', f"action 3 refers to $2, {FORWARD}"),  # 2 is expected: no action yet
    ('3. calc("${7}")', f"action 3 refers to $7, {FORWARD}"),
    ("3. total([$1, $5])", f"action 3 refers to $5, {FORWARD}"),
])
def test_a_bad_reference_behind_a_skipped_id_is_reported(catalog: ToolCatalog, second: str,
                                                         said: str) -> None:
    got = found(f'1. calc("1")\n{second}\n4. join()\n', catalog)
    assert [(line, code) for line, code, _ in got] == [(2, "bad_id"), (2, "bad_reference")]
    assert got[1][2].startswith(said)


def test_every_bad_reference_of_it_is_reported(catalog: ToolCatalog) -> None:
    got = found('1. calc("1")\n3. calc("$0 + $3 + $9 + $1")\n4. join()\n', catalog)
    messages = [m for _, _, m in got[1:]]
    assert messages[:2] == ["action 3: no such action $0",
                            "action 3 refers to its own result $3"]
    assert messages[2].startswith(f"action 3 refers to $9, {FORWARD}")
    assert len(messages) == 3


def test_the_actions_above_it_may_be_used(catalog: ToolCatalog) -> None:
    # a repeated id, an id going back, one after a wrong id that later actions use
    assert found('1. calc("1")\n2. calc("2")\n1. calc("$1 + $2")\n3. join()\n',
                 catalog)[1:] == []
    assert found('1. calc("1")\n2. calc("2")\n2. calc("$2")\n3. join()\n', catalog)[1:] == []
    assert [code for _, code, _ in found(
        '1. calc("1")\n3. calc("2")\n5. calc("$3 + $1")\n6. join()\n', catalog)] == [
        "bad_id", "bad_id"]


def test_a_zero_id_and_an_earlier_round_s_results(catalog: ToolCatalog) -> None:
    got = found('0. calc("$0 + $1")\n1. join()\n', catalog)
    messages = [m for _, _, m in got]
    assert messages[:2] == [
        "action id 0 is not a valid action number (actions are numbered 1, 2, 3...): "
        "expected 1", "action 0: no such action $0"]
    assert messages[2].startswith(f"action 0 refers to $1, {FORWARD}")
    assert len(messages) == 3


def test_the_json_format_reports_them_too(catalog: ToolCatalog) -> None:
    text = ('{"actions": [{"id": 1, "tool": "calc", "args": ["1"]},\n'
            '{"id": 3, "tool": "calc", "args": ["$7"]}]}')
    assert [(line, code) for line, code, _ in found(text, catalog, "json")] == [
        (2, "bad_id"), (2, "bad_reference")]


def test_an_unreadable_action_behind_a_wrong_id_too(catalog: ToolCatalog) -> None:
    got = found('1. calc("1")\n3. calc("$7", =)\n4. join()\n', catalog)
    assert [(line, code) for line, code, _ in got] == [
        (2, "bad_args"), (2, "bad_id"), (2, "bad_reference")]
    assert got[2][2].startswith(f"action 3 refers to $7, {FORWARD}")


def test_no_cycle_is_made_of_a_rejected_action(catalog: ToolCatalog) -> None:
    got = found('1. calc("1")\n3. calc("$4")\n4. calc("$3")\n5. join()\n', catalog)
    assert [code for _, code, _ in got] == ["bad_id", "bad_reference"]


def test_ponder_plan_parse_prints_it() -> None:
    app = typer.Typer()
    app.add_typer(plan_app, name="plan")
    plan = '1. calc("1")\n3. calc("$7")\n4. calc("$3")\n5. join()\n'
    result = CliRunner().invoke(app, ["plan", "parse", "-"], input=plan)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert errors == ["<stdin>:2: error: action id 3 skips a number: expected 2 [bad_id]",
                      f"<stdin>:2: error: action 3 refers to $7, {FORWARD} (an action can only "
                      "use results of the actions above it) [bad_reference]"], result.stderr
