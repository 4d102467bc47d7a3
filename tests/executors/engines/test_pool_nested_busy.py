"""A ``pool`` member that is itself a pool, all of whose engines are busy: the outer pool
sees it busy (:class:`PoolBusy`, with the soonest ``Retry-After`` of its engines), backs
off from it or sends the call to its other members, and does not count a failure."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from executors.engines import PoolBackend
from executors.engines.pool import PoolBusy, is_busy
from orchestrator.errors import BackendHTTPError, BackendUnavailable
from orchestrator.runtime.contracts import LLMRequest, LLMResponse
from orchestrator.spec.models import ModelConfig
from tests.executors.engines.nested_pools import engine, inner, resolver
from tests.executors.engines.openai_servers import CompleteOnly

pytestmark = pytest.mark.anyio
Ask = Callable[..., LLMRequest]
Config = Callable[..., ModelConfig]


class Engine(CompleteOnly):
    """Answers busy (HTTP 503 with ``retry_after``) for ``busy_for`` seconds after it is
    made (for ever when null), then "ok" from its ``name``."""

    def __init__(self, config: ModelConfig) -> None:
        options = config.options
        self.name = str(options["name"])
        busy_for = options.get("busy_for")
        self.free_at = anyio.current_time() + busy_for if busy_for is not None else None
        self.retry_after: float | None = options.get("retry_after")
        self.calls = 0

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.calls += 1
        await anyio.sleep(0.01)
        if self.free_at is None or anyio.current_time() < self.free_at:
            raise BackendHTTPError(f"{self.name}: HTTP 503: the queue is full", status=503,
                                   retry_after_s=self.retry_after)
        return LLMResponse(text=f"ok from {self.name}", prompt_tokens=1,
                           completion_tokens=1, latency_s=0.01)


resolve = resolver(Engine)


async def test_an_inner_pool_all_busy_is_busy_with_its_soonest_retry_after(
        ask: Ask, pool_config: Config) -> None:
    members = inner(engine("a", busy_for=4, retry_after=5), engine("b", busy_for=2,
                                                                   retry_after=3))
    pool = PoolBackend(pool_config([members]), resolve=resolve)
    started = anyio.current_time()
    response = await pool.complete(ask("q"))
    waited = anyio.current_time() - started
    assert response.text == "ok from b"
    assert 3 <= waited < 3.5  # b's Retry-After, the sooner: not a's 5 s, nor a failure
    stats = pool.stats()["inner"]
    assert (stats.busy, stats.failed, stats.ejections, stats.completed) == (1, 0, 0, 1)
    assert pool.members[0].down_since is None and pool.retries == 1
    await pool.aclose()


async def test_the_outer_pool_sends_the_call_elsewhere_at_once(
        ask: Ask, pool_config: Config) -> None:
    members = [inner(engine("a", busy_for=None, retry_after=30)), engine("free", busy_for=0)]
    pool = PoolBackend(pool_config(members, routing="least_loaded"), resolve=resolve)
    started = anyio.current_time()
    answers = [await pool.complete(ask(f"q{i}")) for i in range(3)]
    # the inner pool did not hold the call for its busy_wait_s (120 s)
    assert anyio.current_time() - started < 1
    assert [a.text for a in answers] == ["ok from free"] * 3
    stats = pool.stats()["inner"]
    assert (stats.busy, stats.failed, stats.ejections) == (1, 0, 0)
    await pool.aclose()


async def test_an_inner_pool_busy_past_the_wait_fails_the_call_as_busy(
        ask: Ask, pool_config: Config) -> None:
    members = inner(engine("a", busy_for=None, retry_after=2))
    pool = PoolBackend(pool_config([members], busy_wait_s=10, busy_eject_after_s=None),
                       resolve=resolve)
    started = anyio.current_time()
    with pytest.raises(PoolBusy, match="every engine is busy for longer") as info:
        await pool.complete(ask("q"))
    assert 8 <= anyio.current_time() - started <= 11
    assert isinstance(info.value, BackendUnavailable) and is_busy(info.value)
    message = str(info.value)
    assert "pool 'pooled'" in message and "inner (busy for" in message
    assert "pool 'inner': every engine is busy (a member of another pool" in message
    assert "a: HTTP 503: the queue is full" in message
    stats = pool.stats()["inner"]
    assert stats.failed == 0 and stats.ejections == 0 and stats.busy >= 4
    await pool.aclose()


async def test_a_pool_on_its_own_still_waits_for_its_busy_engines(
        ask: Ask, pool_config: Config) -> None:
    pool = PoolBackend(pool_config([engine("a", busy_for=50, retry_after=10)]),
                       resolve=resolve)
    assert not pool.nested
    response = await pool.complete(ask("q"))
    assert response.text == "ok from a"
    await pool.aclose()


async def test_a_streamed_call_backs_off_from_a_busy_inner_pool_too(
        ask: Ask, pool_config: Config) -> None:
    members = inner(engine("a", busy_for=2, retry_after=3))
    pool = PoolBackend(pool_config([members]), resolve=resolve)
    chunks = [c async for c in pool.stream(ask("q"))]
    assert chunks[-1].final is not None and chunks[-1].final.text == "ok from a"
    assert pool.stats()["inner"].failed == 0 and pool.stats()["inner"].busy == 1
    await pool.aclose()
