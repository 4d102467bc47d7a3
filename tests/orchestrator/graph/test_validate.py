"""`validate` reports every problem at once, each located, with a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.graph.validate import validate_file, validate_text

BAD = """\
name: bad
inputs:
  q: {type: string}
steps:
  - id: a
    kind: llm
    prompt: "Q: {{ inputs.qq }}"
    output_schema:
      type: object
      properties: {answer: {type: string}}
  - id: b
    kind: tool
    tool: nope
    args: {x: "${steps.a.output.missing}"}
    colour: red
  - id: a
    kind: llm
    prompt: "x"
  - id: c
    kind: llm
    prompt: "${steps.d.output}"
  - id: d
    kind: llm
    prompt: "${steps.c.output}"
  - id: e
    kind: frobnicate
  - id: f
    kind: llm
    prompt: |
      fine line
      {% if inputs.q %}unclosed
  - id: g
    kind: llm
    prompt: "${steps.ghost.output} ${steps.g.output}"
  - id: h
    kind: llm
    model: gpt9
    prompt: x
  - id: w
    kind: workflow
    workflow: missing.yaml
"""


def test_every_problem_is_reported_with_its_line() -> None:
    problems = validate_text(BAD, "bad.yaml")
    messages = "\n".join(f"{p.line}: {p.message}" for p in problems)
    expect = [
        (7, "unknown input 'qq'"),
        (13, "unknown tool 'nope'"),
        (14, "no field 'missing'"),
        (15, "unknown field `colour`"),
        (16, "duplicate step id 'a'"),
        (19, "cycle: c -> d -> c"),
        (21, "forward reference"),
        (25, "unknown step kind 'frobnicate'"),
        (31, "template syntax error"),
        (34, "unknown step 'ghost'"),
        (34, "refers to itself"),
        (41, "sub-workflow 'missing.yaml' not found"),
    ]
    assert not any("gpt9" in p.message for p in problems)  # no `models:` section: any alias
    for line, needle in expect:
        assert any(p.line == line and needle in p.message for p in problems), (
            f"missing line {line}: {needle}\n{messages}")
    assert all(p.hint for p in problems), messages
    assert [p.line for p in problems] == sorted(p.line for p in problems)


def test_unknown_model_only_when_models_are_declared() -> None:
    text = "name: m\nmodels: {fast: {backend: simulated}}\nsteps:\n  - id: a\n    kind: llm\n" \
           "    model: slow\n    prompt: x\n"
    problems = validate_text(text, "m.yaml")
    assert [(p.line, "unknown model 'slow'" in p.message) for p in problems] == [(6, True)]


def test_tools_section_must_import(tmp_path: Path) -> None:
    (tmp_path / "mytools.py").write_text("def shout(text: str) -> str:\n    return text.upper()\n")
    wf = tmp_path / "w.yaml"
    wf.write_text("name: t\ntools: {shout: 'mytools:shout', gone: 'nomod:fn'}\nsteps:\n"
                  "  - id: a\n    kind: tool\n    tool: shout\n    args: {text: hi}\n")
    problems = validate_file(wf)
    assert len(problems) == 1 and "nomod" in problems[0].message and problems[0].line == 2


@pytest.mark.parametrize("name", sorted(p.name for p in Path("examples").glob("*.yaml")))
def test_examples_validate(name: str) -> None:
    assert validate_file(Path("examples") / name) == []
