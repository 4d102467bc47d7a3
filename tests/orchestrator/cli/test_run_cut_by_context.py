"""A step whose answer the model's context window cut (the local backend's n_ctx: the
prompt and answer filled it before max_tokens) was reported as "stopped at max_tokens";
`ponder run` names the context window now, and a replay keeps what said so."""

from __future__ import annotations

import pytest

from orchestrator import Workflow
from orchestrator.cli.commands import _report
from orchestrator.runtime.contracts import LLMRequest, LLMResponse
from orchestrator.runtime.durable import replay
from orchestrator.store import MemoryStore, StoreHook
from tests.fakes import Echo

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class CutByContext(Echo):
    async def complete(self, request: LLMRequest) -> LLMResponse:
        return LLMResponse(text="half an ans", prompt_tokens=250, completion_tokens=6,
                           finish_reason="length", meta={"stopped_at": "n_ctx", "n_ctx": 256})


class CutByMaxTokens(Echo):
    async def complete(self, request: LLMRequest) -> LLMResponse:
        return LLMResponse(text="half an ans", prompt_tokens=5, completion_tokens=6,
                           finish_reason="length")


@pytest.mark.parametrize(("backend", "line"), [
    (CutByContext, "  a: stopped at the model's context window (n_ctx 256): its answer may "
                   "be cut off; shorten the prompt or raise n_ctx"),
    (CutByMaxTokens, "  a: stopped at max_tokens (6): its answer may be cut off"),
])
async def test_the_cut_is_named(capsys: pytest.CaptureFixture[str], backend: type,
                                line: str) -> None:
    wf = Workflow("cut", models={"default": {"backend": "cut"}})
    wf.register_backend("cut", backend)
    wf.llm("a", prompt="say it", max_tokens=6)
    store = MemoryStore()
    result = await wf.run(hooks=[StoreHook(store)])
    again = await replay(await store.events(result.run_id), registry=wf.registry)
    for run in (result, again):
        _report(run, False, False)
        err = capsys.readouterr().err.splitlines()
        assert err[1:] == [line], err
