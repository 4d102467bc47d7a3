"""Workflow semantics a user relies on, end to end through the SDK: what a branch not
taken reads as, which inputs a run accepts, token budgets across nested runs."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import Workflow

pytestmark = pytest.mark.anyio


def echo(x: Any = None) -> Any:
    return x


def _wf(text: str) -> Workflow:
    wf = Workflow.from_yaml_text(text)
    wf.register_tool(echo)
    return wf


BRANCH_OUTPUTS = """\
name: branch_outputs
inputs:
  go: {type: boolean, default: false}
steps:
  - id: pick
    kind: branch
    cases: [{when: "inputs.go", then: [taken]}]
    default: [other]
  - {id: taken, kind: tool, tool: echo, args: {x: {field: "X"}}}
  - {id: other, kind: tool, tool: echo, args: {x: "Y"}}
  - id: both
    kind: tool
    tool: echo
    args: {x: ["${steps.taken.output.field}", "${steps.other.output}"]}
outputs:
  field: ${steps.taken.output.field}
  typed: {from: "${steps.taken.output.field}", type: string}
  other: {from: "${steps.other.output}", type: string}
  both: ${steps.both.output}
"""


async def test_a_path_into_a_step_a_branch_did_not_take_reads_null() -> None:
    # outputs (typed ones too) and arguments that read into the skipped step are null:
    # the run failed with "no `field` in null" after every step had succeeded
    result = await _wf(BRANCH_OUTPUTS).run({"go": False})
    assert result.ok, result.error
    assert result.output == {"field": None, "typed": None, "other": "Y", "both": [None, "Y"]}
    result = await _wf(BRANCH_OUTPUTS).run({"go": True})
    assert result.ok, result.error
    assert result.output == {"field": "X", "typed": "X", "other": None, "both": ["X", None]}


async def test_a_typed_output_of_a_step_that_ran_is_still_checked() -> None:
    wf = _wf("""\
name: typed
steps:
  - {id: a, kind: tool, tool: echo, args: {x: null}}
outputs:
  out: {from: "${steps.a.output}", type: string}
""")
    result = await wf.run()
    assert result.status == "failed"
    assert result.error == "outputs: output 'out' must be string, got None"


async def test_an_output_is_held_to_its_schema() -> None:
    # `outputs.NAME.schema` was accepted and never applied
    text = """\
name: output_schema
inputs:
  n: {type: integer}
steps:
  - {id: a, kind: tool, tool: echo, args: {x: "${inputs.n}"}}
outputs:
  out: {from: "${steps.a.output}", type: integer, schema: {minimum: 10}}
"""
    result = await _wf(text).run({"n": 3})
    assert result.status == "failed"
    assert result.error == ("outputs: output 'out' does not satisfy its schema: at $: 3 is "
                            "less than the minimum of 10")
    result = await _wf(text).run({"n": 12})
    assert result.ok and result.output == {"out": 12}
