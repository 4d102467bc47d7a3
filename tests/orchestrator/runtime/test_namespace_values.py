"""`steps` and `inputs` used as values in a template or a branch condition (printed,
made JSON of, read by a computed name) fail the step with a message that names the step,
the field, its file:line and what to write: they rendered or reported the Python repr
``<orchestrator.spec.refs.Names object at 0x...>`` (or ``{'output': ...}`` for
``steps.ID``), or a condition on them was always true."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator import Workflow

pytestmark = pytest.mark.anyio


def echo(x: Any = None) -> Any:
    return x


FLOW = """\
name: namespaces
inputs:
  key: {type: string, default: "nope"}
models:
  default: {backend: simulated, options: {time_scale: 0}}
steps:
  - {id: a, kind: tool, tool: echo, args: {x: "A"}}
  - {id: whole, kind: llm, prompt: "{{ steps }}"}
  - {id: all_inputs, kind: llm, prompt: "x {{ inputs | json }}"}
  - {id: step_itself, kind: llm, prompt: "{{ steps.a }}"}
  - {id: computed, kind: llm, prompt: "{{ steps.a.output }} {{ steps[inputs.key] }}"}
  - {id: computed_input, kind: llm, system: "{{ inputs[inputs.key] }}", prompt: "p"}
  - {id: tojson, kind: llm, prompt: "{{ steps | tojson }}"}
  - {id: pprint, kind: llm, prompt: "{{ inputs | pprint }}"}
  - {id: joined, kind: llm, prompt: "{{ steps.a.output ~ steps }}"}
  - {id: listed, kind: llm, prompt: "{{ steps | list | length }} {{ inputs | length }}"}
  - id: route
    kind: branch
    cases:
      - when: "steps.a"
        then: [hit]
    default: [miss]
  - {id: hit, kind: tool, tool: echo, args: {x: 1}}
  - {id: miss, kind: tool, tool: echo, args: {x: 2}}
  - {id: step_field, kind: llm, prompt: "{{ steps.a[inputs.key] }}"}
"""


async def _errors(tmp_path: Path) -> tuple[str, dict[str, str | None]]:
    path = tmp_path / "flow.yaml"
    path.write_text(FLOW)
    wf = Workflow.from_yaml(path)
    wf.register_tool(echo)
    result = await wf.run({})
    return str(path), {s.id: s.error for s in result.steps}


async def test_a_namespace_used_as_a_value_names_step_field_line_and_the_fix(
        tmp_path: Path) -> None:
    where, errors = await _errors(tmp_path)
    steps_fix = "`steps` holds every step, it is not a value: write steps.ID.output"
    inputs_fix = "`inputs` holds every input, it is not a value: write inputs.NAME"
    assert errors["whole"] == f"step 'whole' prompt template ({where}:8): {{{{ steps }}}}: {steps_fix}"
    assert errors["all_inputs"] == (f"step 'all_inputs' prompt template ({where}:9): "
                                    f"{{{{ inputs | json }}}}: {inputs_fix}")
    assert errors["step_itself"] == (f"step 'step_itself' prompt template ({where}:10): "
                                     "{{ steps.a }}: `steps.a` is the step, not a value: "
                                     "write steps.a.output")
    assert errors["tojson"] == (f"step 'tojson' prompt template ({where}:13): "
                                f"{{{{ steps | tojson }}}}: {steps_fix}")
    assert errors["pprint"] == (f"step 'pprint' prompt template ({where}:14): "
                                f"{{{{ inputs | pprint }}}}: {inputs_fix}")
    assert errors["joined"] == (f"step 'joined' prompt template ({where}:15): "
                                f"{{{{ steps.a.output ~ steps }}}}: {steps_fix}")


async def test_a_computed_name_that_is_missing_names_it_and_the_names_there_are(
        tmp_path: Path) -> None:
    where, errors = await _errors(tmp_path)
    # (which other steps have finished by then depends on timing)
    head = (f"step 'computed' prompt template ({where}:11): "
            "{{ steps.a.output }} {{ steps[inputs.key] }}: "
            "`steps.nope`: no step 'nope' has an output here (steps with one: ")
    computed = errors["computed"] or ""
    assert computed.startswith(head) and "a" in computed[len(head):-1].split(", ")
    assert errors["computed_input"] == (
        f"step 'computed_input' system template ({where}:12): {{{{ inputs[inputs.key] }}}}: "
        "`inputs.nope`: no input named 'nope' (inputs: key)")
    assert errors["step_field"] == (
        f"step 'step_field' prompt template ({where}:25): {{{{ steps.a[inputs.key] }}}}: "
        "`steps.a.nope`: a step's value is `steps.a.output`")


async def test_a_condition_on_a_step_itself_fails_instead_of_always_holding(
        tmp_path: Path) -> None:
    where, errors = await _errors(tmp_path)
    assert errors["route"] == (f"step 'route' case 1 ({where}:20): condition `steps.a`: "
                               "`steps.a` is the step, not a value: write steps.a.output")


async def test_no_message_holds_a_python_repr_and_counting_names_still_works(
        tmp_path: Path) -> None:
    _, errors = await _errors(tmp_path)
    for step_id, error in errors.items():
        assert "Names" not in (error or "") and "orchestrator." not in (error or ""), step_id
    assert errors["listed"] is None and errors["a"] is None
