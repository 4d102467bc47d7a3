"""A problem of a workflow built in Python names the step (or output) and the field it
is in: such a workflow has no file lines, and with many steps "unknown step 'zz'" alone
did not say which one to fix."""

from __future__ import annotations

import pytest

from orchestrator import Workflow
from orchestrator.errors import ValidationFailed


def _messages(wf: Workflow) -> list[str]:
    with pytest.raises(ValidationFailed) as info:
        wf.compile()
    return [p.message for p in info.value.problems]


def test_a_reference_names_its_step_and_field() -> None:
    wf = Workflow("t")
    wf.llm("a", prompt="hi")
    wf.llm("b", prompt="{{ steps.zz.output }}")
    assert _messages(wf) == ["llm step 'b': prompt: unknown step 'zz' in `steps.zz.output`"]


def test_a_template_syntax_error_names_its_step() -> None:
    wf = Workflow("t")
    wf.llm("a", prompt="hi")
    wf.llm("b", prompt="{{ x ")
    [message] = _messages(wf)
    assert message.startswith("llm step 'b': prompt: template syntax error: ")


def test_a_branch_condition_names_its_case() -> None:
    wf = Workflow("t")
    wf.llm("a", prompt="hi")
    wf.branch("r", [("steps.a.output == 1", ["b"]), ("steps.zz.output == 1", ["b"])])
    wf.llm("b", prompt="ho")
    assert _messages(wf) == [
        "branch step 'r': cases[1].when: unknown step 'zz' in `steps.zz.output`"]


def test_a_schema_and_an_output_name_where_they_are() -> None:
    wf = Workflow("t")
    wf.llm("a", prompt="hi", output_schema={"type": "strang"})
    wf.output(x="${steps.q.output}")
    messages = _messages(wf)
    assert any(m.startswith("llm step 'a': output_schema.type: output_schema is not a "
                            "valid JSON Schema") for m in messages), messages
    assert "output 'x': unknown step 'q' in `${steps.q.output}`" in messages


def test_a_loaded_file_keeps_its_lines_without_the_prefix() -> None:
    text = "name: t\nsteps:\n  - id: a\n    kind: llm\n    prompt: '{{ steps.zz.output }}'\n"
    wf = Workflow.from_yaml_text(text, "w.yaml")
    with pytest.raises(ValidationFailed) as info:
        wf.compile()
    [problem] = info.value.problems
    assert (problem.line, problem.message) == (5, "unknown step 'zz' in `steps.zz.output`")


def test_a_step_added_to_a_loaded_file_is_not_placed_at_its_steps_line() -> None:
    text = "name: t\nsteps:\n  - id: a\n    kind: llm\n    prompt: hi\n"
    wf = Workflow.from_yaml_text(text, "w.yaml")
    wf.llm("b", prompt="{{ steps.zz.output }}")
    wf.llm("c", prompt="{{ x ")
    wf.output(o="${steps.nope.output}")
    with pytest.raises(ValidationFailed) as info:
        wf.compile()
    found = sorted((p.file, p.line, p.message.split(": ")[0]) for p in info.value.problems)
    assert found == [("w.yaml", 0, "llm step 'b'"), ("w.yaml", 0, "llm step 'c'"),
                     ("w.yaml", 0, "output 'o'")]
