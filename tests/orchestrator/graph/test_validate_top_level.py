"""A bad top-level field of a workflow no longer hides the problems of its steps:
``ponder validate`` reports each, with its line and column."""

from __future__ import annotations

from pathlib import Path

from orchestrator.graph.validate import validate_text

FILE = "wf.yaml"


def _found(text: str) -> list[tuple[int | None, str]]:
    return [(p.line, p.message) for p in validate_text(text, FILE, base_dir=Path("."))]


def test_a_bad_input_type_and_the_steps_problems_are_all_reported() -> None:
    found = _found("""\
name: demo
inputs:
  n: {type: strng}
steps:
  - id: a
    kind: tool
    tool: calc
    args: {expression: "${inputs.n} * 2"}
  - id: b
    kind: llm
    prompt: "{{ steps.zz.output }}"
  - id: c
    kind: tool
    tool: calc
    args: {expression: "1"}
    colour: red
""")
    assert [line for line, _ in found] == [3, 11, 16], found
    assert found[0][1].startswith("inputs.n.type: ")
    assert "unknown step 'zz'" in found[1][1]
    assert "unknown field `colour`" in found[2][1]
    # the bad input stays known: its reference in step a is no problem


def test_each_kind_of_top_level_problem_lets_the_steps_be_checked() -> None:
    found = _found("""\
name: "not a name"
version: 7
bogus: 1
models:
  fast: {backend: simulated, concurrency: 0}
tools:
  mine: 3
defaults: {timeout_s: -1}
steps:
  - {id: a, kind: llm, model: fast, prompt: "{{ steps.zz.output }}"}
  - {id: b, kind: tool, tool: mine, args: {}}
""")
    lines = [line for line, _ in found]
    assert lines == [1, 2, 3, 5, 7, 8, 10], found
    # the bad model and tool stay known to the steps that name them, and are not
    # reported again for their backend or module
    assert not any("unknown model" in m or "unknown tool" in m for _, m in found), found
    assert sum("fast" in m for _, m in found) == 1, found


def test_inputs_that_are_not_a_mapping_still_stop_before_the_steps() -> None:
    # every ${inputs.x} would be reported as unknown: the steps are not checked
    found = _found("""\
name: demo
inputs: [n]
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "${inputs.n}"}}
""")
    assert [line for line, _ in found] == [2], found
