"""A step id may hold `-` (`my-step`), which Jinja2 reads as a subtraction: a
`${steps.my-step.output}` reference in a prompt or condition, which the README says works
there, was refused as "unknown step 'my'" and "unknown name 'step'"; `{{ steps.my-step
.output }}` was refused so too, without saying why."""

from __future__ import annotations

import pytest

from orchestrator import Workflow
from orchestrator.graph.validate import validate_text
from orchestrator.spec.templates import to_jinja, to_jinja_expr

TEXT = """\
name: w
models:
  default: {backend: simulated}
steps:
  - id: my-step
    kind: llm
    prompt: hi
  - id: b
    kind: llm
    prompt: |
      ${steps.my-step.output} {{ steps['my-step'].output }}
      {{ steps.my-step.output }}
  - id: r
    kind: branch
    cases:
      - {when: "${steps.my-step.output} != ''", then: [b]}
"""


@pytest.mark.parametrize(("ref", "expr"), [
    ("${steps.my-step.output}", "steps['my-step'].output"),
    ("${steps.my-step.output.a-b[0]}", "steps['my-step'].output['a-b'][0]"),
    ("${inputs.my-input}", "inputs['my-input']"),
    ("${steps.a.output.x}", "steps.a.output.x"),  # unchanged
    ("${ steps.a.output }", "steps.a.output"),
])
def test_a_reference_becomes_a_jinja2_expression_jinja2_reads_as_written(
        ref: str, expr: str) -> None:
    # in a template it prints as the reference does elsewhere (JSON): see test_ref_text
    assert to_jinja(ref) == "{{ " + expr + " | _ref_text }}"
    assert to_jinja_expr(ref) == f"({expr})"


def test_text_that_is_no_reference_is_put_in_as_written() -> None:
    assert to_jinja("${not a ref}") == "{{ not a ref }}"  # the reference checks name it
    assert to_jinja_expr("${not a ref}") == "(not a ref)"


def test_a_hyphenated_id_in_jinja2_syntax_is_named_at_its_line() -> None:
    problems = validate_text(TEXT, "w.yaml")
    assert [(p.line, p.message, p.hint) for p in problems] == [
        (12, "`steps.my-step` reads as a subtraction in Jinja2 (`steps.my - step`)",
         "write steps['my-step'].output, or ${steps.my-step.output}")]


def test_a_reference_to_a_hyphenated_id_renders_its_output() -> None:
    wf = Workflow("w", models={"default": {"backend": "simulated"}})
    wf.tool("my-step", "calc", expression="6 * 7")
    wf.llm("b", prompt="${steps.my-step.output}!", max_tokens=8)
    wf.branch("r", [("${steps.my-step.output} == 42", ["c"])])  # taken: c runs
    wf.tool("c", "calc", expression="${steps.my-step.output} + 1")
    wf.output(c="${steps.c.output}")
    result = wf.run_sync(backend="simulated")
    assert (result.status, result.output) == ("succeeded", {"c": 43}), result.error
