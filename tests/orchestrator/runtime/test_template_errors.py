"""A step whose template fails at run time fails with a message that names the step, the
template's field, its file:line and the reference or expression that failed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator import Workflow

pytestmark = pytest.mark.anyio


def echo(x: Any = None) -> Any:
    return x


FLOW = """\
name: template_errors
inputs:
  xs: {type: array, default: [{n: a}, {m: 1}]}
models:
  default: {backend: simulated, options: {time_scale: 0}}
steps:
  - id: a
    kind: tool
    tool: echo
    args: {x: {items: [1, 2, 3], x: "s", text: "abc"}}
  - id: index
    kind: llm
    prompt: |
      Hello.
      Item: {{ steps.a.output.items[3] }}
  - id: add
    kind: llm
    system: "sys {{ steps.a.output.x + 1 }}"
    prompt: "fine"
  - id: field
    kind: llm
    prompt: "{{ steps.a.output.text.nope }}"
  - id: m
    kind: map
    over: ${inputs.xs}
    step:
      kind: llm
      prompt: "Item {{ item.n }}"
"""


async def _errors(tmp_path: Path, text: str) -> dict[str, str | None]:
    path = tmp_path / "flow.yaml"
    path.write_text(text)
    wf = Workflow.from_yaml(path)
    wf.register_tool(echo)
    result = await wf.run({})
    return {s.id: s.error for s in result.steps}


async def test_a_template_error_names_step_field_line_and_reference(tmp_path: Path) -> None:
    # it said "template: list object has no element 3", nothing of where
    errors = await _errors(tmp_path, FLOW)
    where = str(tmp_path / "flow.yaml")
    assert errors["index"] == (f"step 'index' prompt template ({where}:15): "
                               "steps.a.output.items[3]: list object has no element 3")
    assert errors["add"] == (f"step 'add' system template ({where}:18): "
                             "{{ steps.a.output.x + 1 }}: TypeError: can only concatenate "
                             'str (not "int") to str')
    assert errors["field"] == (f"step 'field' prompt template ({where}:22): "
                               "steps.a.output.text.nope: 'str object' has no attribute 'nope'")
    # a map item's template is the map body's
    assert errors["m[1]"] == (f"step 'm[1]' prompt template ({where}:28): "
                              "item.n: 'dict object' has no attribute 'n'")
    assert errors["m[0]"] is None


async def test_a_workflow_built_in_python_names_the_template_line() -> None:
    wf = Workflow("sdk", inputs={"o": "object"},
                  models={"default": {"backend": "simulated", "options": {"time_scale": 0}}})
    wf.llm("a", prompt="one\n{{ inputs.o.k.z }}")
    result = await wf.run({"o": {"k": 1}})
    assert result.steps[0].error == ("step 'a' prompt template (template line 2): "
                                     "inputs.o.k.z: 'int object' has no attribute 'z'")
