"""The ``pool`` backend and an engine that dies in the middle of a call: the call moves to
another engine, and the tokens the dead attempt spent count once in what the call cost
(its response), as they do on the caller's usage counter; they were lost from the step's
usage before, which took only the answering engine's tokens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from executors.engines import PoolBackend
from executors.llm.executor import UsageMeter, metered_call
from orchestrator.errors import BackendUnavailable
from orchestrator.runtime.contracts import LLMChunk, LLMRequest, LLMResponse, Usage
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio
Ask = Callable[..., LLMRequest]
Config = Callable[..., ModelConfig]


class Engine:
    """Counts a 5-token prompt and ``tokens`` decoded tokens on the request's counter as it
    makes them, then dies (``dies``: ``BackendUnavailable``) or answers."""

    progress_in = "complete"

    def __init__(self, config: ModelConfig) -> None:
        self.dies = bool(config.options.get("dies"))
        self.tokens = int(config.options.get("tokens", 2))

    async def _run(self, request: LLMRequest) -> Any:
        usage = request.usage if request.usage is not None else Usage()
        usage.prompt_tokens += 5
        for _ in range(self.tokens):
            await anyio.sleep(0.1)
            usage.completion_tokens += 1
            yield LLMChunk("t")
        if self.dies:
            raise BackendUnavailable("engine: the engine died")
        yield LLMChunk("", final=LLMResponse(text="t" * self.tokens, prompt_tokens=5,
                                             completion_tokens=self.tokens, latency_s=0.1))

    async def complete(self, request: LLMRequest) -> LLMResponse:
        async for chunk in self._run(request):
            if chunk.final is not None:
                return chunk.final
        raise AssertionError("unreachable")

    def stream(self, request: LLMRequest) -> Any:
        return self._run(request)

    async def aclose(self) -> None:
        pass


def make_pool(pool_config: Config, dies_after: int, **options: Any) -> PoolBackend:
    members = [{"backend": "fake", "model": "m", "name": "dying",
                "options": {"dies": True, "tokens": dies_after}},
               {"backend": "fake", "model": "m", "name": "good", "options": {"tokens": 2}}]
    return PoolBackend(pool_config(members, routing="least_loaded", **options),
                       resolve=lambda name: Engine)


@pytest.mark.parametrize("stall_timeout_s", [300, None])
async def test_a_call_moved_off_a_dying_engine_counts_its_tokens_once(
        ask: Ask, pool_config: Config, stall_timeout_s: float | None) -> None:
    pool = make_pool(pool_config, dies_after=3, stall_timeout_s=stall_timeout_s)
    counted = Usage()
    response = await pool.complete(ask("q", usage=counted))
    assert response.text == "tt" and response.meta["engine"] == "good"
    assert response.meta["attempts"] == 2
    # 5 + 3 on the dead engine, 5 + 2 on the good one: each once
    assert (counted.prompt_tokens, counted.completion_tokens) == (10, 5)
    assert (response.prompt_tokens, response.completion_tokens) == (10, 5)
    assert response.meta["failed_attempts_tokens"] == {"prompt_tokens": 5,
                                                       "completion_tokens": 3}
    assert pool.stats()["dying"].failed == 1
    await pool.aclose()


async def test_a_stream_moved_before_its_first_chunk_counts_the_dead_prompt(
        ask: Ask, pool_config: Config) -> None:
    pool = make_pool(pool_config, dies_after=0)  # the prompt, then death: no chunk
    meter = UsageMeter(0)
    response = await metered_call(pool, ask("q"), "step", meter, streamed=True)
    assert response.meta["engine"] == "good"
    assert (response.prompt_tokens, response.completion_tokens) == (10, 2)
    assert (meter.counted.prompt_tokens, meter.counted.completion_tokens) == (10, 2)
    await pool.aclose()


async def test_a_call_that_moved_without_spending_reports_the_answer_alone(
        ask: Ask, pool_config: Config) -> None:
    pool = make_pool(pool_config, dies_after=0)
    response = await pool.complete(ask("q"))  # the caller counts nothing
    assert (response.prompt_tokens, response.completion_tokens) == (10, 2)
    clean = make_pool(pool_config, dies_after=0)
    clean.members[0].down_since = anyio.current_time()  # the dying one is out
    response = await clean.complete(ask("q", usage=Usage()))
    assert (response.prompt_tokens, response.completion_tokens) == (5, 2)
    assert "failed_attempts_tokens" not in response.meta
    await pool.aclose()
    await clean.aclose()
