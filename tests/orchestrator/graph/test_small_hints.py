"""Hints of three user mistakes: an input of a workflow that declares none, a folder given
as the workflow file, and the builder's return value given as an output."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import Workflow
from orchestrator.errors import StepDefinitionError, ValidationFailed
from orchestrator.graph.validate import validate_file, validate_text
from orchestrator.spec.loader import load_yaml

NO_INPUTS = """\
name: x
steps:
  - id: a
    kind: tool
    tool: calc
    args: {expression: "${inputs.q}"}
"""


def test_unknown_input_of_a_workflow_without_inputs_says_none_are_declared() -> None:
    [problem] = validate_text(NO_INPUTS, "x.yaml")
    assert problem.line == 6
    assert problem.message == "unknown input 'q' in `${inputs.q}`"
    assert problem.hint == "declare it under `inputs:` (the workflow declares none)"


def test_unknown_input_lists_the_declared_ones() -> None:
    text = NO_INPUTS.replace("steps:", "inputs:\n  p: {type: string}\n  n: {type: integer}\nsteps:")
    [problem] = validate_text(text, "x.yaml")
    assert problem.hint == "declare it under `inputs:` (declared: n, p)"


def test_validate_of_a_folder_asks_for_its_yaml_file(tmp_path: Path) -> None:
    [problem] = validate_file(tmp_path)
    assert problem.message == f"cannot read {tmp_path}: it is a folder"
    assert problem.hint == f"name the workflow's YAML file (such as {tmp_path / 'NAME.yaml'})"


def test_loading_a_folder_asks_for_its_yaml_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed) as info:
        load_yaml(tmp_path)
    [problem] = info.value.problems
    assert problem.message == f"cannot read {tmp_path}: it is a folder"
    assert "NAME.yaml" in problem.hint


def test_output_given_the_workflow_itself_says_to_name_a_steps_output() -> None:
    wf = Workflow("x")
    with pytest.raises(StepDefinitionError) as info:
        wf.output(answer=wf.tool("a", "calc", expression="1+1"))
    message = str(info.value)
    assert "got the Workflow itself" in message
    assert "${steps.ID.output}" in message
    assert "0x" not in message  # no memory address


@pytest.mark.parametrize(("line", "value"), [("  - {id: yes, kind: tool, tool: calc, "
                                              "args: {expression: '1'}}", "true"),
                                             ("  - {id: a, kind: llm, prompt: off}", "false")])
def test_text_that_yaml_reads_as_a_boolean_is_told_to_be_quoted(line: str, value: str) -> None:
    # the problem said only "Input should be a valid string (got True)" (now `true`, as YAML
    # and JSON write it)
    [problem] = validate_text(f"name: x\nsteps:\n{line}\n", "x.yaml")
    assert problem.line == 3 and problem.message.endswith(f"(got {value})")
    assert problem.hint == ("YAML reads true/false, yes/no and on/off as booleans: quote the "
                            "text ('yes') to give it as text")


@pytest.mark.parametrize("fields", ["step: {kind: llm, prompt: hi, temperature: 0.7}",
                                    "prompt: hi\n    step: {kind: llm, prompt: hi}"])
def test_a_sample_written_as_a_map_body_is_told_where_its_prompt_goes(fields: str) -> None:
    # the hint was "did you mean `stop`?", and a missing `prompt` was a second problem
    text = f"name: x\nsteps:\n  - id: s\n    kind: sample\n    n: 4\n    {fields}\n"
    [problem] = validate_text(text, "x.yaml")
    assert problem.message == "unknown field `step` at steps.0.step"
    assert problem.hint == ("a sample step is itself the LLM call: give `prompt:`, `model:`, "
                            "`temperature:`... on the step, not under `step:`")


def test_a_map_without_a_step_keeps_its_own_hints() -> None:
    text = "name: x\nsteps:\n  - {id: m, kind: map, over: [1], stp: {kind: llm, prompt: p}}\n"
    [problem] = validate_text(text, "x.yaml")
    assert problem.hint == "did you mean `step`? Else remove it"
