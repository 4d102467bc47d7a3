"""A workflow's own ``tools:``: a name of a built-in tool is refused (it ran the built-in,
or the user's function, depending on what the run had loaded before), by ``ponder
validate`` and by a run that was never validated alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import Workflow
from orchestrator.errors import ValidationFailed
from orchestrator.graph.validate import validate_file

MESSAGE = ("tool 'calc' is a built-in tool (executors.builtin_tools:calc): a workflow's "
           "`tools:` cannot replace it")


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "ponder_own_calc_tools.py").write_text(
        "def calc(expression: str) -> str:\n    return 'mine: ' + expression\n")
    (tmp_path / "child.yaml").write_text(
        "name: child\ntools:\n  calc: ponder_own_calc_tools:calc\nsteps:\n"
        "  - {id: c, kind: tool, tool: calc, args: {expression: '1+1'}}\n")
    # the parent has loaded the built-in calc when its child declares its own
    (tmp_path / "parent.yaml").write_text(
        "name: parent\nsteps:\n"
        "  - {id: a, kind: tool, tool: calc, args: {expression: '1+1'}}\n"
        "  - {id: b, kind: workflow, workflow: child.yaml, after: [a]}\n")
    return tmp_path


def test_validate_names_the_built_in_at_its_line(files: Path) -> None:
    [problem] = validate_file(files / "child.yaml")
    assert (problem.line, problem.column, problem.message) == (3, 3, MESSAGE)
    assert problem.hint == "give yours another name"


@pytest.mark.parametrize("name", ["child.yaml", "parent.yaml"])
def test_a_run_that_was_never_validated_refuses_it_too(files: Path, name: str) -> None:
    wf = Workflow.from_yaml(files / name)
    if name == "child.yaml":
        with pytest.raises(ValidationFailed) as info:
            wf.run_sync()
        assert [p.message for p in info.value.problems] == [MESSAGE]
    else:
        result = wf.run_sync()
        assert result.status == "failed"
        assert MESSAGE in (result.error or "")
        assert {s.id: s.status for s in result.steps}["b"] == "failed"


def test_a_tool_of_another_name_is_the_workflows(files: Path) -> None:
    text = (files / "child.yaml").read_text().replace("calc", "mycalc", 1)
    text = text.replace("tool: calc", "tool: mycalc")
    (files / "child.yaml").write_text(text)
    assert validate_file(files / "child.yaml") == []
    assert Workflow.from_yaml(files / "child.yaml").run_sync().output == "mine: 1+1"
