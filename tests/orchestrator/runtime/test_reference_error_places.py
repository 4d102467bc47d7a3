"""A `${...}` reference that fails at run time is named with the step, the field that
holds it and its file:line, as a template's error is: the message gave only the
reference (`${steps.a.output.items}`: no `items` in 2), not where it was written."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.sdk import Workflow

pytestmark = pytest.mark.anyio

FLOW = """\
name: refs
inputs:
  q: {type: string, default: hi}
steps:
  - id: a
    kind: tool
    tool: calc
    args: {expression: "1+1"}
  - id: b
    kind: tool
    tool: calc
    args:
      expression: "${inputs.q.zz}"
  - id: m
    kind: map
    over: ${steps.a.output.items}
    step:
      kind: tool
      tool: calc
      args: {expression: "${item}"}
  - id: m2
    kind: map
    over: [1]
    step:
      kind: tool
      tool: calc
      args: {expression: "${steps.a.output.nope}"}
  - id: w
    kind: workflow
    workflow: child.yaml
    inputs: {x: "${steps.a.output.deep}"}
"""
CHILD = "name: child\ninputs:\n  x: {type: integer}\nsteps: []\noutputs:\n  y: ${inputs.x}\n"


async def test_each_failed_reference_names_its_field_and_line(tmp_path: Path) -> None:
    (tmp_path / "flow.yaml").write_text(FLOW)
    (tmp_path / "child.yaml").write_text(CHILD)
    result = await Workflow.from_yaml(tmp_path / "flow.yaml").run()
    errors = {s.id: s.error for s in result.steps if s.error}
    flow = tmp_path / "flow.yaml"
    assert errors["b"] == (f"step 'b' args.expression ({flow}:13): `${{inputs.q.zz}}`: no "
                           "`zz` in \"hi\"")
    assert errors["m"] == (f"step 'm' over ({flow}:16): `${{steps.a.output.items}}`: no "
                           "`items` in 2")
    assert errors["m2[0]"] == (f"step 'm2[0]' args.expression ({flow}:27): "
                               "`${steps.a.output.nope}`: no `nope` in 2")
    assert errors["w"] == (f"step 'w' inputs.x ({flow}:31): `${{steps.a.output.deep}}`: no "
                           "`deep` in 2")


async def test_a_workflow_built_in_python_names_the_field_without_a_line() -> None:
    wf = Workflow("py")
    wf.tool("a", "calc", expression="1+1")
    wf.tool("b", "calc", expression="${steps.a.output.zz}")
    result = await wf.run()
    (error,) = [s.error for s in result.steps if s.error]
    assert error == "step 'b' args.expression: `${steps.a.output.zz}`: no `zz` in 2"
