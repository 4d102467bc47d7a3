"""The templates of a static plan's steps (`options.steps`) are checked by validate as
the workflow's own are for what fails every render: `{{ steps }}`, `{{ inputs }}` or
`{{ steps.ID }}` printed, and a syntax error, each at its file line. Those were found
only when the plan ran."""

from __future__ import annotations

from orchestrator.graph.validate import validate_text
from orchestrator.spec.refs import Names, StepValue

HEAD = """\
name: w
models:
  default: {backend: simulated}
inputs:
  q: {type: string}
steps:
  - id: p
    kind: plan
    planner: static
    goal: g
    options:
      steps:
        - {id: a, kind: llm, prompt: hi}
"""


def problems(steps: str) -> list[tuple[int, str]]:
    return [(p.line, p.message) for p in validate_text(HEAD + steps, "w.yaml")]


def test_a_step_printed_in_a_static_plan_is_reported_at_its_line() -> None:
    found = problems("""\
        - id: b
          kind: llm
          prompt: |
            first
            {{ steps.a }}
""")
    assert found == [(18, f"template error: {StepValue('a', None).misuse()}")]


def test_namespaces_printed_in_a_static_plan_are_reported_at_their_lines() -> None:
    found = problems("""\
        - {id: b, kind: llm, prompt: "{{ inputs | json }}"}
        - id: c
          kind: llm
          prompt: ok
          system: |
            one
            two {{ steps }}
""")
    assert found == [(14, f"template error: {Names({}).misuse()}"),
                     (20, f"template error: {Names({}, True).misuse()}")]


def test_a_syntax_error_in_a_static_plan_is_reported_at_its_line() -> None:
    found = problems("""\
        - id: b
          kind: llm
          prompt: |
            first
            second {{ steps.a.output
""")
    assert [line for line, _ in found] == [18]
    assert found[0][1].startswith("template syntax error:")


def test_a_map_body_and_a_branch_condition_in_a_static_plan_are_checked() -> None:
    found = problems("""\
        - id: m
          kind: map
          over: [1, 2]
          step: {kind: llm, prompt: "{{ steps.a }} {{ item }}"}
        - id: br
          kind: branch
          cases: [{when: "steps.a.output ==", then: [m]}]
""")
    assert [line for line, _ in found] == [17, 20], found
    assert found[0][1] == f"template error: {StepValue('a', None).misuse()}"
    assert found[1][1].startswith("template syntax error:")


def test_reads_that_are_fine_in_a_static_plan_are_not_flagged() -> None:
    assert problems("""\
        - id: b
          kind: llm
          prompt: |
            {{ steps.a.output }} {{ inputs.q }}
            {% for steps in [1, 2] %}{{ steps }}{% endfor %}
""") == []
