"""The ``pool`` backend and members that are full (HTTP 429/503, a vLLM server's full
queue): backpressure, not a failure. The member stays in, the call waits out its
``Retry-After`` (or a back-off) and is retried, there or elsewhere; a crash (connection
refused, HTTP 500) still takes the member out."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator

import anyio
import pytest

from executors.engines import PoolBackend, SimEngineBackend
from orchestrator.errors import BackendHTTPError, BackendUnavailable
from orchestrator.runtime.contracts import LLMRequest, LLMResponse
from orchestrator.spec.models import ModelConfig
from tests.executors.engines.openai_servers import JSONHandler, LocalServer, answer, chunk, member, serving

pytestmark = pytest.mark.anyio
Ask = Callable[..., LLMRequest]
Config = Callable[..., ModelConfig]


class ChatServer(LocalServer):
    """An OpenAI-compatible server on 127.0.0.1: each POST takes the next status of
    ``script`` (200 when it is empty): 200 answers, 503/429 say the queue is full (with
    ``retry_after`` as the header, when set), 500 is a crash."""

    def __init__(self, retry_after: str | None = None) -> None:
        super().__init__(_Handler)
        self.script: deque[int] = deque()
        self.retry_after = retry_after
        self.seen: list[int] = []


class _Handler(JSONHandler):
    server: ChatServer

    def do_POST(self) -> None:
        asked = self.asked()
        status = self.server.script.popleft() if self.server.script else 200
        self.server.seen.append(status)
        if status == 200 and asked.get("stream"):
            self._stream()
            return
        if status == 200:
            self.send_json(200, answer("ok", 1))
            return
        body = {"error": {"message": "the queue is full" if status != 500 else "boom"}}
        retry_after = self.server.retry_after
        self.send_json(status, body, {} if retry_after is None else {"Retry-After": retry_after})

    def _stream(self) -> None:
        self.start_events()
        for content, finish in (("o", None), ("k", "stop")):
            self.wfile.write(chunk(content, finish))
        self.wfile.write(b"data: [DONE]\n\n")
        self.close_connection = True


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # real sockets: the wall clock, not the engine tests' virtual one


@pytest.fixture
def servers() -> Iterator[Callable[..., ChatServer]]:
    yield from serving(ChatServer)


async def test_a_full_server_stays_in_and_the_call_waits_for_its_retry_after(
        ask: Ask, pool_config: Config, servers: Callable[..., ChatServer]) -> None:
    srv = servers(retry_after="0.3")
    srv.script.extend([503, 503])
    pool = PoolBackend(pool_config([member(srv, "only")]))
    started = anyio.current_time()
    response = await pool.complete(ask("q"))
    waited = anyio.current_time() - started
    assert response.text == "ok"
    assert 0.55 < waited < 5  # two waits of 0.3 s
    assert srv.seen == [503, 503, 200]
    stats = pool.stats()["only"]
    assert (stats.busy, stats.failed, stats.ejections) == (2, 0, 0)
    assert pool.members[0].down_since is None and await pool.health()
    await pool.aclose()


async def test_a_full_server_sends_the_call_to_another_member_meanwhile(
        ask: Ask, pool_config: Config, servers: Callable[..., ChatServer]) -> None:
    full, free = servers(retry_after="30"), servers()
    full.script.append(503)
    pool = PoolBackend(pool_config([member(full, "full"), member(free, "free")],
                                   routing="least_loaded"))
    answers = [await pool.complete(ask(f"q{i}")) for i in range(3)]
    assert [a.text for a in answers] == ["ok"] * 3
    assert full.seen == [503]  # left alone for its Retry-After
    assert free.seen == [200, 200, 200]
    assert pool.members[0].down_since is None
    assert pool.stats()["full"].ejections == 0
    await pool.aclose()


async def test_a_streamed_call_waits_for_a_full_server_too(
        ask: Ask, pool_config: Config, servers: Callable[..., ChatServer]) -> None:
    srv = servers(retry_after="0.2")
    srv.script.append(429)
    pool = PoolBackend(pool_config([member(srv, "only")]))
    chunks = [c async for c in pool.stream(ask("q"))]
    assert chunks[-1].final is not None and chunks[-1].final.text == "ok"
    assert srv.seen == [429, 200]
    assert pool.stats()["only"].busy == 1
    await pool.aclose()


async def test_a_server_busy_for_longer_than_the_call_may_wait_fails_it_at_once(
        ask: Ask, pool_config: Config, servers: Callable[..., ChatServer]) -> None:
    srv = servers(retry_after="60")
    srv.script.append(503)
    pool = PoolBackend(pool_config([member(srv, "only")], busy_wait_s=5))
    started = anyio.current_time()
    with pytest.raises(BackendUnavailable, match=r"every engine is busy .*busy_wait_s") as info:
        await pool.complete(ask("q"))
    assert anyio.current_time() - started < 3
    assert "only (busy for" in str(info.value) and "the queue is full" in str(info.value)
    assert pool.members[0].down_since is None
    await pool.aclose()


async def test_a_crashing_server_is_still_taken_out(
        ask: Ask, pool_config: Config, servers: Callable[..., ChatServer]) -> None:
    crashed, ok = servers(), servers()
    crashed.script.append(500)
    pool = PoolBackend(pool_config([member(crashed, "crashed"), member(ok, "ok")],
                                   routing="least_loaded"))
    assert (await pool.complete(ask("q"))).text == "ok"
    assert pool.members[0].down_since is not None
    assert pool.stats()["crashed"].ejections == 1
    await pool.aclose()


async def test_an_unreachable_server_is_still_taken_out(
        ask: Ask, pool_config: Config, servers: Callable[..., ChatServer]) -> None:
    gone, ok = servers(), servers()
    url = gone.url
    gone.shutdown()
    gone.server_close()  # connections to it are refused
    pool = PoolBackend(pool_config([{**member(ok, "x"), "base_url": url, "name": "gone"},
                                    member(ok, "ok")], routing="least_loaded"))
    assert (await pool.complete(ask("q"))).text == "ok"
    assert pool.members[0].down_since is not None
    await pool.aclose()


class _Full(SimEngineBackend):
    """An engine that answers busy, without Retry-After, ``full`` times."""

    full = 3

    async def complete(self, request: LLMRequest) -> LLMResponse:
        if _Full.full > 0:
            _Full.full -= 1
            raise BackendHTTPError("engine: HTTP 503: the queue is full", status=503)
        return await super().complete(request)


def test_without_retry_after_the_back_off_doubles() -> None:
    from executors.engines import VirtualClockLoop

    async def scenario() -> tuple[float, int]:
        _Full.full = 3
        config = ModelConfig(backend="pool", model="p", options={
            "shared": False, "busy_backoff_s": 1, "busy_backoff_max_s": 3,
            "members": [{"backend": "full", "model": "llama-3-8b"}]})
        pool = PoolBackend(config, resolve=lambda name: _Full)
        started = anyio.current_time()
        await pool.complete(LLMRequest(messages=[{"role": "user", "content": "q"}],
                                       max_tokens=1))
        took = anyio.current_time() - started
        streak = pool.members[0].busy_streak
        await pool.aclose()
        return took, streak

    took, streak = anyio.run(scenario, backend="asyncio",
                             backend_options={"loop_factory": VirtualClockLoop})
    assert 6 <= took < 6.5  # waits of 1, 2 and 3 (the cap), then the answer
    assert streak == 0  # an answer ends the streak
