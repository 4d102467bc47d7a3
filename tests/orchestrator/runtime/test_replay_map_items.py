"""An exact replay (no `from_step`) serves every step from the trace. The items of a map
whose body is a kind no declared step has (a map of tool steps in a workflow without a
tool step of its own, a map of LLM calls beside no LLM step) ran again for real: their
tools ran, with their side effects, and their models were called."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.runtime.contracts import LLMRequest, LLMResponse
from orchestrator.runtime.durable import replay
from orchestrator.store import MemoryStore, StoreHook
from tests.fakes import Echo

pytestmark = pytest.mark.anyio

MAPS = """\
name: maps
models:
  default: {backend: counted}
steps:
  - {id: each, kind: map, over: [p, q], step: {kind: tool, tool: note, args: {x: "${item}"}}}
  - {id: said, kind: map, over: [1, 2, 3], step: {kind: llm, prompt: "say {{ item }}"}}
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_an_exact_replay_runs_no_map_item(anyio_backend: str) -> None:
    calls: list[str] = []

    def note(x: str) -> str:
        calls.append(f"tool {x}")
        return f"noted {x}"

    class Counted(Echo):
        async def complete(self, request: LLMRequest) -> LLMResponse:
            calls.append(f"model {request.messages[-1]['content']}")
            return await super().complete(request)

    def workflow() -> Workflow:
        wf = Workflow.from_yaml_text(MAPS)
        wf.register_tool(note)
        wf.register_backend("counted", Counted)
        return wf

    store = MemoryStore()
    ran = await workflow().run(hooks=[StoreHook(store)])
    assert ran.ok, ran.error
    assert sorted(calls) == ["model say 1", "model say 2", "model say 3", "tool p", "tool q"]
    calls.clear()

    # as `ponder replay` does it: in a process that has run no step yet
    again = await replay(await store.events(ran.run_id), registry=workflow().registry,
                         hooks=[StoreHook(store)])
    assert again.ok, again.error
    assert calls == []
    assert again.output == ran.output
    events: list[Any] = await store.events(again.run_id)
    items = {e.step_id for e in events if e.kind == "step_succeeded" and "[" in e.step_id}
    assert items == {"each[0]", "each[1]", "said[0]", "said[1]", "said[2]"}
