"""The ``pool`` backend and a member that answers nothing but busy (a proxy whose upstream
is gone answers 503 for ever): after ``busy_eject_after_s`` of busy answers with no answer
between them it is taken out, as one that fails its health check, and probed again after
``probe_after_s``; a member busy for less, or that answers, stays in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest

from executors.engines import PoolBackend
from orchestrator.errors import BackendHTTPError, BackendUnavailable
from orchestrator.runtime.contracts import LLMRequest, LLMResponse
from orchestrator.spec.models import ModelConfig
from tests.executors.engines.openai_servers import CompleteOnly, FullServer, member, serving

pytestmark = pytest.mark.anyio
Ask = Callable[..., LLMRequest]
Config = Callable[..., ModelConfig]


class Engine(CompleteOnly):
    """A member that answers busy (HTTP 503, ``retry_after``) while ``busy`` says so,
    else "ok" after a round trip."""

    def __init__(self, config: ModelConfig) -> None:
        self.busy = config.options.get("busy", True)
        self.retry_after: float | None = config.options.get("retry_after")
        self.calls = 0

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.calls += 1
        await anyio.sleep(0.01)
        if self.busy:
            raise BackendHTTPError("upstream: HTTP 503: no healthy upstream", status=503,
                                   retry_after_s=self.retry_after)
        return LLMResponse(text="ok", prompt_tokens=1, completion_tokens=1, latency_s=0.01)


def make_pool(pool_config: Config, members: list[dict[str, Any]], **options: Any
              ) -> tuple[PoolBackend, dict[str, Engine]]:
    made: dict[str, Engine] = {}

    def make(config: ModelConfig) -> Engine:
        engine = Engine(config)
        made[str(config.options.get("name"))] = engine
        return engine

    members = [{"backend": "fake", "model": "m", "name": m["name"],
                "options": {**m.get("options", {}), "name": m["name"]}} for m in members]
    pool = PoolBackend(pool_config(members, routing="least_loaded", **options),
                       resolve=lambda name: make)
    return pool, made


async def test_a_member_busy_for_ever_is_taken_out_and_probed_again(
        ask: Ask, pool_config: Config) -> None:
    pool, made = make_pool(pool_config, [{"name": "proxy"}], busy_eject_after_s=10,
                           busy_wait_s=100, busy_backoff_s=1, busy_backoff_max_s=4,
                           probe_after_s=30)
    started = anyio.current_time()
    with pytest.raises(BackendUnavailable, match="no engine can take the call") as info:
        await pool.complete(ask("q"))
    # failed once the member was out (about 10 s), not after busy_wait_s (100 s)
    assert 10 <= anyio.current_time() - started < 20
    assert "proxy (down: answered only busy for" in str(info.value)
    assert "busy_eject_after_s 10" in str(info.value)
    assert "no healthy upstream" in str(info.value)
    proxy = pool.members[0]
    assert proxy.down_since is not None
    stats = pool.stats()["proxy"]
    assert (stats.ejections, stats.failed) == (1, 0) and stats.busy >= 3
    # probed again after probe_after_s: still busy, so out again at once
    await anyio.sleep(31)
    calls = made["proxy"].calls
    with pytest.raises(BackendUnavailable, match="answered only busy"):
        await pool.complete(ask("q"))
    assert made["proxy"].calls == calls + 1
    assert pool.stats()["proxy"].ejections == 2
    # until it answers again
    made["proxy"].busy = False
    await anyio.sleep(31)
    assert (await pool.complete(ask("q"))).text == "ok"
    assert proxy.down_since is None and proxy.busy_since is None
    await pool.aclose()


async def test_the_calls_go_to_the_other_members_once_it_is_out(
        ask: Ask, pool_config: Config) -> None:
    pool, made = make_pool(pool_config, [{"name": "proxy"},
                                         {"name": "good", "options": {"busy": False}}],
                           busy_eject_after_s=10, busy_backoff_s=1, busy_backoff_max_s=2)
    for _ in range(40):  # one call every second
        assert (await pool.complete(ask("q"))).text == "ok"
        await anyio.sleep(1)
    assert pool.members[0].down_since is not None
    asked = made["proxy"].calls
    assert asked >= 3
    for _ in range(10):
        await pool.complete(ask("q"))
    assert made["proxy"].calls == asked  # not asked while it is out
    await pool.aclose()


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_member_busy_for_less_stays_in(
        ask: Ask, pool_config: Config, streamed: bool) -> None:
    pool, made = make_pool(pool_config, [{"name": "full", "options": {"retry_after": 2}}],
                           busy_eject_after_s=10)

    async def answered() -> None:
        await anyio.sleep(7)  # three or four busy answers, 2 s apart
        made["full"].busy = False

    async with anyio.create_task_group() as tg:
        tg.start_soon(answered)
        if streamed:
            chunks = [c async for c in pool.stream(ask("q"))]
            assert chunks[-1].final is not None
        else:
            await pool.complete(ask("q"))
    assert pool.members[0].down_since is None and pool.members[0].busy_since is None
    assert pool.stats()["full"].ejections == 0 and pool.stats()["full"].busy >= 3
    await pool.aclose()


async def test_two_busy_answers_far_apart_do_not_take_it_out(
        ask: Ask, pool_config: Config) -> None:
    pool, _ = make_pool(pool_config, [{"name": "full", "options": {"retry_after": 1}}],
                        busy_eject_after_s=10, busy_wait_s=0.5)
    for _ in range(2):  # one busy answer each, an hour apart: the call may not wait
        with pytest.raises(BackendUnavailable, match="every engine is busy"):
            await pool.complete(ask("q"))
        await anyio.sleep(3600)
    assert pool.members[0].down_since is None
    await pool.aclose()


async def test_null_keeps_a_busy_member_in_for_ever(ask: Ask, pool_config: Config) -> None:
    pool, _ = make_pool(pool_config, [{"name": "proxy"}], busy_eject_after_s=None,
                        busy_wait_s=1000, busy_backoff_max_s=5)
    with pytest.raises(BackendUnavailable, match="every engine is busy"):
        await pool.complete(ask("q"))
    assert pool.members[0].down_since is None
    await pool.aclose()


class TestARealProxy:
    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"  # real sockets: the wall clock, not the virtual one

    @pytest.fixture
    def servers(self) -> Iterator[Callable[..., FullServer]]:
        yield from serving(FullServer)

    async def test_a_server_that_answers_503_for_ever_is_taken_out(
            self, ask: Ask, pool_config: Config, servers: Callable[..., FullServer]) -> None:
        srv = servers(retry_after="0.2")
        pool = PoolBackend(pool_config([member(srv, "proxy")], busy_eject_after_s=1,
                                       busy_wait_s=60))
        started = anyio.current_time()
        with anyio.fail_after(20), pytest.raises(BackendUnavailable) as info:
            await pool.complete(ask("q"))
        assert anyio.current_time() - started < 10
        assert "answered only busy" in str(info.value) and "the queue is full" in str(info.value)
        assert pool.members[0].down_since is not None
        assert not await pool.health()
        await pool.aclose()


class Scripted(CompleteOnly):
    """A member that gives the answers of ``script`` in turn: ``busy`` (HTTP 503),
    ``fail`` (HTTP 500) or ``ok``."""

    def __init__(self, script: list[str]) -> None:
        self.script = script

    async def complete(self, request: LLMRequest) -> LLMResponse:
        await anyio.sleep(0.01)
        answer = self.script.pop(0)
        if answer == "busy":
            raise BackendHTTPError("HTTP 503: the queue is full", status=503)
        if answer == "fail":
            raise BackendHTTPError("HTTP 500: internal error", status=500)
        return LLMResponse(text="ok", prompt_tokens=1, completion_tokens=1, latency_s=0.01)


async def test_a_failure_between_busy_answers_ends_the_busy_streak(
        ask: Ask, pool_config: Config) -> None:
    # busy, 500, busy, busy: the member did not answer *only* busy for busy_eject_after_s
    # (the 500 is an answer), so it stays in; its failures are eject_after's to count
    engine = Scripted(["busy", "fail", "busy", "busy"])
    pool = PoolBackend(pool_config([{"backend": "fake", "model": "m", "name": "flaky"}],
                                   busy_eject_after_s=10, busy_wait_s=0.5, busy_backoff_s=1,
                                   busy_backoff_max_s=1, eject_after=100),
                       resolve=lambda name: lambda config: engine)
    for pause in (6, 6, 2, 0):  # answers at 0 s, 6 s, 12 s and 14 s
        with pytest.raises(BackendUnavailable):
            await pool.complete(ask("q"))
        await anyio.sleep(pause)
    flaky = pool.members[0]
    assert engine.script == []
    assert flaky.down_since is None and pool.stats()["flaky"].ejections == 0
    assert (flaky.busy_streak, pool.stats()["flaky"].failed) == (2, 1)
    await pool.aclose()
