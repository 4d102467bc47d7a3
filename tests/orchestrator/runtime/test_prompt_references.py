"""The prompt a model gets writes a `${...}` reference as a tool argument and an output
do: a string as it is, any other value as JSON. It got Python's repr
(`{'b': None}`, `True`), which no other place of a run writes."""

from __future__ import annotations

from typing import Any

from orchestrator import Workflow
from orchestrator.runtime.contracts import LLMRequest, LLMResponse

TEXT = "obj=${inputs.obj} flag=${inputs.flag} none=${inputs.nothing} f=${inputs.f}"
OBJ = {"a": [1, "two", {"b": None}], "ok": True}


class PromptEcho:
    """A backend that answers with the prompt it was sent."""

    def __init__(self, config: Any) -> None:
        self.config = config

    async def complete(self, request: LLMRequest) -> LLMResponse:
        return LLMResponse(text=request.messages[-1]["content"], prompt_tokens=1,
                           completion_tokens=1)

    async def stream(self, request: LLMRequest) -> Any:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass


def test_a_prompt_gets_the_text_a_tool_argument_and_an_output_get() -> None:
    wf = Workflow("interp", models={"default": {"backend": "echo"}},
                  inputs={"obj": {"type": "object", "default": OBJ},
                          "flag": {"type": "boolean", "default": True},
                          "nothing": {"type": "any", "default": None},
                          "f": {"type": "number", "default": 0.1}})
    wf.register_backend("echo", PromptEcho)
    wf.tool("t", "extract", text=TEXT, pattern=".*")
    wf.llm("l", prompt=TEXT, max_tokens=200)
    wf.map("m", over=[{"k": 1}, {"k": None}], step={"kind": "llm", "prompt": "item=${item}"})
    wf.output(t="${steps.t.output}", l="${steps.l.output}", o=TEXT, m="${steps.m.output}")
    result = wf.run_sync()
    assert result.status == "succeeded", result.error
    assert result.output["o"] == ('obj={"a": [1, "two", {"b": null}], "ok": true} '
                                  "flag=true none=null f=0.1")
    assert result.output["l"] == result.output["o"]
    assert result.output["t"] == result.output["o"].rsplit(" f=", 1)[0] + " f=0.1"
    assert result.output["m"] == ['item={"k": 1}', 'item={"k": null}']
