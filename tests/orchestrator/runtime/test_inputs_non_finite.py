"""NaN and Infinity, which JSON has no number for, are refused at any depth of an input,
naming where they are: they were refused only as a whole input's value."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.errors import SpecError
from orchestrator.runtime.engine import validate_inputs
from orchestrator.spec.models import non_finite

NAN, INF = float("nan"), float("inf")

FLOW = """\
name: t
inputs:
  x: {type: any}
  o: {type: object, default: {}}
  l: {type: array, default: []}
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: '1'}}
"""


@pytest.mark.parametrize(("given", "message"), [
    ({"x": {"y": NAN}}, "input 'x': x.y is NaN, which JSON has no number for"),
    ({"x": [1, NAN]}, "input 'x': x[1] is NaN, which JSON has no number for"),
    ({"x": 1, "l": [{"z": [0, -INF]}]}, "input 'l': l[0].z[1] is -Infinity, which JSON "
                                        "has no number for"),
    ({"x": 1, "o": {"a b": INF}}, "input 'o': o[\"a b\"] is Infinity, which JSON has no "
                                  "number for"),
    ({"x": NAN}, "input 'x': x is NaN, which JSON has no number for"),
    # as `--input o={"y": NaN}` gives it: it said "must be object, got '{"y": NaN}'"
    ({"x": 1, "o": '{"y": NaN}'}, "input 'o': o.y is NaN, which JSON has no number for"),
])
def test_a_non_finite_number_inside_an_input_is_refused_with_its_path(
        given: dict[str, Any], message: str) -> None:
    spec = Workflow.from_yaml_text(FLOW).spec
    with pytest.raises(SpecError) as info:
        validate_inputs(spec, given)
    assert str(info.value) == message


@pytest.mark.anyio
async def test_a_python_caller_is_refused_before_the_run() -> None:
    wf = Workflow.from_yaml_text(FLOW)
    with pytest.raises(SpecError, match=r"x\.y is NaN"):
        await wf.run({"x": {"y": NAN}})


def test_finite_values_pass() -> None:
    spec = Workflow.from_yaml_text(FLOW).spec
    got = validate_inputs(spec, {"x": {"y": [1.5, "NaN"]}, "o": '{"y": 1e308}'})
    assert got == {"x": {"y": [1.5, "NaN"]}, "o": {"y": 1e308}, "l": []}


def test_a_text_input_too_deep_for_json_is_refused() -> None:
    spec = Workflow.from_yaml_text(FLOW).spec
    with pytest.raises(SpecError, match="input 'l' nests too deeply"):
        validate_inputs(spec, {"x": 1, "l": "[" * 100_000})


def test_non_finite_walks_deep_values_without_recursion() -> None:
    deep: Any = NAN
    for _ in range(50_000):
        deep = [deep]
    where = non_finite(deep, "v")
    assert where is not None and where.endswith("[0] is NaN")
