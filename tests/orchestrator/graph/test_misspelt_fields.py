"""A misspelt required field is one problem, the unknown field's, whose hint names the
field meant: `Name:` was also "name: Field required", `promt:` also "prompt: Field
required", and `step:` also "the workflow has no steps", each at a line of its own."""

from __future__ import annotations

import pytest

from orchestrator.errors import ValidationFailed
from orchestrator.graph.validate import validate_text
from orchestrator.spec.loader import load_yaml

TEXT = """\
Name: w
models:
  default: {backend: simulated}
step:
  - id: a
    kind: llm
    prompt: hi
"""

STEP = """\
name: w
steps:
  - id: a
    kind: llm
    promt: hi
  - id: b
    kind: llm
"""


def test_misspelt_top_level_fields_are_one_problem_each() -> None:
    assert [(p.line, p.message, p.hint) for p in validate_text(TEXT, "w.yaml")] == [
        (1, "unknown field `Name`", "did you mean `name`? Else remove it"),
        (4, "unknown field `step`", "did you mean `steps`? Else remove it")]


def test_a_misspelt_step_field_is_one_problem_and_a_missing_one_still_is() -> None:
    expected = [
        (5, "unknown field `promt` at steps.0.promt", "did you mean `prompt`? Else remove it"),
        (6, "steps.1.prompt: Field required", "add this field")]
    assert [(p.line, p.message, p.hint) for p in validate_text(STEP, "w.yaml")] == expected
    with pytest.raises(ValidationFailed) as info:  # as `ponder run` loads it
        load_yaml("w.yaml", text=STEP)
    assert [(p.line, p.message, p.hint) for p in info.value.problems] == expected


def test_a_workflow_without_steps_is_still_named_so() -> None:
    (problem,) = validate_text("name: w\n", "w.yaml")
    assert problem.message == "the workflow has no steps"
