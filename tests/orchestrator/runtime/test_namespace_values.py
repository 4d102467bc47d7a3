"""`steps` and `inputs` used as values in a template or a branch condition (printed,
made JSON of, read by a computed name) fail the step with a message that names the step,
the field, its file:line and what to write: they rendered or reported the Python repr
``<orchestrator.spec.refs.Names object at 0x...>`` (or ``{'output': ...}`` for
``steps.ID``), or a condition on them was always true.

`validate` (so every run) refuses the plain ones, `{{ steps }}`, `{{ inputs | json }}`,
`{{ steps.a }}` printed, at their lines; the run-time message stays for what it cannot
see (a computed key, a name bound to a namespace). The runs below skip that static check
(`unchecked`) so that the run's own message is still held to its words for every case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.errors import ValidationFailed
from orchestrator.spec import templates

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


STEPS_FIX = "`steps` holds every step, it is not a value: write steps.ID.output"
INPUTS_FIX = "`inputs` holds every input, it is not a value: write inputs.NAME"


def _workflow(tmp_path: Path, text: str = FLOW) -> tuple[str, Workflow]:
    path = tmp_path / "flow.yaml"
    path.write_text(text)
    wf = Workflow.from_yaml(path)
    wf.register_tool(echo)
    return str(path), wf


@pytest.fixture
def unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compile without the static check of printed namespaces: FLOW's plain cases then
    reach the run, as a template the static check cannot read would."""
    monkeypatch.setattr(templates, "value_misuses", lambda source: [])


async def _errors(tmp_path: Path) -> tuple[str, dict[str, str | None]]:
    where, wf = _workflow(tmp_path)
    result = await wf.run({})
    return where, {s.id: s.error for s in result.steps}


def test_validate_refuses_the_plain_ones_at_their_lines(tmp_path: Path) -> None:
    # exactly these: computed keys, `~`, `| list`, conditions are left to the run
    _, wf = _workflow(tmp_path)
    with pytest.raises(ValidationFailed) as failed:
        wf.compile()
    assert [(p.line, p.message) for p in failed.value.problems] == [
        (8, f"template error: {STEPS_FIX}"),
        (9, f"template error: {INPUTS_FIX}"),
        (10, "template error: `steps.a` is the step, not a value: write steps.a.output"),
        (13, f"template error: {STEPS_FIX}"),
        (14, f"template error: {INPUTS_FIX}"),
    ]


COMPUTED = """\
name: computed
inputs:
  key: {type: string, default: "a"}
models:
  default: {backend: simulated, options: {time_scale: 0}}
steps:
  - {id: a, kind: tool, tool: echo, args: {x: "A"}}
  - {id: by_key, kind: llm, prompt: "{{ steps[inputs.key] | string }}", after: [a]}
  - {id: alias, kind: llm, prompt: "{% set all = inputs %}{{ all }}"}
"""


async def test_what_validate_cannot_see_still_fails_with_the_run_message(
        tmp_path: Path) -> None:
    where, wf = _workflow(tmp_path, COMPUTED)
    wf.compile()  # valid: which step `steps[inputs.key]` is, only the run knows
    errors = {s.id: s.error for s in (await wf.run({})).steps}
    assert errors["by_key"] == (f"step 'by_key' prompt template ({where}:8): "
                                "{{ steps[inputs.key] | string }}: `steps.a` is the step, "
                                "not a value: write steps.a.output")
    assert errors["alias"] == (f"step 'alias' prompt template ({where}:9): "
                               f"{{% set all = inputs %}}{{{{ all }}}}: {INPUTS_FIX}")


@pytest.mark.usefixtures("unchecked")
async def test_a_namespace_used_as_a_value_names_step_field_line_and_the_fix(
        tmp_path: Path) -> None:
    where, errors = await _errors(tmp_path)
    steps_fix, inputs_fix = STEPS_FIX, INPUTS_FIX
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


@pytest.mark.usefixtures("unchecked")
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


@pytest.mark.usefixtures("unchecked")
async def test_a_condition_on_a_step_itself_fails_instead_of_always_holding(
        tmp_path: Path) -> None:
    where, errors = await _errors(tmp_path)
    assert errors["route"] == (f"step 'route' case 1 ({where}:20): condition `steps.a`: "
                               "`steps.a` is the step, not a value: write steps.a.output")


@pytest.mark.usefixtures("unchecked")
async def test_no_message_holds_a_python_repr_and_counting_names_still_works(
        tmp_path: Path) -> None:
    _, errors = await _errors(tmp_path)
    for step_id, error in errors.items():
        assert "Names" not in (error or "") and "orchestrator." not in (error or ""), step_id
    assert errors["listed"] is None and errors["a"] is None
