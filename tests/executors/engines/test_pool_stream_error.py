"""A vLLM server whose engine fails after its answer began sends an error event in the
stream (``{"error": {..., "code": 500}}``): a pool moves the call to another member,
counts the failure, and the tokens the failed attempt received count in the answer."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from executors.engines import PoolBackend
from orchestrator.runtime.contracts import LLMRequest, Usage
from orchestrator.spec.models import ModelConfig
from tests.executors.engines.openai_servers import JSONHandler, LocalServer, chunk, member, serving

pytestmark = pytest.mark.anyio
Ask = Callable[..., LLMRequest]
Config = Callable[..., ModelConfig]


class StreamServer(LocalServer):
    """Streams "he", then, with ``dies``, an error event of status 500; else "llo" and
    the end."""

    def __init__(self, dies: bool = False) -> None:
        super().__init__(_Handler)
        self.dies = dies


class _Handler(JSONHandler):
    server: StreamServer

    def do_POST(self) -> None:
        self.asked()
        self.start_events()
        self.wfile.write(chunk("he", None))
        if self.server.dies:
            error = {"error": {"message": "EngineCore encountered an issue",
                               "type": "InternalServerError", "code": 500}}
            self.wfile.write(f"data: {json.dumps(error)}\n\n".encode())
        else:
            self.wfile.write(chunk("llo", "stop"))
            self.wfile.write(b"data: [DONE]\n\n")
        self.close_connection = True


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # real sockets: the wall clock, not the engine tests' virtual one


@pytest.fixture
def servers() -> Iterator[Callable[..., StreamServer]]:
    yield from serving(StreamServer)


async def test_an_error_event_mid_stream_moves_the_call_and_its_tokens_count(
        servers: Callable[..., StreamServer], ask: Ask, pool_config: Config) -> None:
    dying, healthy = servers(dies=True), servers()
    pool = PoolBackend(pool_config([member(dying, "dying"), member(healthy, "healthy")],
                                   routing="least_loaded"))
    counted = Usage()
    response = await pool.complete(ask("q", usage=counted))
    assert response.text == "hello"
    assert response.meta["engine"] == "healthy" and response.meta["attempts"] == 2
    stats = pool.stats()
    assert (stats["dying"].failed, stats["healthy"].completed) == (1, 1)
    assert "HTTP 500" in pool.members[0].last_error
    # the dying attempt's one chunk (and its prompt's estimate) is part of the call's cost
    spent = response.meta["failed_attempts_tokens"]
    assert spent["completion_tokens"] == 1 and spent["prompt_tokens"] > 0
    assert counted.completion_tokens == response.completion_tokens
    await pool.aclose()
