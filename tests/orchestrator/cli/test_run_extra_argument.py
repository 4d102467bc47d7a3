"""`ponder run FILE spiders=4`, an input written as an argument, says to give it with
`--input`: click's "Got unexpected extra argument(s) (spiders=4)" said only that it
was not wanted."""

from __future__ import annotations

import json

from typer.testing import CliRunner, Result

from orchestrator.cli import app

QUICKSTART = "examples/quickstart.yaml"


def ponder(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_an_input_given_as_an_argument_is_shown_as_the_option() -> None:
    result = ponder("run", QUICKSTART, "spiders=4", "question=Why is it?", "--json")
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "usage"
    # (click's own words differ between versions: "argument(s)", "arguments")
    assert error["message"].startswith("Got unexpected extra argument")
    assert error["message"].endswith(
        "(spiders=4 question=Why is it?): a workflow input is given as an option: "
        "--input spiders=4 --input 'question=Why is it?'")
    plain = ponder("run", QUICKSTART, "ants=1")
    assert plain.exit_code == 2
    assert "a workflow input is given as an option: --input ants=1" in plain.stderr


def test_another_extra_argument_keeps_clicks_words() -> None:
    result = ponder("run", QUICKSTART, "other", "--json")
    assert result.exit_code == 2
    message = json.loads(result.stdout)["error"]["message"]
    assert message.startswith("Got unexpected extra argument") and message.endswith("(other)")
