"""`{{ steps }}`, `{{ inputs }}` or `{{ steps.a }}` printed as a value fails the step at
run time ("`steps` holds every step, ..."); `validate` did not say so. It now reports
it at the template's line, in the run's words; reads that are fine are not flagged, nor
is a name the template binds itself (`{% set steps = ... %}`, a loop variable, a macro
argument, `{% with %}`): that is its own value, not the namespace."""

from __future__ import annotations

import pytest

from orchestrator.errors import TemplateRenderError
from orchestrator.graph.validate import validate_text
from orchestrator.spec import templates
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


# A name the template binds itself is its own value there, not the namespace: these
# render (checked against the run's own render), so validate must not refuse them.
REBOUND = [
    "{% set steps = inputs.q %}{{ steps }}",
    "{% set inputs %}text{% endset %}{{ inputs | trim }}",
    "{% set steps, inputs = 1, 2 %}{{ steps }} {{ inputs | string }}",
    "{% for steps in inputs.q %}{{ steps }}{% endfor %}",
    "{% for inputs in [1] if inputs %}{{ inputs | json }}{% endfor %}",
    "{% macro m(steps, inputs=2) %}{{ steps }}{{ inputs }}{% endmacro %}{{ m(1) }}",
    "{% macro m() %}{{ steps }}{% endmacro %}{% set steps = 1 %}{{ m() }}",
    "{% macro m() %}{{ caller(1) }}{% endmacro %}{% call(steps) m() %}{{ steps }}{% endcall %}",
    "{% with steps = inputs.q %}{{ steps | upper }}{% endwith %}",
    "{% with %}{% set inputs = 1 %}{{ inputs }}{% endwith %}",
    "{% if inputs.q %}{% set steps = 1 %}{% else %}{% set steps = 2 %}{% endif %}{{ steps }}",
]


def run_names() -> dict[str, Names]:
    return {"steps": Names({"a": "A"}, True), "inputs": Names({"q": "xy"})}


@pytest.mark.parametrize("template", REBOUND)
def test_a_rebound_name_is_not_the_namespace(template: str) -> None:
    templates.render(template, run_names())  # the run prints it: nothing to report
    body = f"  - id: b\n    kind: llm\n    prompt: |\n      first\n      {template}\n"
    assert problems(body) == []


@pytest.mark.parametrize(("template", "what"), [
    # the namespace itself: before the set, after the loop or with that bound it
    ("{{ steps }}{% set steps = 1 %}", Names({}, True).misuse()),
    ("{% for steps in [1] %}{% endfor %}{{ steps }}", Names({}, True).misuse()),
    ("{% with inputs = 1 %}{% endwith %}{{ inputs | json }}", Names({}).misuse()),
    ("{% with %}{% set steps = 1 %}{% endwith %}{{ steps.a }}", StepValue("a", None).misuse()),
    ("{% for x in [1] %}{% set steps = 1 %}{% endfor %}{{ steps }}", Names({}, True).misuse()),
    ("{% macro m(steps) %}{% endmacro %}{{ inputs }}", Names({}).misuse()),
    ("{% set ns = namespace(steps=1) %}{% set ns.steps = 2 %}{{ steps }}",
     Names({}, True).misuse()),
])
def test_the_namespace_outside_the_scope_that_rebinds_it_is_reported(
        template: str, what: str) -> None:
    with pytest.raises(TemplateRenderError, match="not a value"):
        templates.render(template, run_names())
    body = f"  - id: b\n    kind: llm\n    prompt: |\n      first\n      {template}\n"
    assert problems(body) == [(14, f"template error: {what}")]
