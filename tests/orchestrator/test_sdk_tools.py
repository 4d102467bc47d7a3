"""Tools registered from Python: a name is served by one function, and a built-in tool
(``calc``, ``sleep``, ``extract``) is replaced only on purpose (``replace=True``)."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.errors import ConfigError
from orchestrator.runtime.registry import Registry


def my_calc(expression: str) -> str:
    return f"mine: {expression}"


def test_a_built_in_tool_is_not_replaced_silently() -> None:
    wf = Workflow("t")
    with pytest.raises(ConfigError) as info:
        wf.register_tool(my_calc, "calc")
    assert str(info.value) == (
        "tool 'calc' is a built-in tool (executors.builtin_tools:calc): register yours "
        "under another name, or pass replace=True to serve it in place of the built-in")
    wf.tool("a", "calc", expression="1+1")
    assert wf.run_sync().output == 2  # the built-in still serves it


def test_replace_serves_yours_in_place_of_the_built_in() -> None:
    wf = Workflow("t")
    wf.register_tool(my_calc, "calc", replace=True)
    wf.tool("a", "calc", expression="1+1")
    assert wf.run_sync().output == "mine: 1+1"
    wf.register_tool(my_calc, "calc")  # the same function again: nothing to decide


def test_two_functions_of_one_name_are_refused() -> None:
    wf = Workflow("t")
    wf.tool("a", lambda text: text.upper(), text="x")
    with pytest.raises(ConfigError, match=r"tool '<lambda>' is already registered, as "
                                          r"tests\.orchestrator\.test_sdk_tools\..*<lambda>: "
                                          r"register .* under another name"):
        wf.tool("b", lambda text: text.lower(), text="x")
    wf.register_tool(lambda text: text.lower(), "lower")
    wf.tool("b", "lower", text="X")
    assert {s.id: s.output for s in wf.run_sync().steps} == {"a": "X", "b": "x"}


def test_a_sub_workflows_tool_may_not_shadow_the_callers() -> None:
    child = Workflow("child")
    child.register_tool(lambda text: "child", "label")
    child.tool("c", "label", text="x")
    parent = Workflow("parent")
    parent.register_tool(lambda text: "parent", "label")
    with pytest.raises(ConfigError, match=r"workflow 'child': tool 'label' is already "
                                          "registered"):
        parent.call("sub", child)


@pytest.mark.parametrize("value", [5, "calc", None])
def test_a_tool_that_is_not_callable_is_named(value: Any) -> None:
    with pytest.raises(ConfigError, match="a tool must be a callable or a ToolSpec, not "):
        Registry().add_tool(value)
