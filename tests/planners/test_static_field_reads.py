"""A static plan's step reading what an earlier step does not have is found by `ponder
validate`, as for the workflow's own steps: `{{ steps.a.outptu }}` (a step's value is
its output) and a field its `output_schema` does not declare (`steps.a.output.cty`).
They were found only when the plan ran, after the steps before them had run."""

from __future__ import annotations

from orchestrator.graph.validate import validate_text

HEAD = """name: w
steps:
  - id: outer
    kind: llm
    prompt: "json"
    output_schema: {type: object, properties: {town: {type: string}}}
  - id: p
    kind: plan
    planner: static
    goal: "{{ steps.outer.output.town }}"
    options:
      steps:
        - id: a
          kind: llm
          prompt: "json"
          output_schema: {type: object, properties: {city: {type: string}}}
"""


def problems(steps: str) -> list[tuple[int, str]]:
    return sorted((p.line, p.message) for p in validate_text(HEAD + steps, "w.yaml"))


def test_a_misspelt_output_in_a_template_is_reported_at_its_line() -> None:
    found = problems("""        - id: b
          kind: llm
          prompt: "about {{ steps.a.outptu }}"
""")
    assert found == [(19, "`steps.a.outptu`: a step's value is `steps.a.output`")]


def test_a_field_the_output_schema_lacks_is_reported_in_templates_and_values() -> None:
    found = problems("""        - id: b
          kind: llm
          prompt: "about {{ steps.a.output.cty }}"
        - id: c
          kind: tool
          tool: calc
          args: {expression: "${steps.a.output.cty} and ${steps.outer.output.twn}"}
""")
    assert found == [
        (19, "`steps.a.output.cty`: the output schema of 'a' has no field 'cty'"),
        (23, "`${steps.a.output.cty}`: the output schema of 'a' has no field 'cty'"),
        (23, "`${steps.outer.output.twn}`: the output schema of 'outer' has no field 'twn'"),
    ]


def test_fields_the_schemas_declare_are_fine() -> None:
    assert problems("""        - id: b
          kind: llm
          prompt: "about {{ steps.a.output.city }} in {{ steps.outer.output.town }}"
        - id: c
          kind: tool
          tool: calc
          args: {expression: "${steps.a.output.city}"}
""") == []


def test_a_step_the_plan_may_not_read_is_one_problem_not_two() -> None:
    text = (HEAD.replace('goal: "{{ steps.outer.output.town }}"', "goal: g")
            + """        - id: b
          kind: llm
          prompt: "about {{ steps.outer.output.twn }}"
""")
    found = [p.message for p in validate_text(text, "w.yaml")]
    assert len(found) == 1 and "which is not an earlier step of the plan" in found[0]
