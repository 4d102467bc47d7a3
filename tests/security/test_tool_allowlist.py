"""A workflow file reaches Python only through the tool allowlist.

The allowlist is: the built-in tools (``ponder.tools`` entry points: calc, sleep,
extract), tools registered from Python (``Workflow.register_tool``), and the
workflow's own ``tools:`` section, where the workflow's author names
``module:function`` targets on purpose. Anything else named in ``tool:`` is refused
by validation and again at run time, and ``${...}`` references only index into
JSON data: they never read attributes of Python objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from executors.tool import ToolExecutor
from orchestrator import Workflow
from orchestrator.errors import ReferenceResolutionError, ToolError, ValidationFailed
from orchestrator.graph.validate import validate_file, validate_text
from orchestrator.runtime.contracts import Task
from orchestrator.runtime.registry import Registry
from orchestrator.spec.refs import Scope, resolve

pytestmark = pytest.mark.anyio

OUTSIDE = ["os.system", "os:system", "subprocess:run", "builtins:eval", "eval", "exec",
           "__import__", "open", "importlib:import_module", "executors.builtin_tools:calc",
           "calc; import os"]


def one_tool_step(tool: str, **extra: Any) -> str:
    return yaml.safe_dump({"name": "t", **extra, "steps": [
        {"id": "a", "kind": "tool", "tool": tool, "args": {"command": "touch /tmp/pwned"}}]})


@pytest.mark.parametrize("name", OUTSIDE)
def test_a_tool_outside_the_allowlist_fails_validation(name: str) -> None:
    problems = validate_text(one_tool_step(name), "evil.yaml")
    assert any("unknown tool" in p.message for p in problems), problems
    with pytest.raises(ValidationFailed, match="unknown tool"):
        Workflow.from_yaml_text(one_tool_step(name)).compile()


class _Ctx:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.run_id = "r"


@pytest.mark.parametrize("name", OUTSIDE)
async def test_a_tool_outside_the_allowlist_fails_at_run_time(name: str) -> None:
    # a step added at run time (a planner's plan) skips compile: the executor checks too
    task = Task("r", "a", "tool", None, {"tool": name, "args": {"command": "id"}})
    with pytest.raises(ToolError, match="unknown tool"):
        await ToolExecutor().execute(task, _Ctx(Registry()))  # type: ignore[arg-type]


async def test_the_allowlist_is_builtins_registered_and_declared_tools() -> None:
    registry = Registry()
    assert {"calc", "sleep", "extract"} <= registry.tool_names()
    assert not {"eval", "exec", "open", "system"} & registry.tool_names()
    wf = Workflow.from_yaml_text(one_tool_step("shout"))
    with pytest.raises(ValidationFailed):
        wf.compile()

    def shout(command: str) -> str:
        """Upper-case."""
        return command.upper()

    wf.register_tool(shout)  # registered from Python: allowed
    result = await wf.run()
    assert result.ok and result.output == "TOUCH /TMP/PWNED"


async def test_tools_section_is_the_authors_explicit_opt_in() -> None:
    # `tools:` maps a name to `module:function`: the author chose to expose it, so it
    # runs; the name is what steps use, and only that name is added to the allowlist
    text = yaml.safe_dump({"name": "t", "tools": {"dedent": "textwrap:dedent"}, "steps": [
        {"id": "a", "kind": "tool", "tool": "dedent", "args": {"text": "  x"}}]})
    result = await Workflow.from_yaml_text(text).run()
    assert result.ok and result.output == "x"
    also = yaml.safe_dump({"name": "t", "tools": {"dedent": "textwrap:dedent"}, "steps": [
        {"id": "a", "kind": "tool", "tool": "json:loads", "args": {"s": "1"}}]})
    assert any("unknown tool" in p.message for p in validate_text(also, "t.yaml"))


def test_validating_a_workflow_does_not_execute_its_tool_modules(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "evil_tools.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\ndef f():\n    return 1\n")
    wf = tmp_path / "wf.yaml"
    wf.write_text(yaml.safe_dump({"name": "t", "tools": {"f": "evil_tools:f"}, "steps": [
        {"id": "a", "kind": "tool", "tool": "f"}]}))
    validate_file(wf)
    assert not marker.exists()


@pytest.mark.parametrize("ref", [
    "${inputs.q.__class__}", "${inputs.q['__class__']}", "${inputs.q.__class__.__mro__}",
    "${steps.a.output.__globals__}", "${steps.a.output.keys}", "${inputs.q.upper}",
    "${item.__init__}", "${inputs.__dict__}", "${steps.__class__.output}",
])
def test_references_index_json_and_never_reach_python_objects(ref: str) -> None:
    scope = Scope({"q": "text"}, {"a": {"k": 1}}, {"item": {"x": 1}})
    with pytest.raises(ReferenceResolutionError):
        resolve(ref, scope)


async def test_a_reference_inside_an_input_value_is_not_resolved_again() -> None:
    # the value of ${inputs.q} is inserted once; `${...}` inside it stays text
    text = yaml.safe_dump({"name": "t", "inputs": {"q": {"type": "string"}}, "steps": [
        {"id": "secret", "kind": "tool", "tool": "calc", "args": {"expression": "42"}},
        {"id": "a", "kind": "tool", "tool": "extract",
         "args": {"text": "said: ${inputs.q}", "pattern": ".*"}, "after": ["secret"]}]})
    result = await Workflow.from_yaml_text(text).run({"q": "${steps.secret.output}"})
    assert result.ok
    assert result.output == "said: ${steps.secret.output}"
