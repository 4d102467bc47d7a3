"""`{{ steps }}`, `{{ inputs }}` or `{{ steps.a }}` printed as a value fails the step at
run time ("`steps` holds every step, ..."); `validate` did not say so. It now reports
it at the template's line, in the run's words; reads that are fine are not flagged."""

from __future__ import annotations

import pytest

from orchestrator.graph.validate import validate_text
from orchestrator.spec.refs import Names, StepValue

HEAD = """\
name: w
models:
  default: {backend: simulated}
inputs:
  q: {type: string}
steps:
  - id: a
    kind: llm
    prompt: hi
"""


def problems(body: str) -> list[tuple[int, str]]:
    found = validate_text(HEAD + body, "w.yaml")
    return [(p.line, p.message) for p in found]


@pytest.mark.parametrize(("template", "what"), [
    ("{{ steps }}", Names({}, True).misuse()),
    ("{{ inputs | json }}", Names({}).misuse()),
    ("{{ steps.a }}", StepValue("a", None).misuse()),
    ("{{ steps['a'] | string | trim }}", StepValue("a", None).misuse()),
    ("${steps.a}", StepValue("a", None).misuse()),
])
def test_prompt_value_misuse_is_reported_at_its_line(template: str, what: str) -> None:
    body = f"  - id: b\n    kind: llm\n    prompt: |\n      first\n      {template}\n"
    assert problems(body) == [(14, f"template error: {what}")]


def test_tool_args_misuse_is_reported_once() -> None:
    # tool args are no templates: their own reference check names it, not twice
    body = ('  - {id: b, kind: tool, tool: calc, args: {expression: "${inputs}"}}\n')
    found = problems(body)
    assert [line for line, _ in found] == [10] and "inputs.NAME" in found[0][1]


@pytest.mark.parametrize("template", [
    "{{ steps | list }}", "{{ inputs | length }}", "{{ steps.a.output }}",
    "{% if steps.a %}yes{% endif %}", "{% for s in steps %}{{ s }}{% endfor %}",
    "{{ inputs.q }}",
])
def test_allowed_reads_are_not_flagged(template: str) -> None:
    body = f"  - id: b\n    kind: llm\n    prompt: \"{template}\"\n"
    assert problems(body) == []


def test_when_condition_is_not_a_printed_value() -> None:
    body = ("  - id: r\n    kind: branch\n    cases:\n"
            "      - {when: \"steps.a\", then: [c]}\n"
            "  - {id: c, kind: llm, prompt: hi}\n")
    assert problems(body) == []
