"""Sub-workflows given as Workflow objects: a name calls one workflow, and a workflow
loaded from ``to_yaml()`` gets its sub-workflows back with ``register_workflow``."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.errors import ConfigError


def helper(expression: str) -> Workflow:
    """A workflow named ``helper`` whose output is ``{"v": <the expression's value>}``."""
    wf = Workflow("helper")
    wf.tool("x", "calc", expression=expression)
    wf.output(v="${steps.x.output}")
    return wf


def test_two_workflows_of_one_name_are_refused_not_swapped() -> None:
    first, second = helper("1+1"), helper("10*10")
    wf = Workflow("main")
    wf.call("a", first)
    with pytest.raises(ConfigError) as info:
        wf.call("b", second)  # step a would run `second` (its output was {'v': 100})
    assert str(info.value) == (
        "register_workflow: another workflow is registered as 'helper': give this one "
        "another name (wf.register_workflow(other, name='...'), then call it by that "
        "name), or pass replace=True to run it in place of the first")
    wf.register_workflow(second, name="helper2")
    wf.call("b", "helper2")
    wf.output(a="${steps.a.output}", b="${steps.b.output}")
    assert wf.run_sync().output == {"a": {"v": 2}, "b": {"v": 100}}


def test_the_same_workflow_may_be_called_twice_or_replaced_on_purpose() -> None:
    first = helper("1+1")
    wf = Workflow("main")
    wf.call("a", first)
    wf.call("b", first)
    wf.spawn("c", ["x"], workflow=first)
    wf.register_workflow(helper("2+2"), replace=True)
    wf.output(a="${steps.a.output}", b="${steps.b.output}")
    assert wf.run_sync().output == {"a": {"v": 4}, "b": {"v": 4}}


def test_a_workflow_loaded_from_to_yaml_runs_once_its_sub_workflows_are_registered() -> None:
    def shout(text: str) -> str:
        return text.upper()

    sub = helper("3*3")
    sub.tool("y", shout, text="hi")
    wf = Workflow("main")
    wf.call("a", sub)
    wf.output(a="${steps.a.output}")
    loaded = Workflow.from_yaml_text(wf.to_yaml())
    assert loaded.spec == wf.spec
    assert loaded.register_workflow(sub) == "helper"
    assert loaded.run_sync().output == {"a": {"v": 9}}  # with sub's tool `shout`


@pytest.mark.parametrize(("workflow", "name", "message"), [
    (helper("1").spec, None, "register_workflow: the workflow must be a Workflow, not "
                             "WorkflowSpec "),
    ("helper.yaml", None, "register_workflow: the workflow must be a Workflow, not str "
                          "'helper.yaml'"),
    (helper("1"), "", "register_workflow: the name must be a non-empty string, not str ''"),
    (helper("1"), 5, "register_workflow: the name must be a non-empty string, not int 5"),
])
def test_register_workflow_refuses_what_it_cannot_use(workflow: Any, name: Any,
                                                      message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Workflow("main").register_workflow(workflow, name)
    assert str(info.value).startswith(message)
