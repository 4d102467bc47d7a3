"""An input's default nested deeper than a run can store is a problem at its line, for
``ponder validate`` and ``ponder run`` alike (it validated, and the run stopped with an
internal PydanticSerializationError, recording nothing); one at the limit runs and is
recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.errors import SpecError
from orchestrator.graph.validate import validate_text
from orchestrator.spec.models import MAX_VALUE_DEPTH, nested_deeper_than
from tests.orchestrator.cli.test_json_errors import error_of
from tests.orchestrator.cli.test_json_errors import ponder as invoke


def _flow(depth: int) -> str:
    default = "[" * depth + "1" + "]" * depth
    return (f"name: deep\ninputs:\n  x: {{type: any, default: {default}}}\n"
            "steps:\n  - {id: b, kind: tool, tool: calc, args: {expression: '1'}}\n"
            "outputs:\n  y: ${inputs.x}\n")


SAID = (f"inputs.x.default: the default nests arrays and objects more than {MAX_VALUE_DEPTH} "
        "levels deep: a run stores no deeper value")


@pytest.mark.parametrize("depth", [MAX_VALUE_DEPTH + 1, 260])
def test_too_deep_a_default_is_a_problem_at_its_line(depth: int) -> None:
    [problem] = validate_text(_flow(depth), "wf.yaml")
    assert (problem.line, problem.column, problem.message) == (3, 18, SAID)


def test_validate_and_run_refuse_it_before_the_run(tmp_path: Path) -> None:
    file = tmp_path / "deep.yaml"
    file.write_text(_flow(260))
    db = f"sqlite:///{tmp_path / 'ponder.db'}"
    validated = invoke("validate", str(file))
    assert validated.exit_code == 1
    assert f"{file}:3:18: error: {SAID}\n" in validated.stderr
    error = error_of(invoke("run", str(file), "--db", db, "--json"), "workflow")
    assert error["location"] == f"{file}:3:18"
    assert [p["message"] for p in error["problems"]] == [SAID]
    assert not (tmp_path / "ponder.db").exists()  # refused before the store was opened


def test_a_default_at_the_limit_runs_and_is_recorded(tmp_path: Path) -> None:
    file = tmp_path / "deep.yaml"
    file.write_text(_flow(MAX_VALUE_DEPTH))
    db = f"sqlite:///{tmp_path / 'ponder.db'}"
    ran = invoke("run", str(file), "--db", db, "--json")
    assert ran.exit_code == 0, (ran.stdout, ran.stderr)
    assert json.loads(ran.stdout)["status"] == "succeeded"


def test_the_sdk_refuses_it_naming_the_input() -> None:
    deep: Any = 1
    for _ in range(MAX_VALUE_DEPTH + 1):
        deep = {"a": deep}
    with pytest.raises(SpecError, match=r"input 'x': default: the default nests arrays and "
                       r"objects more than 250 levels deep"):
        Workflow("t", inputs={"x": {"type": "object", "default": deep}})


def test_depth_is_counted_once_per_shared_part_and_a_cycle_is_too_deep() -> None:
    shared: Any = [1]
    for _ in range(200):  # 2**200 paths, 201 levels
        shared = [shared, shared]
    assert not nested_deeper_than(shared, MAX_VALUE_DEPTH)
    assert nested_deeper_than(shared, 200)
    looped: list[Any] = []
    looped.append(looped)
    assert nested_deeper_than(looped, MAX_VALUE_DEPTH)
    assert not nested_deeper_than("[[[", 0) and not nested_deeper_than([], 1)
    assert nested_deeper_than([], 0)
