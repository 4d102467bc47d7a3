"""A template that binds `steps` or `inputs` itself (`{% for steps in ... %}`,
`{% set inputs = ... %}`, a macro argument) reads its own value there: `steps.name` in
that loop is no step. `validate` reported "unknown step 'name'" and a run took it for a
dependency. Those fields are no references now; where the name is rebound on one path
only (a set in one branch of an if) the reference and its dependency are kept."""

from __future__ import annotations

import pytest

from orchestrator import Workflow
from orchestrator.graph.compile import step_dependencies
from orchestrator.graph.validate import validate_text

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


def _body(template: str) -> str:
    return f"  - id: b\n    kind: llm\n    prompt: |\n      first\n      {template}\n"


def problems(template: str) -> list[tuple[int, str]]:
    return [(p.line, p.message) for p in validate_text(HEAD + _body(template), "w.yaml")]


def dependencies(template: str) -> set[str]:
    return step_dependencies(Workflow.from_yaml_text(HEAD + _body(template)).spec.steps[1])


@pytest.mark.parametrize("template", [
    "{% for steps in [{'name': 1}] %}{{ steps.name }}{% endfor %}",
    "{% set inputs = {'x': 1} %}{{ inputs.x }}",
    "{% macro m(steps) %}{{ steps.zz }}{% endmacro %}{{ m({'zz': 1}) }}",
    "{% with inputs = {'zz': 1} %}{{ inputs.zz }}{% endwith %}",
    "{% if inputs.q %}{% set steps = {'zz': 1} %}{{ steps.zz }}{% endif %}",
])
def test_a_field_of_a_rebound_name_is_no_reference(template: str) -> None:
    assert problems(template) == []


@pytest.mark.parametrize(("template", "message"), [
    ("{% for steps in [1] %}{% endfor %}{{ steps.zz.output }}",
     "unknown step 'zz' in `steps.zz.output`"),
    ("{% macro m(inputs) %}{% endmacro %}{{ inputs.nope }}",
     "unknown input 'nope' in `inputs.nope`"),
])
def test_the_namespace_outside_that_scope_is_still_checked(template: str,
                                                           message: str) -> None:
    assert problems(template) == [(14, message)]


def test_a_step_read_by_a_rebound_name_is_no_dependency() -> None:
    assert dependencies("{% for steps in [{'a': {'output': 1}}] %}{{ steps.a.output }}"
                        "{% endfor %}") == set()


@pytest.mark.parametrize("template", [
    # rebound on one path only: on the other the step reads `a`, so it must wait for it
    "{% if inputs.q %}{% set steps = 1 %}{% endif %}{{ steps.a.output }}",
    "{% macro m() %}{{ steps.a.output }}{% endmacro %}{{ m() }}{% set steps = 1 %}",
    "{% for steps in [1] %}{% endfor %}{{ steps.a.output }}",
])
def test_a_name_rebound_on_one_path_only_keeps_its_dependency(template: str) -> None:
    assert dependencies(template) == {"a"}
    assert problems(template) == []
