"""The ``pool`` backend and members that are full (HTTP 429/503, a vLLM server's full
queue): backpressure, not a failure. The member stays in, the call waits out its
``Retry-After`` (or a back-off) and is retried, there or elsewhere; a crash (connection
refused, HTTP 500) still takes the member out."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import pytest

from executors.engines import PoolBackend, SimEngineBackend
from orchestrator.errors import BackendHTTPError, BackendUnavailable
from orchestrator.runtime.contracts import LLMRequest, LLMResponse
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio
Ask = Callable[..., LLMRequest]
Config = Callable[..., ModelConfig]


class ChatServer(ThreadingHTTPServer):
    """An OpenAI-compatible server on 127.0.0.1: each POST takes the next status of
    ``script`` (200 when it is empty): 200 answers, 503/429 say the queue is full (with
    ``retry_after`` as the header, when set), 500 is a crash."""

    daemon_threads = True

    def __init__(self, retry_after: str | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: deque[int] = deque()
        self.retry_after = retry_after
        self.seen: list[int] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: ChatServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        asked = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status = self.server.script.popleft() if self.server.script else 200
        self.server.seen.append(status)
        if status == 200 and asked.get("stream"):
            self._stream()
            return
        if status == 200:
            body: dict[str, Any] = {
                "id": "x", "object": "chat.completion", "created": 0, "model": "m",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "ok"}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
        else:
            body = {"error": {"message": "the queue is full" if status != 500 else "boom"}}
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if status != 200 and self.server.retry_after is not None:
            self.send_header("Retry-After", self.server.retry_after)
        self.end_headers()
        self.wfile.write(payload)

    def _stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for content, finish in (("o", None), ("k", "stop")):
            event = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
                     "choices": [{"index": 0, "delta": {"content": content},
                                  "finish_reason": finish}]}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.close_connection = True


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # real sockets: the wall clock, not the engine tests' virtual one


@pytest.fixture
def servers() -> Iterator[Callable[..., ChatServer]]:
    started: list[ChatServer] = []

    def start(retry_after: str | None = None) -> ChatServer:
        srv = ChatServer(retry_after)
        threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.shutdown()
        srv.server_close()


def member(srv: ChatServer, name: str) -> dict[str, Any]:
    return {"backend": "openai", "model": "m", "base_url": srv.url, "name": name}


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
