"""A problem with an output's reference is named at the line of its `from:` value (of the
line in it that holds the reference), not at the output's name: an output written as a
mapping (`from:`, `type:`, `description:`) was reported at its `x:` key."""

from __future__ import annotations

from orchestrator.graph.validate import validate_text

TEXT = """\
name: w
models:
  default: {backend: simulated}
steps:
  - id: a
    kind: llm
    prompt: hi
outputs:
  x:
    type: string
    description: the x
    from: ${steps.nope.output}
  y:
    from: "${steps.a.output} and ${steps.b.output}"
  z: ${steps.zz.output}
  w:
    description: d
    from: |
      first ${steps.a.output}
      second ${steps.q.output}
  v:
    - ${steps.a.output}
    - ${steps.vv.output}
  u:
    description: a list
    from:
      - ${steps.a.output}
      - ${steps.uu.output}
"""


def _at(needle: str) -> tuple[int, int]:
    """The (line, column) of ``needle`` in TEXT, 1-based, where it is the only one."""
    assert TEXT.count(needle) == 1, needle
    before = TEXT[:TEXT.index(needle)]
    return before.count("\n") + 1, len(before) - before.rfind("\n")


def test_an_output_reference_is_named_at_its_own_line() -> None:
    got = [(p.line, p.message) for p in validate_text(TEXT, "w.yaml")]
    assert got == [
        (_at("from: ${steps.nope")[0], "unknown step 'nope' in `${steps.nope.output}`"),
        (_at("from: \"${steps.a")[0], "unknown step 'b' in `${steps.b.output}`"),
        (_at("z: ${")[0], "unknown step 'zz' in `${steps.zz.output}`"),
        (_at("second ${")[0], "unknown step 'q' in `${steps.q.output}`"),
        (_at("- ${steps.vv")[0], "unknown step 'vv' in `${steps.vv.output}`"),
        (_at("- ${steps.uu")[0], "unknown step 'uu' in `${steps.uu.output}`"),
    ]


def test_an_output_reference_on_a_line_of_its_own_is_named_at_its_column() -> None:
    (problem,) = [p for p in validate_text(TEXT, "w.yaml") if "'q'" in p.message]
    assert (problem.line, problem.column) == _at("${steps.q.output}")


def test_an_output_written_as_a_jinja2_template_is_named_at_its_line() -> None:
    """Outputs take `${...}` references; `{{ steps.a.output }}` there was returned as
    that text, unchecked (an unknown step in it too)."""
    text = TEXT.split("outputs:")[0] + """\
outputs:
  x:
    type: string
    from: "{{ steps.zz.output }}"
  y: "got ${steps.a.output} and {{ steps.a.output }}"
  z: "{{ '{{' }} is text"
"""
    problems = validate_text(text, "w.yaml")
    hint = "refer to a value with ${...}: ${inputs.NAME}, ${steps.ID.output}"
    assert [(p.line, p.message, p.hint) for p in problems] == [
        (11, "'{{ steps.zz.output }}' is passed as this text: outputs are not Jinja2 "
             "templates", hint),
        (12, "'got ${steps.a.output} and {{ steps.a.output }}' is passed as this text: "
             "outputs are not Jinja2 templates", hint),
    ]


def test_a_spawn_childs_inputs_and_a_scorers_args_are_not_jinja2_either() -> None:
    text = TEXT.split("outputs:")[0] + """\
  - id: t
    kind: spawn
    messages: [x]
    workflow: child.yaml
    inputs: {topic: "{{ message }}"}
  - id: j
    kind: join
    of: t
    reducer: best_of_n
    scorer: {tool: calc, args: {expression: "{{ answer }}"}}
"""
    problems = [p for p in validate_text(text, "w.yaml") if "Jinja2" in p.message]
    assert [(p.line, p.message.split(":")[0]) for p in problems] == [
        (12, "'{{ message }}' is passed as this text"),
        (17, "'{{ answer }}' is passed as this text")]
