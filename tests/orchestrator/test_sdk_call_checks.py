"""A workflow built in Python has the inputs its `workflow` steps pass checked before
its run starts, as `ponder run` checks a file's: the run used to start, run every step
before the call, and only then fail the step with the sub-workflow's refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import Workflow
from orchestrator.errors import ValidationFailed

CHILD = "name: child\ninputs: {n: {type: integer}}\nsteps:\n  - {id: a, kind: llm, prompt: hi}\n"


def _child(tmp_path: Path) -> str:
    (tmp_path / "child.yaml").write_text(CHILD)
    return str(tmp_path / "child.yaml")


def _refused(wf: Workflow) -> list[str]:
    with pytest.raises(ValidationFailed) as info:
        wf.run_sync(backend="simulated")
    return [p.message for p in info.value.problems]


def test_an_input_the_sub_workflow_does_not_declare_is_refused_before_the_run(
        tmp_path: Path) -> None:
    wf = Workflow("parent")
    wf.llm("first", prompt="hi")
    wf.call("sub", _child(tmp_path), n=1, m=2)
    [message] = _refused(wf)
    assert "step 'sub' passes input 'm', which sub-workflow" in message
    assert message.startswith("workflow step 'sub': inputs.m: ")


def test_a_missing_or_mistyped_input_is_refused(tmp_path: Path) -> None:
    child = _child(tmp_path)
    wf = Workflow("parent")
    wf.call("none", child)
    wf.call("text", child, n="many")
    messages = _refused(wf)
    assert len(messages) == 2, messages
    assert "does not pass input 'n' (integer)" in messages[0]
    assert "step 'text': sub-workflow" in messages[1] and "'many'" in messages[1]


def test_a_registered_workflow_is_checked_so_too() -> None:
    child = Workflow("child", inputs={"n": "integer"})
    child.llm("a", prompt="hi")
    wf = Workflow("parent")
    wf.call("sub", child, k=3)
    assert any("passes input 'k'" in m for m in _refused(wf))


def test_other_problems_come_with_them(tmp_path: Path) -> None:
    wf = Workflow("parent")
    wf.llm("first", prompt="{{ steps.zz.output }}")
    wf.call("sub", _child(tmp_path), m=2)
    messages = _refused(wf)
    assert any("unknown step 'zz'" in m for m in messages), messages
    assert any("passes input 'm'" in m for m in messages), messages


def test_good_inputs_run(tmp_path: Path) -> None:
    wf = Workflow("parent")
    wf.call("sub", _child(tmp_path), n=1)
    assert wf.run_sync(backend="simulated").status == "succeeded"
