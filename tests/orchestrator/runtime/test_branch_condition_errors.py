"""A branch condition that fails at run time names its step, its case and the file:line of
its ``when`` (as a failing template does): it named only the expression."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator import Workflow

pytestmark = pytest.mark.anyio


def echo(x: Any = None) -> Any:
    return x


FLOW = """\
name: branch_errors
steps:
  - id: a
    kind: tool
    tool: echo
    args: {x: {n: 1, s: "text"}}
  - id: route
    kind: branch
    cases:
      - when: "steps.a.output.n == 2"
        then: [hit]
      - when: "steps.a.output.s + 1 > 0"
        then: [hit]
    default: [miss]
  - {id: hit, kind: tool, tool: echo, args: {x: 1}}
  - {id: miss, kind: tool, tool: echo, args: {x: 2}}
"""


async def test_a_failing_condition_names_the_step_case_and_line(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(FLOW)
    wf = Workflow.from_yaml(path)
    wf.register_tool(echo)
    result = await wf.run({})
    errors = {s.id: s.error for s in result.steps}
    assert result.status == "failed"
    assert errors["route"] == (
        f"step 'route' case 2 ({path}:12): condition `steps.a.output.s + 1 > 0`: "
        'TypeError: can only concatenate str (not "int") to str')


async def test_an_undefined_name_in_the_first_case_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(FLOW.replace("steps.a.output.n == 2", "steps.a.output.m.k == 2"))
    wf = Workflow.from_yaml(path)
    wf.register_tool(echo)
    result = await wf.run({})
    error = next(s.error for s in result.steps if s.id == "route")
    assert error is not None
    assert error.startswith(f"step 'route' case 1 ({path}:10): condition "
                            "`steps.a.output.m.k == 2`: "), error


async def test_a_workflow_built_in_python_names_the_step_and_case() -> None:
    wf = Workflow("sdk")
    wf.register_tool(echo)
    wf.tool("a", tool="echo", x="s")
    wf.branch("route", cases=[("steps.a.output + 1", ["b"])], default=[])
    wf.tool("b", tool="echo", x=1)
    result = await wf.run({})
    error = next(s.error for s in result.steps if s.id == "route")
    assert error is not None and error.startswith(
        "step 'route' case 1: condition `steps.a.output + 1`: TypeError"), error
