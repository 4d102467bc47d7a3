"""The ``pool`` backend and an ``openai`` member serving a reasoning model: its thinking
streams in the deltas' ``reasoning_content`` (vLLM's reasoning parser; ``reasoning`` in
newer servers), not in their content. Those tokens are progress too: a call that thinks
for longer than ``stall_timeout_s`` before its first word is not a hung engine."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest

from executors.engines import PoolBackend
from executors.llm import OpenAIBackend
from orchestrator.runtime.contracts import LLMRequest, Usage
from orchestrator.spec.models import ModelConfig
from tests.executors.engines.openai_servers import JSONHandler, LocalServer, member, serving

pytestmark = pytest.mark.anyio
Ask = Callable[..., LLMRequest]
Config = Callable[..., ModelConfig]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # real sockets: the wall clock, not the engine tests' virtual one


class ThinkingServer(LocalServer):
    """Streams ``thinking`` chunks of thought in ``field``, ``gap_s`` apart, then the
    answer ``ok`` (a stream only: an answer that is not streamed is not served)."""

    def __init__(self, field: str, thinking: int = 25, gap_s: float = 0.1) -> None:
        super().__init__(_Handler)
        self.field = field
        self.thinking = thinking
        self.gap_s = gap_s


def _event(delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


class _Handler(JSONHandler):
    server: ThinkingServer

    def do_POST(self) -> None:
        assert self.asked().get("stream")
        srv = self.server
        self.start_events()
        try:
            self.wfile.write(_event({"role": "assistant", "content": ""}))
            for _ in range(srv.thinking):
                time.sleep(srv.gap_s)
                self.wfile.write(_event({srv.field: "hm"}))
                self.wfile.flush()
            self.wfile.write(_event({"content": "ok"}, "stop"))
            self.wfile.write(b"data: [DONE]\n\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True


@pytest.fixture
def servers() -> Iterator[Callable[..., ThinkingServer]]:
    yield from serving(ThinkingServer)


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_a_long_thought_before_the_answer_is_not_a_stall(
        ask: Ask, pool_config: Config, servers: Callable[..., ThinkingServer],
        field: str) -> None:
    # 25 chunks of thought a tenth of a second apart: 2.5 s, over twice the limit of 1 s
    a, b = servers(field=field), servers(field=field)
    pool = PoolBackend(pool_config([member(a, "a"), member(b, "b")], stall_timeout_s=1,
                                   routing="least_loaded"))
    with anyio.fail_after(20):
        response = await pool.complete(ask("think first"))
    assert response.text == "ok"
    assert response.meta["attempts"] == 1
    assert all(s.stalls == 0 and s.failed == 0 for s in pool.stats().values())
    await pool.aclose()


async def test_the_thought_counts_on_the_callers_usage_as_it_comes(
        servers: Callable[..., ThinkingServer]) -> None:
    srv = servers(field="reasoning_content", thinking=5, gap_s=0.01)
    backend = OpenAIBackend(ModelConfig(backend="openai", model="m", base_url=srv.url))
    usage = Usage()
    seen: list[int] = []
    request = LLMRequest(messages=[{"role": "user", "content": "think first"}], usage=usage)
    async for chunk in backend.stream(request):
        seen.append(usage.completion_tokens)
        if chunk.final is not None:
            # the server sent no usage: five chunks of thought and one of the answer
            assert chunk.final.completion_tokens == 6
    await backend.aclose()
    assert seen[0] == 6  # counted before the answer's first word
    assert usage.completion_tokens == 6
