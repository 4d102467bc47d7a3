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
