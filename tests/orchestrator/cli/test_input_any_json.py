"""`ponder run --input` for an input of type any, and an explicit null for an optional
input. An `any` input was never read as JSON (`-i xs=[1,2]` was the text '[1,2]', which
its `schema: {type: array}` refused), though the README says `--input` values of
non-string inputs are; and `-i opt=null` for an optional integer was refused ("must be
integer, got None") while `--inputs-json '{"opt": null}'` ran with null."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from orchestrator.cli import app
from orchestrator.spec.models import InputSpec, InputText

FLOW = """\
name: any_input
tools:
  ret: any_input_tools:ret
inputs:
  x: {type: any}
  opt: {type: integer, required: false}
  five: {type: integer, default: 5}
steps:
  - id: a
    kind: tool
    tool: ret
    args: {value: ["${inputs.x}", "${inputs.opt}", "${inputs.five}"]}
"""


def ponder(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "any_input_tools.py").write_text("def ret(value=None):\n    return value\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "flow.yaml"
    path.write_text(FLOW)
    return str(path)


def _output(result: Result) -> object:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["output"]


@pytest.mark.parametrize(("given", "taken"), [
    ("[1,2]", [1, 2]), ('{"a": null}', {"a": None}), ("5", 5), ("true", True),
    ('"quoted"', "quoted"), ("null", None), ("tides", "tides"), ("[1,", "[1,"), ("", ""),
    ("NaN", "NaN"),
])
def test_an_any_input_reads_json_text_as_json(flow: str, given: str, taken: object) -> None:
    result = ponder("run", flow, "--db", "memory://", "--json", "-i", f"x={given}")
    assert _output(result) == [taken, None, 5]


def test_inputs_json_gives_an_any_input_a_string_that_looks_like_json(flow: str) -> None:
    result = ponder("run", flow, "--db", "memory://", "--json",
                    "--inputs-json", '{"x": "[1,2]"}')
    assert _output(result) == ["[1,2]", None, 5]


def test_a_nan_inside_json_text_is_refused_where_it_is(flow: str) -> None:
    result = ponder("run", flow, "--db", "memory://", "-i", "x=[1,NaN]")
    assert result.exit_code == 1
    assert "input 'x': x[1] is NaN, which JSON has no number for" in result.stderr


def test_null_for_an_optional_input_is_taken_as_inputs_json_takes_it(flow: str) -> None:
    by_input = ponder("run", flow, "--db", "memory://", "--json", "-i", "x=1", "-i", "opt=null")
    by_json = ponder("run", flow, "--db", "memory://", "--json",
                     "--inputs-json", '{"x": 1, "opt": null}')
    assert _output(by_input) == _output(by_json) == [1, None, 5]
    # with another default, null is refused both ways (as of the wrong type)
    by_input = ponder("run", flow, "--db", "memory://", "-i", "x=1", "-i", "five=null")
    by_json = ponder("run", flow, "--db", "memory://", "--inputs-json", '{"x": 1, "five": null}')
    assert by_input.exit_code == by_json.exit_code == 1
    assert "input 'five' must be integer" in by_input.stderr
    assert "input 'five' must be integer" in by_json.stderr


def test_a_string_given_otherwise_is_taken_as_it_is() -> None:
    # the SDK, --inputs-json and a recorded run's inputs give strings as they are
    spec = InputSpec(type="any")
    assert spec.accept("x", "[1,2]") == "[1,2]"
    assert spec.accept("x", InputText("[1,2]")) == [1, 2]
    taken = InputSpec(type="string").accept("s", InputText("[1,2]"))
    assert taken == "[1,2]" and type(taken) is str
