"""The ``pool`` backend watching a member whose backend counts its tokens from a worker
thread (``local``: llama.cpp's logits processor runs in the thread that decodes): the
count is progress all the same, and counting does not fail the decode."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from executors.engines import PoolBackend
from orchestrator.runtime.contracts import LLMChunk, LLMRequest, LLMResponse, Usage
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio
Ask = Callable[..., LLMRequest]
Config = Callable[..., ModelConfig]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # worker threads and the wall clock


class ThreadedDecoder:
    """Decodes ``tokens`` tokens, ``pace_s`` apart, in a worker thread, counting each on
    the request's usage there (as ``local``'s meter does)."""

    progress_in = "complete"

    def __init__(self, tokens: int, pace_s: float) -> None:
        self.tokens = tokens
        self.pace_s = pace_s
        self.threads: set[int] = set()

    async def complete(self, request: LLMRequest) -> LLMResponse:
        usage = request.usage

        def decode() -> None:
            self.threads.add(threading.get_ident())
            if usage is not None:
                usage.prompt_tokens += 3
            for _ in range(self.tokens):
                threading.Event().wait(self.pace_s)
                if usage is not None:
                    usage.completion_tokens += 1

        await anyio.to_thread.run_sync(decode)
        return LLMResponse(text="done", prompt_tokens=3, completion_tokens=self.tokens,
                           latency_s=self.tokens * self.pace_s)

    async def stream(self, request: LLMRequest) -> Any:
        response = await self.complete(request)
        yield LLMChunk("", final=response)

    async def aclose(self) -> None:
        pass


async def test_tokens_counted_in_a_worker_thread_are_progress(
        ask: Ask, pool_config: Config) -> None:
    made: list[ThreadedDecoder] = []

    def make(config: ModelConfig) -> ThreadedDecoder:
        made.append(ThreadedDecoder(tokens=12, pace_s=0.05))
        return made[-1]

    # an answer of 0.6 s, a token every 0.05 s: never 0.2 s without progress
    pool = PoolBackend(pool_config([{"backend": "threaded", "model": "m"}],
                                   stall_timeout_s=0.2), resolve=lambda name: make)
    assert pool.members[0].stall_s == 0.2
    usage = Usage()
    response = await pool.complete(ask("q", usage=usage))
    assert response.text == "done"
    assert threading.get_ident() not in made[0].threads  # it did count in a thread
    assert (usage.prompt_tokens, usage.completion_tokens) == (3, 12)
    stats = pool.stats()["threaded-0"]
    assert (stats.stalls, stats.failed, stats.completed) == (0, 0, 1)
    await pool.aclose()
