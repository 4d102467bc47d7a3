"""A pool member that is an OpenAI-compatible server which does not stream (it ignores
``stream: true`` and sends the whole answer as one JSON body at its end) is not taken for a
hung engine however long its answer takes: a call of a member seen through its stream is
watched from its first progress, or from its start once the member has streamed an
answer. A streaming member that stops mid-stream is still stalled."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import anyio
import pytest

from executors.engines import PoolBackend
from orchestrator.runtime.contracts import LLMRequest, Usage
from orchestrator.spec.models import ModelConfig
from tests.executors.engines.openai_servers import (
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


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # real sockets: the wall clock, not the virtual one


class Server(LocalServer):
    """Answers ``tokens`` tokens after ``delay_s``: as one JSON body whatever the request
    asks (``mode`` ``"whole"``), or streamed one token per event (``"stream"``), sending
    nothing more after ``hang_after`` of them when that is set, until the client goes
    (``"cut"``: closing the connection then, without a finish reason)."""

    def __init__(self, mode: str = "whole", delay_s: float = 0.0, tokens: int = 4) -> None:
        super().__init__(_Handler)
        self.mode = mode
        self.delay_s = delay_s
        self.tokens = tokens
        self.hang_after: int | None = None
        self.asked_stream: list[bool] = []


class _Handler(JSONHandler):
    server: Server

    def do_POST(self) -> None:
        srv = self.server
        srv.asked_stream.append(bool(self.asked().get("stream")))
        try:
            if srv.mode == "whole":
                time.sleep(srv.delay_s)
                self.send_json(200, answer("t" * srv.tokens, srv.tokens))
            else:
                self._stream()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def _stream(self) -> None:
        srv = self.server
        self.start_events()
        time.sleep(srv.delay_s)
        for i in range(srv.tokens):
            if srv.hang_after == i:
                if srv.mode == "cut":
                    return
                self.hold_until_client_closes()
            self.wfile.write(chunk("t", "stop" if i == srv.tokens - 1 else None))
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")



@pytest.fixture
def servers() -> Iterator[Callable[..., Server]]:
    yield from serving(Server)


async def test_a_long_answer_that_is_not_streamed_is_not_a_stall(
        ask: Ask, pool_config: Config, servers: Callable[..., Server]) -> None:
    # the answer takes 1.5 s, three times the limit, and shows nothing before its end
    whole = servers(mode="whole", delay_s=1.5)
    pool = PoolBackend(pool_config([member(whole, "whole")], stall_timeout_s=0.5))
    usage = Usage()
    with anyio.fail_after(20):
        first = await pool.complete(ask("a long answer", usage=usage))
        chunks = [c async for c in pool.stream(ask("another"))]
    assert first.text == "tttt" and first.meta["attempts"] == 1
    assert first.completion_tokens == 4 and usage.completion_tokens == 4
    assert chunks[-1].final is not None and chunks[-1].final.text == "tttt"
    assert "".join(c.text for c in chunks) == "tttt"
    stats = pool.stats()["whole"]
    assert (stats.stalls, stats.failed, stats.ejections, stats.completed) == (0, 0, 0, 2)
    assert pool.members[0].down_since is None and pool.members[0].last_error == ""
    assert whole.asked_stream == [True, True]  # asked to stream: it answered whole
    assert not pool.members[0].proven  # an answer in one body shows no time to first token
    await pool.aclose()


async def test_a_streaming_member_that_stops_mid_stream_is_still_stalled(
        ask: Ask, pool_config: Config, servers: Callable[..., Server]) -> None:
    hung, whole = servers(mode="stream"), servers(mode="whole", delay_s=1.0)
    hung.hang_after = 2  # two tokens, then nothing
    pool = PoolBackend(pool_config([member(hung, "hung"), member(whole, "whole")],
                                   stall_timeout_s=0.5, routing="least_loaded"))
    with anyio.fail_after(20):
        response = await pool.complete(ask("q"))
    assert response.meta["engine"] == "whole" and response.meta["attempts"] == 2
    assert pool.stats()["hung"].stalls == 1 and pool.members[0].down_since is not None
    assert "made no progress" in pool.members[0].last_error
    assert pool.stats()["whole"].stalls == 0
    await pool.aclose()


async def test_a_member_that_has_streamed_is_watched_from_the_start_of_a_call(
        ask: Ask, pool_config: Config, servers: Callable[..., Server]) -> None:
    srv = servers(mode="stream")
    pool = PoolBackend(pool_config([member(srv, "s")], stall_timeout_s=0.5, max_attempts=1))
    assert not pool.members[0].proven
    with anyio.fail_after(20):
        await pool.complete(ask("q"))
        assert pool.members[0].proven  # its answer came streamed
        srv.hang_after = 0  # now it hangs before its first token
        with pytest.raises(Exception, match="made no progress"):
            await pool.complete(ask("q"))
    assert pool.stats()["s"].stalls == 1
    await pool.aclose()


async def test_a_pool_with_an_openai_member_is_watched_from_the_first_progress(
        ask: Ask, pool_config: Config, servers: Callable[..., Server]) -> None:
    # an outer pool whose member is a pool of a server that does not stream
    whole = servers(mode="whole", delay_s=1.5)
    inner = {"backend": "pool", "model": "inner", "name": "inner",
             "options": {"members": [member(whole, "whole")], "shared": False}}
    pool = PoolBackend(pool_config([inner], stall_timeout_s=0.5))
    assert not pool.members[0].via_stream  # asked through its complete()
    assert pool.members[0].backend.progress_from_start is False  # type: ignore[attr-defined]
    with anyio.fail_after(20):
        response = await pool.complete(ask("a long answer"))
    assert response.text == "tttt"
    assert pool.stats()["inner"].stalls == 0 and pool.stats()["inner"].failed == 0
    await pool.aclose()


async def test_an_inner_pool_moves_a_call_whose_stream_was_cut(
        ask: Ask, pool_config: Config, servers: Callable[..., Server]) -> None:
    cut, good = servers(mode="cut"), servers(mode="stream")
    cut.hang_after = 2  # two tokens, then the connection closes without a finish reason
    inner = {"backend": "pool", "model": "inner", "name": "inner",
             "options": {"members": [member(cut, "cut"), member(good, "good")],
                         "routing": "least_loaded", "shared": False}}
    pool = PoolBackend(pool_config([inner], stall_timeout_s=5))
    with anyio.fail_after(20):
        response = await pool.complete(ask("q"))
    assert response.text == "tttt" and response.meta["pool"] == "pooled"
    inner_stats = pool.members[0].backend.stats()  # type: ignore[attr-defined]
    assert inner_stats["cut"].failed == 1 and inner_stats["good"].completed == 1
    assert pool.stats()["inner"].failed == 0 and pool.members[0].down_since is None
    await pool.aclose()
