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
    assert result.error == "outputs: output 'out' must be string, got null"


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


CHILD = """\
name: child
models:
  default: {backend: simulated, options: {time_scale: 0}}
steps:
  - {id: c1, kind: llm, prompt: "one", max_tokens: 40}
  - {id: c2, kind: llm, prompt: "two {{ steps.c1.output }}", max_tokens: 40}
  - {id: c3, kind: llm, prompt: "three {{ steps.c2.output }}", max_tokens: 40}
"""

PARENT = """\
name: parent
budget: {max_tokens: 50}
models:
  default: {backend: simulated, options: {time_scale: 0}}
steps:
  - {id: w, kind: workflow, workflow: child.yaml}
"""


async def test_a_sub_workflow_spends_within_the_budget_of_the_run_it_is_nested_in(
        tmp_path: Any) -> None:
    # the child run had a budget of its own only (none): it spent 120+ tokens under a
    # parent's budget of 50, and the parent's total left out a failed child's tokens
    (tmp_path / "child.yaml").write_text(CHILD)
    (tmp_path / "parent.yaml").write_text(PARENT)
    result = await Workflow.from_yaml(tmp_path / "parent.yaml").run()
    assert result.status == "failed"
    assert "enclosing run" in (result.error or "") and "token budget of 50 spent" in (
        result.error or "")
    assert "'c3' not dispatched" in (result.error or "")
    step = result.steps[0]
    assert step.completion_tokens == 80  # c1 and c2, dispatched while under the budget
    assert result.usage.completion_tokens == 80


async def test_a_sub_workflow_tokens_count_once_in_the_run_it_is_nested_in(
        tmp_path: Any) -> None:
    (tmp_path / "child.yaml").write_text(CHILD)
    (tmp_path / "parent.yaml").write_text(PARENT.replace("max_tokens: 50", "max_tokens: 1000"))
    result = await Workflow.from_yaml(tmp_path / "parent.yaml").run()
    assert result.ok, result.error
    assert result.usage.completion_tokens == 120


@pytest.mark.parametrize(("over", "said"), [
    ("${steps.a.output.text}", "a string 'deep'"),
    ("${steps.a.output}", 'an object {"text": "deep", "none": null}'),
    ("${steps.a.output.none}", "null"),
])
async def test_a_map_over_what_is_not_a_list_names_its_json_type(over: str, said: str) -> None:
    # it said `got NoneType: 'None'` and `got dict: ...`, Python's names
    result = await _wf(f"""\
name: over
steps:
  - {{id: a, kind: tool, tool: echo, args: {{x: {{text: deep, none: null}}}}}}
  - id: m
    kind: map
    over: "{over}"
    step: {{kind: tool, tool: echo, args: {{x: "${{item}}"}}}}
""").run()
    assert result.status == "failed"
    assert result.error == f"step 'm' failed: map 'm': `over` must be a list, got {said}"
