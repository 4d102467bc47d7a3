"""A workflow without ``inputs:`` takes its inputs unchecked, but not NaN or Infinity
(JSON has no number for them): from the SDK they reached the run, its trace and
``ponder run --json``. The CLI's --inputs-json refused them already."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.errors import SpecError
from orchestrator.runtime.engine import validate_inputs

NAN, INF = float("nan"), float("inf")

FLOW = """\
name: t
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: '1'}}
"""


@pytest.mark.parametrize(("given", "message"), [
    ({"x": NAN}, "input 'x': x is NaN, which JSON has no number for"),
    ({"x": 1, "o": {"y": [0, -INF]}}, "input 'o': o.y[1] is -Infinity, which JSON has no "
                                      "number for"),
])
def test_a_non_finite_number_in_an_undeclared_input_is_refused(
        given: dict[str, Any], message: str) -> None:
    spec = Workflow.from_yaml_text(FLOW).spec
    with pytest.raises(SpecError) as info:
        validate_inputs(spec, given)
    assert str(info.value) == message


def test_every_bad_undeclared_input_is_named() -> None:
    spec = Workflow.from_yaml_text(FLOW).spec
    with pytest.raises(SpecError) as info:
        validate_inputs(spec, {"a": INF, "b": 2, "c": [NAN]})
    assert str(info.value) == ("input 'a': a is Infinity, which JSON has no number for; "
                               "input 'c': c[0] is NaN, which JSON has no number for")


@pytest.mark.anyio
async def test_the_sdk_refuses_it_before_the_run() -> None:
    """The SDK takes no input at all for a workflow that declares none (as ``ponder
    run``); the runtime's check above is what a sub-workflow's nested run gets."""
    wf = Workflow.from_yaml_text(FLOW)
    with pytest.raises(SpecError, match=r"unknown input 'o' \(the workflow declares no"):
        await wf.run({"o": {"y": INF}})


def test_finite_undeclared_inputs_are_taken_as_given() -> None:
    wf = Workflow.from_yaml_text(FLOW)
    given = {"x": 1.5, "o": {"y": [1e308, "NaN"]}, "s": "Infinity"}
    assert validate_inputs(wf.spec, given) == given
