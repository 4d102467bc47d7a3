"""A number JSON has none for (NaN, Infinity) written in a step is refused at its line,
in the words the run's inputs are refused in. `args: {value: .nan}` passed `ponder
validate`, the tool was called with NaN, and the trace stored null: a replay or a resume
passed another value than the run had."""

from __future__ import annotations

import anyio
import pytest

from orchestrator import Workflow
from orchestrator.errors import ValidationFailed
from orchestrator.graph.validate import validate_text

HEAD = "name: w\nsteps:\n"


@pytest.mark.parametrize(("step", "line", "message"), [
    ("  - id: a\n    kind: tool\n    tool: calc\n    args:\n      expression: '1'\n"
     "      x: .nan\n", 8, "tool 'a': args.x is NaN, which JSON has no number for"),
    ("  - id: a\n    kind: workflow\n    workflow: other.yaml\n    inputs: {n: [1, -.inf]}\n",
     6, "workflow 'a': inputs.n[1] is -Infinity, which JSON has no number for"),
    ("  - id: m\n    kind: map\n    over: [1,\n      .inf]\n"
     "    step: {kind: tool, tool: calc, args: {expression: '1'}}\n",
     6, "map 'm': over[1] is Infinity, which JSON has no number for"),
    ("  - id: m\n    kind: map\n    over: [1]\n    step:\n      kind: llm\n      prompt: hi\n"
     "      output_schema: {maximum: .nan}\n",
     9, "map 'm': step.output_schema.maximum is NaN, which JSON has no number for"),
    ("  - id: l\n    kind: llm\n    prompt: hi\n    output_schema:\n      type: number\n"
     "      maximum: .inf\n", 8, "llm 'l': output_schema.maximum is Infinity, which JSON "
     "has no number for"),
])
def test_a_non_finite_literal_is_refused_at_its_line(step: str, line: int, message: str
                                                      ) -> None:
    problems = [p for p in validate_text(HEAD + step, "w.yaml")
                if "JSON has no number" in p.message]
    assert [(p.line, p.message) for p in problems] == [(line, message)]


def test_the_sdk_refuses_it_before_the_run() -> None:
    wf = Workflow("w").tool("a", "calc", expression="1", x=float("nan"))
    with pytest.raises(ValidationFailed) as info:
        anyio.run(wf.run)
    assert "tool 'a': args.x is NaN, which JSON has no number for" in str(info.value)


def test_finite_numbers_pass() -> None:
    assert validate_text(HEAD + "  - {id: a, kind: tool, tool: calc, args: {expression: '1'}}"
                         "\n", "w.yaml") == []
