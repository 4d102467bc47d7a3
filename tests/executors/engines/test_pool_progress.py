"""The ``pool`` backend's stall limit applies where a member's progress shows: an ``openai``
member's answer that takes longer than ``stall_timeout_s`` but keeps coming is not taken
for a hung engine (the pool streams it to see its tokens), and a member that shows nothing
before its answer (``ray-engine``, an unknown backend) is not watched unless it says so."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest

from executors.engines import PoolBackend
from executors.engines.pool import progress_in
from orchestrator.errors import StepTimeout
from orchestrator.runtime.contracts import LLMRequest, LLMResponse, Usage
from orchestrator.spec.models import ModelConfig
from tests.executors.engines.openai_servers import (
    CompleteOnly,
    JSONHandler,
    LocalServer,
    answer,
    chunk,
    member,
    serving,
)

pytestmark = pytest.mark.anyio
Ask = Callable[..., LLMRequest]
Config = Callable[..., ModelConfig]


# -- a slow but steady OpenAI-compatible server ----------------------------------------

class SlowServer(LocalServer):
    """An OpenAI-compatible server on 127.0.0.1 that writes ``tokens`` tokens, one every
    ``gap_s``: a stream sends each as it is made; an answer that is not streamed comes
    when the last one is made. ``hang`` sends nothing (after ``hang_after`` tokens of a
    stream) until the client goes away."""

    def __init__(self, tokens: int = 12, gap_s: float = 0.1) -> None:
        super().__init__(_SlowHandler)
        self.tokens = tokens
        self.gap_s = gap_s
        self.hang = False
        self.hang_after = 0
        self.streamed: list[bool] = []
        self.gone = threading.Event()  # a client closed its connection mid-answer


class _SlowHandler(JSONHandler):
    server: SlowServer

    def do_POST(self) -> None:
        asked = self.asked()
        srv = self.server
        srv.streamed.append(bool(asked.get("stream")))
        try:
            if asked.get("stream"):
                self._stream()
            else:
                self._answer()
        except (BrokenPipeError, ConnectionResetError):
            srv.gone.set()
        self.close_connection = True

    def _answer(self) -> None:
        srv = self.server
        if srv.hang:
            self.hold_until_client_closes()
        time.sleep(srv.tokens * srv.gap_s)
        self.send_json(200, answer("t" * srv.tokens, srv.tokens))

    def _stream(self) -> None:
        srv = self.server
        self.start_events()
        for i in range(srv.tokens):
            if srv.hang and i == srv.hang_after:
                self.hold_until_client_closes()
            time.sleep(srv.gap_s)
            self.wfile.write(chunk("t", "stop" if i == srv.tokens - 1 else None))
            self.wfile.flush()
        usage = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
                 "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": srv.tokens,
                                          "total_tokens": 3 + srv.tokens}}
        self.wfile.write(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())


@pytest.fixture
def servers() -> Iterator[Callable[..., SlowServer]]:
    yield from serving(SlowServer)


class TestOpenAIMembers:
    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"  # real sockets: the wall clock, not the virtual one

    async def test_a_long_answer_that_keeps_coming_is_not_a_stall(
            self, ask: Ask, pool_config: Config, servers: Callable[..., SlowServer]) -> None:
        # 25 tokens a tenth of a second apart: 2.5 s, over twice the limit of 1 s
        a, b = servers(tokens=25), servers(tokens=25)
        pool = PoolBackend(pool_config([member(a, "a"), member(b, "b")],
                                       stall_timeout_s=1, routing="least_loaded"))
        usage = Usage()
        with anyio.fail_after(20):
            response = await pool.complete(ask("a long answer", usage=usage))
        assert response.text == "t" * 25
        assert response.completion_tokens == 25 and usage.completion_tokens == 25
        assert response.meta["attempts"] == 1
        assert all(s.stalls == 0 and s.failed == 0 for s in pool.stats().values())
        assert pool.retries == 0
        assert a.streamed + b.streamed == [True]  # streamed, so its tokens are seen
        await pool.aclose()

    async def test_samples_come_through_the_stream_too(
            self, ask: Ask, pool_config: Config, servers: Callable[..., SlowServer]) -> None:
        srv = servers(tokens=3, gap_s=0.01)
        pool = PoolBackend(pool_config([member(srv, "only")], stall_timeout_s=5))
        response = await pool.complete(ask("three", n=2))
        assert response.texts[0] == "ttt"
        await pool.aclose()

    async def test_a_member_not_watched_is_asked_without_a_stream(
            self, ask: Ask, pool_config: Config, servers: Callable[..., SlowServer]) -> None:
        srv = servers(tokens=3, gap_s=0.01)
        pool = PoolBackend(pool_config([member(srv, "only", stall_timeout_s=None)]))
        response = await pool.complete(ask("q"))
        assert response.text == "ttt"
        assert srv.streamed == [False]
        await pool.aclose()

    async def test_a_hung_server_is_still_stalled_and_its_stream_closed(
            self, ask: Ask, pool_config: Config, servers: Callable[..., SlowServer]) -> None:
        hung, good = servers(tokens=3, gap_s=0.01), servers(tokens=3, gap_s=0.01)
        hung.hang, hung.hang_after = True, 1  # one token, then nothing
        pool = PoolBackend(pool_config([member(hung, "hung"), member(good, "good")],
                                       stall_timeout_s=0.5, routing="least_loaded"))
        with anyio.fail_after(20):
            response = await pool.complete(ask("q"))
        assert response.text == "ttt"
        assert response.meta["engine"] == "good"
        assert pool.stats()["hung"].stalls == 1
        assert "made no progress" in pool.members[0].last_error
        # closing the stream told the server to stop
        assert await anyio.to_thread.run_sync(hung.gone.wait, 5)
        await pool.aclose()


# -- members whose progress does not show --------------------------------------------

class Silent(CompleteOnly):
    """A backend that answers after ``answer_s`` and shows nothing before (as a
    ``ray-engine`` does); ``progress_in`` when given says where its progress shows."""

    def __init__(self, answer_s: float, progress: str | None = None) -> None:
        self.answer_s = answer_s
        if progress is not None:
            self.progress_in = progress
        self.calls = 0

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.calls += 1
        await anyio.sleep(self.answer_s)
        return LLMResponse(text="done", prompt_tokens=1, completion_tokens=1,
                           latency_s=self.answer_s)


def silent_pool(pool_config: Config, members: list[dict[str, Any]], answer_s: float,
                **options: Any) -> tuple[PoolBackend, list[Silent]]:
    made: list[Silent] = []

    def make(config: ModelConfig) -> Silent:
        made.append(Silent(answer_s, config.options.get("progress")))
        return made[-1]

    pool = PoolBackend(pool_config(members, routing="least_loaded", **options),
                       resolve=lambda name: make)
    return pool, made


@pytest.mark.parametrize("backend", ["ray-engine", "someone-elses"])
async def test_a_member_without_progress_is_not_stalled_by_default(
        ask: Ask, pool_config: Config, backend: str) -> None:
    # 400 s for the answer, longer than the default stall_timeout_s of 300
    members = [{"backend": backend, "model": "m", "name": n} for n in ("x", "y")]
    pool, made = silent_pool(pool_config, members, answer_s=400)
    assert [m.stall_s for m in pool.members] == [None, None]
    started = anyio.current_time()
    response = await pool.complete(ask("a long answer"))
    assert response.text == "done"
    assert anyio.current_time() - started >= 400
    assert response.meta["attempts"] == 1
    assert all(s.stalls == 0 and s.failed == 0 for s in pool.stats().values())
    assert sum(s.calls for s in made) == 1
    await pool.aclose()


async def test_a_member_without_progress_is_watched_with_its_own_stall_timeout(
        ask: Ask, pool_config: Config) -> None:
    members: list[dict[str, Any]] = [
        {"backend": "ray-engine", "model": "m", "name": "x", "stall_timeout_s": 100},
        {"backend": "ray-engine", "model": "m", "name": "y"}]
    pool, _ = silent_pool(pool_config, members, answer_s=400, stall_timeout_s=50)
    assert [m.stall_s for m in pool.members] == [100, None]
    response = await pool.complete(ask("a long answer"))
    assert response.meta["engine"] == "y"
    assert pool.stats()["x"].stalls == 1
    await pool.aclose()


async def test_a_backend_may_say_where_its_progress_shows(
        ask: Ask, pool_config: Config) -> None:
    members = [{"backend": "someone-elses", "model": "m", "name": "x",
                "options": {"progress": "complete"}},
               {"backend": "ray-engine", "model": "m", "name": "y",
                "options": {"progress": "stream"}}]
    pool, made = silent_pool(pool_config, members, answer_s=1, stall_timeout_s=30)
    assert [(m.stall_s, m.via_stream) for m in pool.members] == [(30, False), (30, True)]
    assert progress_in("someone-elses", made[0]) == "complete"
    assert progress_in("openai", object()) == "stream"
    assert progress_in("vllm", object()) == "complete"
    assert progress_in("someone-elses", object()) == "none"
    await pool.aclose()


async def test_a_pool_as_a_member_shows_progress_only_when_all_its_members_do(
        pool_config: Config) -> None:
    sim = {"backend": "sim-engine", "model": "llama-3-8b"}
    watched = PoolBackend(pool_config([sim]))
    assert watched.progress_in == "complete"
    blind, _ = silent_pool(pool_config, [{"backend": "ray-engine", "model": "m"}], answer_s=1)
    assert blind.progress_in == "none"
    await watched.aclose()
    await blind.aclose()


async def test_an_unwatched_stream_is_not_stalled_either(
        ask: Ask, pool_config: Config) -> None:
    pool, _ = silent_pool(pool_config, [{"backend": "ray-engine", "model": "m"}],
                          answer_s=400)
    chunks = [c async for c in pool.stream(ask("a long answer"))]
    assert chunks[-1].final is not None
    await pool.aclose()


async def test_a_watched_silent_member_still_stalls(ask: Ask, pool_config: Config) -> None:
    members = [{"backend": "ray-engine", "model": "m", "stall_timeout_s": 5}]
    pool, _ = silent_pool(pool_config, members, answer_s=400, max_attempts=1)
    with pytest.raises(Exception) as info:
        await pool.complete(ask("q"))
    assert "made no progress" in str(info.value)
    assert isinstance(info.value.__cause__, StepTimeout)
    await pool.aclose()
