"""What `ponder validate` finds in templates before a run: each would fail the run."""

from __future__ import annotations

from orchestrator.graph.validate import validate_text

FLOW = """\
name: checks
inputs:
  q: {type: string}
steps:
  - id: a
    kind: llm
    prompt: "{{ inputs.q | uper }}"
  - id: b
    kind: llm
    prompt: |
      fine
      {% if inputs.q is notatest %}x{% endif %}
  - id: c
    kind: llm
    prompt: "{{ steps.a.outptu }} {{ steps.a['output'] }}"
  - id: d
    kind: branch
    cases: [{when: "inputs.q | lenght > 2", then: [a]}]
"""


def test_unknown_filters_tests_and_step_members_are_located_problems() -> None:
    # each passed validation and failed its step at run time
    problems = validate_text(FLOW, "checks.yaml")
    assert [(p.line, p.message, p.hint) for p in problems] == [
        (7, "template error: no filter named 'uper'", "did you mean 'upper'?"),
        (12, "template error: no test named 'notatest'", "did you mean 'test'?"),
        (15, "`steps.a.outptu`: a step's value is `steps.a.output`", "write steps.a.output"),
        (18, "template error: no filter named 'lenght'", "did you mean 'length'?"),
    ]


def test_a_syntax_error_keeps_its_hint() -> None:
    problems = validate_text(
        "name: s\nsteps:\n  - id: a\n    kind: llm\n    prompt: |\n      x\n      {{ y }\n",
        "s.yaml")
    assert [(p.line, p.message, p.hint) for p in problems] == [
        (7, "template syntax error: unexpected '}'", "check `{{ }}`/`{% %}` pairs and quotes")]


def test_a_condition_written_as_a_template_says_to_drop_the_braces() -> None:
    """`when: "{{ ... }}"` was refused as "expected token ':', got '}'" (Jinja2 reads
    `{{` in an expression as a dict in a dict)."""
    text = """\
name: w
models:
  default: {backend: simulated}
steps:
  - id: a
    kind: llm
    prompt: hi
  - id: b
    kind: branch
    cases:
      - when: "{{ steps.a.output == 'x' }}"
        then: [a]
      - when: |
          steps.a.output == 'y'
          and {% if true %}1{% endif %}
        then: [a]
"""
    problems = validate_text(text, "w.yaml")
    assert [(p.line, p.message, p.hint) for p in problems] == [
        (11, "template error: a condition is a Jinja2 expression, not a template: `{{` does "
             "not belong in it", "write the expression alone, e.g. when: steps.a.output == 'x'"),
        (15, "template error: a condition is a Jinja2 expression, not a template: `{%` does "
             "not belong in it", "write the expression alone, e.g. when: steps.a.output == 'x'"),
    ]
