"""YAML loading keeps positions; bad YAML and bad fields are located problems."""

from __future__ import annotations

import pytest

from orchestrator import ValidationFailed, Workflow
from orchestrator.spec.loader import dump_yaml, load_yaml, parse_yaml

GOOD = """\
name: demo
inputs:
  q: {type: string}
steps:
  - id: a
    kind: llm
    prompt: "Answer {{ inputs.q }}"
  - id: b
    kind: tool
    tool: calc
    args:
      expression: "1 + 2"
"""


def test_positions_are_recorded_for_every_value() -> None:
    _, smap, problems = parse_yaml(GOOD, "demo.yaml")
    assert not problems
    assert smap.locate(("steps", 0)) == (5, 5)
    assert smap.locate(("steps", 1, "args", "expression")) == (12, 7)
    assert smap.locate(("steps", 1, "args", "nope")) == (11, 5)  # nearest ancestor


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("name: x\nsteps:\n  - id: a\n    kind: llm\n   prompt: x\n", 5, "YAML syntax"),
        ("name: x\nname: y\nsteps: []\n", 2, "duplicate key 'name'"),
        ("name: x\nsteps:\n  - id: a\n    kind: llm\n    prompt: p\n    colour: red\n", 6,
         "unknown field `colour`"),
        ("name: x\nsteps:\n  - id: a\n    kind: frob\n", 3, "unknown step kind 'frob'"),
        ("name: x\nsteps:\n  - id: a\n    kind: llm\n", 3, "prompt: Field required"),
        ("name: x\nsteps:\n  - id: 1a\n    kind: llm\n    prompt: p\n", 3, "id"),
        ("", 1, "empty"),
        ("- just\n- a list\n", 1, "must be a mapping"),
    ],
)
def test_problems_are_located(text: str, line: int, needle: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        load_yaml("w.yaml", text=text)
    problem = info.value.problems[0]
    assert needle in problem.message
    assert problem.file == "w.yaml"
    assert problem.line == line
    assert problem.hint or needle in ("id", "must be a mapping")


def test_unsupported_tags_are_problems_not_crashes() -> None:
    with pytest.raises(ValidationFailed) as info:
        load_yaml("w.yaml", text="name: !!python/object:os.system x\nsteps: []\n")
    assert "unsupported YAML value" in info.value.problems[0].message


def test_a_merge_key_is_named_as_such() -> None:
    # the safe loader has no constructor for the merge tag: it was reported as a YAML
    # syntax error with a hint about indentation
    text = "name: x\nsteps:\n  - &d {id: z, kind: llm, prompt: p}\n  - <<: *d\n    id: a\n"
    _, _, problems = parse_yaml(text, "w.yaml")
    assert [(p.line, p.column, p.message) for p in problems] == [
        (4, 5, "merge keys (`<<`) are not supported")]


def test_a_path_no_file_can_have_is_a_problem_not_a_crash() -> None:
    with pytest.raises(ValidationFailed) as info:
        load_yaml("a\0b.yaml")
    assert "cannot read" in info.value.problems[0].message


def test_a_model_config_given_as_the_workflow_is_named_as_such() -> None:
    # the examples' *.sim.yaml files are model configs for `--model NAME=FILE`
    with pytest.raises(ValidationFailed) as info:
        load_yaml("m.sim.yaml", text="backend: simulated\noptions:\n  output_tokens: text\n")
    (problem,) = info.value.problems
    assert "model config" in problem.message and "--model NAME=FILE" in problem.hint
    # a workflow missing its steps but with other workflow fields is not taken for one
    with pytest.raises(ValidationFailed) as info:
        load_yaml("w.yaml", text="name: w\nbackend: local\n")
    assert not any("model config" in p.message for p in info.value.problems)


def test_dump_then_load_gives_an_equal_model() -> None:
    spec, _ = load_yaml("w.yaml", text=GOOD)
    again, _ = load_yaml("w.yaml", text=dump_yaml(spec))
    assert again == spec


def test_sdk_built_workflow_round_trips_through_yaml() -> None:
    wf = Workflow("sdk", inputs={"n": "integer"})
    wf.tool("double", "calc", expression="${inputs.n} * 2")
    wf.map("each", over=[1, 2], step={"kind": "llm", "prompt": "{{ item }}"}, concurrency=1)
    wf.branch("br", [("steps.double.output > 3", ["big"])], default=[])
    wf.llm("big", prompt="big {{ steps.double.output }}", max_tokens=5)
    wf.output(result="${steps.double.output}")
    again = Workflow.from_yaml_text(wf.to_yaml())
    assert again.spec == wf.spec
