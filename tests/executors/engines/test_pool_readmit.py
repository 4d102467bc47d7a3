"""A ``pool`` member taken out comes back once it is well again: also a member that is a
pool, whose own engines come back only when it is asked."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from executors.engines import PoolBackend
from orchestrator.errors import BackendUnavailable
from orchestrator.runtime.contracts import LLMRequest, LLMResponse
from orchestrator.spec.models import ModelConfig
from tests.executors.engines.nested_pools import engine, inner, resolver
from tests.executors.engines.openai_servers import CompleteOnly

pytestmark = pytest.mark.anyio
Ask = Callable[..., LLMRequest]
Config = Callable[..., ModelConfig]


class Engine(CompleteOnly):
    """Down (unavailable, failing its health check) until ``up_at`` seconds after it is
    made, then answers "ok" from its ``name``."""

    def __init__(self, config: ModelConfig) -> None:
        self.name = str(config.options["name"])
        self.up_at = anyio.current_time() + float(config.options.get("down_for", 0))
        self.calls = 0

    async def health(self) -> bool:
        return anyio.current_time() >= self.up_at

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.calls += 1
        await anyio.sleep(0.01)
        if anyio.current_time() < self.up_at:
            raise BackendUnavailable(f"{self.name}: connection refused")
        return LLMResponse(text=f"ok from {self.name}", prompt_tokens=1,
                           completion_tokens=1, latency_s=0.01)


resolve = resolver(Engine)


async def test_an_inner_pool_taken_out_comes_back_when_its_engine_does(
        ask: Ask, pool_config: Config) -> None:
    members = [inner(engine("a", down_for=10), probe_after_s=5), engine("b")]
    pool = PoolBackend(pool_config(members, routing="least_loaded", probe_after_s=5),
                       resolve=resolve)
    assert (await pool.complete(ask("q0"))).text == "ok from b"
    assert pool.members[0].down_since is not None  # a failed, so did the inner pool
    await anyio.sleep(20)  # a is well again, and both pools' probe_after_s are over
    answers = [(await pool.complete(ask(f"q{i}"))).text for i in range(1, 5)]
    assert "ok from a" in answers
    assert pool.members[0].down_since is None
    await pool.aclose()


async def test_a_pool_whose_engines_are_all_out_is_healthy_once_one_passes_its_probe(
        pool_config: Config) -> None:
    pool = PoolBackend(pool_config([engine("a", down_for=10)], probe_after_s=5),
                       resolve=resolve)
    assert await pool.check_health() == {"a": False}
    assert not await pool.health()
    await anyio.sleep(6)  # due for a probe, but still down
    assert not await pool.health()
    assert pool.members[0].down_since is not None
    await anyio.sleep(10)
    assert await pool.health()
    assert pool.members[0].down_since is None
    await pool.aclose()


class Hung(CompleteOnly):
    """Counts its progress as it goes (as ``vllm`` does) and answers healthy, but hangs
    on every call while ``hung`` (as a stuck engine whose health check still answers)."""

    progress_in = "complete"

    def __init__(self, config: ModelConfig) -> None:
        self.name = str(config.options["name"])
        self.hung = bool(config.options.get("hung", False))
        self.calls = 0

    async def health(self) -> bool:
        return True

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.calls += 1
        if self.hung:
            await anyio.sleep_forever()
        await anyio.sleep(0.5)
        return LLMResponse(text=f"ok from {self.name}", prompt_tokens=1,
                           completion_tokens=1, latency_s=0.5)


def hung_pool(pool_config: Config) -> tuple[PoolBackend, Hung]:
    members = [engine("a", hung=True), engine("b")]
    pool = PoolBackend(pool_config(members, routing="least_loaded", stall_timeout_s=5,
                                   probe_after_s=10), resolve=lambda name: Hung)
    backend = pool.members[0].backend
    assert isinstance(backend, Hung)
    return pool, backend


async def concurrently(pool: PoolBackend, ask: Ask, count: int) -> list[str]:
    answers: list[str] = []

    async def one(i: int) -> None:
        answers.append((await pool.complete(ask(f"q{i}"))).text)

    async with anyio.create_task_group() as tg:
        for i in range(count):
            tg.start_soon(one, i)
    return answers


async def test_a_member_back_from_a_probe_gets_one_call_until_it_answers(
        ask: Ask, pool_config: Config) -> None:
    pool, a = hung_pool(pool_config)
    assert await concurrently(pool, ask, 1) == ["ok from b"]  # a hung: stalled, taken out
    assert pool.members[0].down_since is not None and a.calls == 1
    await anyio.sleep(20)  # due for its probe, which it passes: it is still hung
    assert await concurrently(pool, ask, 8) == ["ok from b"] * 8
    # one call tried it; not half of them, each held for the stall limit
    assert a.calls == 2
    assert pool.members[0].down_since is not None
    await pool.aclose()


async def test_a_member_that_answers_its_trial_call_takes_its_share_again(
        ask: Ask, pool_config: Config) -> None:
    pool, a = hung_pool(pool_config)
    await concurrently(pool, ask, 1)
    a.hung = False  # well again
    await anyio.sleep(20)
    answers = await concurrently(pool, ask, 8)
    assert "ok from a" in answers and pool.members[0].down_since is None
    before = a.calls
    assert (await concurrently(pool, ask, 8)).count("ok from a") == 4
    assert a.calls - before == 4
    await pool.aclose()
