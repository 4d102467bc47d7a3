"""`ponder run` refusing its inputs names where the workflow declares them: a missing
input has no value to show, so its message said neither how to give it nor where it is
declared, and the error document's `location` was null."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from orchestrator.cli import app

FLOW = """\
name: inputs_located
inputs:
  topic: {type: string}
  count:
    type: integer
  extra: {type: integer, default: 2}
steps:
  - id: total
    kind: tool
    tool: calc
    args: {expression: "${inputs.count} + ${inputs.extra}"}
"""


def ponder(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _flow(tmp_path: Path) -> str:
    path = tmp_path / "flow.yaml"
    path.write_text(FLOW)
    return str(path)


def test_a_missing_input_says_how_to_give_it_and_where_it_is_declared(tmp_path: Path) -> None:
    flow = _flow(tmp_path)
    result = ponder("run", flow, "--db", "memory://", "-i", "topic=tides")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (f"error: missing input 'count' (integer); give it with "
                             f"--input count=VALUE (declared at {flow}:4:3)\n")


def test_the_error_document_locates_the_first_input_refused(tmp_path: Path) -> None:
    flow = _flow(tmp_path)
    result = ponder("run", flow, "--db", "memory://", "--json", "-i", "extra=many")
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "input" and error["location"] == f"{flow}:3:3"
    assert error["message"] == (
        f"missing input 'topic' (string); missing input 'count' (integer); input 'extra' "
        f"must be integer, got 'many'; give them with --input topic=VALUE --input "
        f"count=VALUE (declared at {flow}:3:3, {flow}:4:3)")


def test_a_value_of_the_wrong_type_is_located_at_its_declaration(tmp_path: Path) -> None:
    flow = _flow(tmp_path)
    result = ponder("run", flow, "--db", "memory://", "--json", "-i", "topic=t",
                    "-i", "count=lots")
    error = json.loads(result.stdout)["error"]
    assert error == {"kind": "input", "message": "input 'count' must be integer, got 'lots'",
                     "location": f"{flow}:4:3"}


def test_an_unknown_input_alone_has_no_declaration_to_point_at(tmp_path: Path) -> None:
    flow = _flow(tmp_path)
    result = ponder("run", flow, "--db", "memory://", "--json", "-i", "topic=t",
                    "-i", "count=1", "-i", "legs=3")
    error = json.loads(result.stdout)["error"]
    assert error == {"kind": "input", "location": None,
                     "message": "unknown input 'legs' (declared: topic, count, extra)"}


LISTS = """\
name: lists
inputs:
  topics: {type: array}
  options: {type: object, default: {}}
steps:
  - id: n
    kind: tool
    tool: calc
    args: {expression: "1"}
"""


def test_text_given_for_a_list_says_it_is_read_as_json(tmp_path: Path) -> None:
    flow = tmp_path / "lists.yaml"
    flow.write_text(LISTS)
    result = ponder("run", str(flow), "--db", "memory://", "-i", "topics=tides",
                    "-i", "options=fast")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: input 'topics' must be array, got 'tides'; input 'options' must be object, "
        "got 'fast'; give it as JSON: --input 'topics=[...]'; give it as JSON: "
        "--input 'options={...}'\n")
    # JSON of another type is not told to be JSON
    result = ponder("run", str(flow), "--db", "memory://", "-i", "topics={}")
    assert result.stderr == "error: input 'topics' must be array, got {}\n"
