"""A quoted number where the spec takes numbers (`n: "3"`) is refused at its line, as the
published JSON Schema refuses it: pydantic's lax mode read it as 3, so an editor checking
the file against schemas/workflow.schema.json flagged a file that `ponder validate`
passed. A number YAML 1.2 reads and PyYAML's YAML 1.1 leaves as text (`1e-3`) is still
that number, and so is the same text where a run recorded it as text (a static plan's
steps, kept in its `options:` as they were read)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import TypeAdapter

from orchestrator import Workflow
from orchestrator.errors import StepDefinitionError, ValidationFailed
from orchestrator.graph.validate import validate_text
from orchestrator.spec.base import yaml12_only_number
from orchestrator.spec.loader import load_yaml, parse_yaml, spec_to_data
from orchestrator.spec.models import Step, WorkflowSpec

_SCHEMA = json.loads((Path(__file__).parents[3] / "schemas" / "workflow.schema.json")
                     .read_text(encoding="utf-8"))
HEAD = "name: w\nmodels:\n  default: {backend: simulated}\nsteps:\n"


def _problems(text: str) -> list[tuple[int, int, str, str]]:
    return [(p.line, p.column, p.message, p.hint) for p in validate_text(text, "w.yaml")]


@pytest.mark.parametrize(("step", "message", "hint"), [
    ("{id: s, kind: sample, prompt: hi, n: \"3\"}",
     "steps.0.n: must be an integer, got the string '3'",
     "write it without quotes (`n: 3`): quoted, YAML reads it as text"),
    ("{id: s, kind: llm, prompt: hi, temperature: '0.5'}",
     "steps.0.temperature: must be a number, got the string '0.5'",
     "write it without quotes (`temperature: 0.5`): quoted, YAML reads it as text"),
    ("{id: s, kind: llm, prompt: hi, max_tokens: \" 64 \"}",
     "steps.0.max_tokens: must be an integer, got the string ' 64 '",
     "write it without quotes (`max_tokens: 64`): quoted, YAML reads it as text"),
    # pydantic read "inf" as infinity: no number to write instead
    ("{id: s, kind: llm, prompt: hi, timeout_s: 'inf'}",
     "steps.0.timeout_s: must be a number, got the string 'inf'", "write a number"),
])
def test_a_quoted_number_is_a_problem_at_its_line(step: str, message: str,
                                                  hint: str) -> None:
    text = HEAD + "  - " + step + "\n"
    ((line, column, got, got_hint),) = _problems(text)
    assert (line, got, got_hint) == (5, message, hint)
    assert column > len("  - {id: s, kind: ")  # at the value, not at the step


def test_each_section_refuses_one() -> None:
    text = ("name: w\nmodels:\n  default: {backend: simulated, concurrency: '2'}\n"
            "defaults:\n  retry: {max_attempts: '5'}\nbudget: {max_tokens: '1000'}\n"
            "steps:\n  - {id: a, kind: llm, prompt: hi}\n")
    with pytest.raises(ValidationFailed) as info:
        load_yaml("w.yaml", text=text)
    assert [(p.line, p.message) for p in info.value.problems] == [
        (3, "models.default.concurrency: must be an integer, got the string '2'"),
        (5, "defaults.retry.max_attempts: must be an integer, got the string '5'"),
        (6, "budget.max_tokens: must be an integer, got the string '1000'"),
    ]


def test_a_string_that_is_no_number_keeps_its_message() -> None:
    ((_, _, message, _),) = _problems(HEAD + "  - {id: s, kind: sample, prompt: hi, n: few}\n")
    assert message == ("steps.0.n: Input should be a valid integer, unable to parse string "
                       "as an integer (got 'few')")


def test_the_sdk_refuses_one_too() -> None:
    with pytest.raises(StepDefinitionError) as info:
        Workflow("w").sample("s", prompt="hi", n="3")  # type: ignore[arg-type]
    assert str(info.value) == "sample step 's': n: an integer, not a string (got '3')"
    with pytest.raises(StepDefinitionError, match="temperature: a number, not a string"):
        Workflow("w").llm("a", prompt="hi", temperature="0.5")  # type: ignore[arg-type]
    assert Workflow("w").sample("s", prompt="hi", n=3.0).spec.steps[0].n == 3


PLAIN = HEAD + """\
  - id: a
    kind: llm
    prompt: hi
    max_tokens: 1e2
    seed: 0o17
    timeout_s: 1.0e3
  - id: j
    kind: join
    of: s
    reducer: adaptive_vote
    stop_rule: predictive
    risk: 1e-3
  - {id: s, kind: sample, prompt: hi, temperature: 5E-1}
"""


def test_a_number_yaml_1_1_reads_as_text_is_that_number() -> None:
    """PyYAML reads `1e-3` (no point) and `1.0e3` (an unsigned exponent) as text;
    YAML 1.2, and so an editor checking the file against the schema, as numbers."""
    data, _, _ = parse_yaml(PLAIN)
    assert data["steps"][1]["risk"] == "1e-3"  # what PyYAML gives
    spec, _ = load_yaml("w.yaml", text=PLAIN)
    a, j, s = spec.steps
    assert (a.max_tokens, a.seed, a.timeout_s, j.risk, s.temperature) == (
        100, 15, 1000.0, 0.001, 0.5)
    as_yaml_12 = {**data, "steps": [
        {k: (yaml12_only_number(v) if isinstance(v, str) and yaml12_only_number(v) is not None
             else v) for k, v in step.items()} for step in data["steps"]]}
    assert as_yaml_12["steps"][1]["risk"] == 0.001
    jsonschema.validate(as_yaml_12, _SCHEMA)


def test_the_schema_and_validation_agree_on_a_whole_float_and_a_quoted_number() -> None:
    for n, valid in ((3.0, True), (3, True), ("3", False), (3.5, False)):
        data: dict[str, Any] = {"name": "w", "steps": [
            {"id": "s", "kind": "sample", "prompt": "hi", "n": n}]}
        assert jsonschema.Draft202012Validator(_SCHEMA).is_valid(data) is valid, n
        try:
            WorkflowSpec.model_validate(data)
            taken = True
        except ValueError:
            taken = False
        assert taken is valid, n


def test_a_static_plans_steps_read_again_from_the_record() -> None:
    """A run records its workflow as data, a plan step's `options:` as they were read: the
    text `1e-3` of a static plan's step. Resume and replay read that record again, and
    the static planner its steps: they still read (the recorded number is the same)."""
    text = HEAD + """\
  - id: p
    kind: plan
    planner: static
    goal: go
    options:
      steps:
        - {id: a, kind: llm, prompt: hi, temperature: 5e-1, timeout_s: 1e3}
"""
    spec, _ = load_yaml("w.yaml", text=text)
    recorded = json.loads(json.dumps(spec_to_data(spec)))
    assert recorded["steps"][0]["options"]["steps"][0]["temperature"] == "5e-1"
    again = WorkflowSpec.model_validate(recorded)
    (step,) = again.steps[0].options["steps"]
    planned = TypeAdapter(Step).validate_python(step)
    assert (planned.temperature, planned.timeout_s) == (0.5, 1000.0)
