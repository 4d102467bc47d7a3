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


def _tool_module(folder: Path, module: str, answer: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(
        f"def lookup(key: str) -> str:\n    return {answer!r} + ': ' + key\n")


def _nested(tmp_path: Path, parent_module: str, child_module: str) -> Path:
    """A parent whose tool `lookup` is its own, running a sub-workflow (in a folder of
    its own) whose `tools:` defines `lookup` anew."""
    _tool_module(tmp_path, parent_module, "parent")
    _tool_module(tmp_path / "sub", child_module, "child")
    (tmp_path / "sub" / "child.yaml").write_text(
        f"name: child\ntools:\n  lookup: {child_module}:lookup\nsteps:\n"
        "  - {id: c, kind: tool, tool: lookup, args: {key: k}}\n")
    (tmp_path / "parent.yaml").write_text(
        f"name: parent\ntools:\n  lookup: {parent_module}:lookup\nsteps:\n"
        "  - {id: a, kind: tool, tool: lookup, args: {key: k}}\n"
        "  - {id: b, kind: workflow, workflow: sub/child.yaml, after: [a]}\n"
        "  - {id: d, kind: tool, tool: lookup, args: {key: k}, after: [b]}\n"
        "outputs: {a: '${steps.a.output}', b: '${steps.b.output}', d: '${steps.d.output}'}\n")
    return tmp_path / "parent.yaml"


def test_a_sub_workflows_own_tool_of_a_parents_name_is_its_own(tmp_path: Path) -> None:
    # the child ran the parent's function: the registry kept the first `lookup` it saw
    wf = Workflow.from_yaml(_nested(tmp_path, "ponder_parent_tools_a", "ponder_child_tools_a"))
    result = wf.run_sync()
    assert result.output == {"a": "parent: k", "b": "child: k", "d": "parent: k"}
    assert "lookup" not in wf.registry.tools  # the run's tools, not the registry's


def test_two_tool_modules_of_one_name_are_each_their_workflows(tmp_path: Path) -> None:
    # both folders have a `ponder_same_tools.py`: the child's import returned the parent's
    wf = Workflow.from_yaml(_nested(tmp_path, "ponder_same_tools", "ponder_same_tools"))
    result = wf.run_sync()
    assert result.output == {"a": "parent: k", "b": "child: k", "d": "parent: k"}
    # and a later run of another folder's module of that name gets its own too
    _tool_module(tmp_path / "other", "ponder_same_tools", "other")
    (tmp_path / "other" / "w.yaml").write_text(
        "name: w\ntools:\n  lookup: ponder_same_tools:lookup\nsteps:\n"
        "  - {id: c, kind: tool, tool: lookup, args: {key: k}}\n")
    assert Workflow.from_yaml(tmp_path / "other" / "w.yaml").run_sync().output == "other: k"


def test_a_tool_module_that_fails_to_import_is_named_not_an_internal_error(
        tmp_path: Path) -> None:
    (tmp_path / "ponder_broken_tools.py").write_text("def f(x: int) -> int:\n    return x +\n")
    (tmp_path / "w.yaml").write_text(
        "name: w\ntools:\n  f: ponder_broken_tools:f\nsteps:\n"
        "  - {id: c, kind: tool, tool: f, args: {x: 1}}\n")
    with pytest.raises(ValidationFailed) as info:
        Workflow.from_yaml(tmp_path / "w.yaml").run_sync()
    [problem] = info.value.problems
    assert problem.line == 3
    assert problem.message.startswith(
        "importing module 'ponder_broken_tools' for tool 'ponder_broken_tools:f' failed: "
        "SyntaxError: invalid syntax")


def test_a_tools_entry_may_not_take_a_name_registered_in_python(tmp_path: Path) -> None:
    # the function registered in Python was kept and the file's silently ignored
    _tool_module(tmp_path, "ponder_py_clash_tools", "file")
    (tmp_path / "w.yaml").write_text(
        "name: w\ntools:\n  lookup: ponder_py_clash_tools:lookup\nsteps:\n"
        "  - {id: c, kind: tool, tool: lookup, args: {key: k}}\n")
    wf = Workflow.from_yaml(tmp_path / "w.yaml")

    def lookup(key: str) -> str:
        return "python: " + key

    wf.register_tool(lookup)
    with pytest.raises(ValidationFailed) as info:
        wf.run_sync()
    [problem] = info.value.problems
    assert problem.line == 3 and "is registered in Python" in problem.message
    assert problem.hint == "give yours another name"
