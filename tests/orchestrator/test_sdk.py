"""The Python SDK: building, sub-workflows, workflows as tools, custom executors/backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator import LLMRequest, LLMResponse, Result, Task, Workflow, tool
from orchestrator.errors import SpecError, ValidationFailed

pytestmark = pytest.mark.anyio


@tool
def shout(text: str, times: int = 1) -> str:
    """Upper-case a text."""
    return text.upper() * times


async def test_tools_validate_arguments_from_the_signature() -> None:
    wf = Workflow("t")
    wf.register_tool(shout)
    wf.tool("a", "shout", text="hi", times=2)
    wf.tool("b", "shout", text="hi", times="many")
    result = await wf.run()
    by_id = {s.id: s for s in result.steps}
    assert by_id["a"].output == "HIHI"
    assert by_id["b"].status == "failed"
    assert "times" in (by_id["b"].error or "") and "valid integer" in (by_id["b"].error or "")


async def test_unknown_tool_is_a_validation_error_with_the_known_ones() -> None:
    wf = Workflow("t")
    wf.tool("a", "nope")
    with pytest.raises(ValidationFailed, match="unknown tool 'nope'") as info:
        await wf.run()
    assert "calc" in info.value.problems[0].hint


async def test_a_workflow_step_runs_a_child_workflow(tmp_path: Path) -> None:
    (tmp_path / "child.yaml").write_text(
        "name: child\ninputs: {n: {type: integer}}\nsteps:\n"
        "  - {id: sq, kind: tool, tool: calc, args: {expression: '${inputs.n} ** 2'}}\n"
        "outputs: {square: '${steps.sq.output}'}\n")
    (tmp_path / "parent.yaml").write_text(
        "name: parent\nsteps:\n"
        "  - {id: call, kind: workflow, workflow: child.yaml, inputs: {n: 7}}\n"
        "  - {id: plus, kind: tool, tool: calc, args: {expression: '${steps.call.output.square} + 1'}}\n")
    events: list[Any] = []

    async def rec(batch: Any) -> None:
        events.extend(batch)

    result = await Workflow.from_yaml(tmp_path / "parent.yaml").run(hooks=[rec])
    assert result.ok, result.error
    assert result.output == 50
    child_start = next(e for e in events if e.kind == "run_started" and e.workflow == "child")
    assert child_start.parent_run_id == result.run_id and child_start.parent_step_id == "call"


async def test_a_workflow_as_a_tool_of_another() -> None:
    inner = Workflow("double", inputs={"x": "integer"})
    inner.tool("d", "calc", expression="${inputs.x} * 2")
    outer = Workflow("outer")
    outer.register_tool(inner.as_tool())
    outer.tool("use", "double", x=21)
    result = await outer.run()
    assert result.ok and result.output == 42
    spec = inner.as_tool()
    assert spec.json_schema()["properties"]["x"]["type"] == "integer"


async def test_sdk_sub_workflow_object() -> None:
    inner = Workflow("inner", inputs={"x": "integer"})
    inner.tool("d", "calc", expression="${inputs.x} + 1")
    outer = Workflow("outer")
    outer.call("c", inner, x=1)
    assert (await outer.run()).output == 2


async def test_custom_executor_and_backend() -> None:
    class Upper:
        async def execute(self, task: Task, ctx: Any) -> Result:
            return Result(output=str(task.inputs["args"]["text"]).upper())

        def estimate_s(self, step: Any, model: Any) -> float:
            return 0.0

    class Echo:
        default_concurrency = 2

        def __init__(self, config: Any) -> None:
            self.config = config

        async def complete(self, request: LLMRequest) -> LLMResponse:
            return LLMResponse(text="echo: " + request.messages[-1]["content"], prompt_tokens=1,
                               completion_tokens=2)

        async def stream(self, request: LLMRequest) -> Any:
            raise NotImplementedError

        async def aclose(self) -> None:
            pass

    wf = Workflow("c", models={"default": {"backend": "echo"}})
    wf.register_executor("tool", Upper())
    wf.register_backend("echo", Echo)
    wf.tool("up", "calc", text="abc")
    wf.llm("talk", prompt="hello {{ steps.up.output }}")
    result = await wf.run()
    assert result.output == "echo: hello ABC"
    assert result.usage.completion_tokens == 2


async def test_inputs_are_checked_and_defaults_applied() -> None:
    wf = Workflow("i", inputs={"n": {"type": "integer", "default": 4}, "s": "string"})
    wf.tool("a", "calc", expression="${inputs.n} + 1")
    with pytest.raises(SpecError, match="missing input 's'"):
        await wf.run({})
    with pytest.raises(SpecError, match="unknown input 'zz'"):
        await wf.run({"s": "x", "zz": 1})
    assert (await wf.run({"s": "x"})).output == 5


def test_run_sync() -> None:
    wf = Workflow("s")
    wf.tool("a", "calc", expression="1 + 1")
    assert wf.run_sync().output == 2


async def test_the_compiled_graph_is_reused_until_something_it_was_built_from_changes() -> None:
    wf = Workflow("cache")
    wf.register_tool(shout)
    wf.tool("a", "shout", text="hi")
    graph = wf.compile()
    assert wf.compile() is graph
    assert (await wf.run()).output == "HI"
    assert wf.compile() is graph  # running does not change what it was built from

    wf.spec.steps[0].args["times"] = 3  # edited in place
    assert (await wf.run()).output == "HIHIHI"
    edited = wf.compile()
    assert edited is not graph

    wf.tool("b", "shout", text="${steps.a.output}")  # a step added
    assert (await wf.run()).output == "HIHIHI"
    added = wf.compile()
    assert added is not edited and set(added.nodes) == {"a", "b"}

    wf.register_tool(lambda text: text.lower(), "whisper")  # a name the spec may now use
    wf.spec.steps[1].tool = "whisper"
    assert (await wf.run()).output == "hihihi"
    assert wf.compile() is not added


async def test_a_step_made_invalid_after_a_compile_is_reported_again() -> None:
    wf = Workflow("cache")
    wf.register_tool(shout)
    wf.tool("a", "shout", text="hi")
    wf.compile()
    wf.spec.steps[0].tool = "nope"
    with pytest.raises(ValidationFailed, match="nope"):
        wf.compile()


async def test_a_tool_removed_after_a_compile_is_reported_again() -> None:
    wf = Workflow("cache")
    wf.register_tool(shout)
    wf.tool("a", "shout", text="hi")
    wf.compile()
    del wf.registry.tools["shout"]
    with pytest.raises(ValidationFailed, match="shout"):
        wf.compile()
