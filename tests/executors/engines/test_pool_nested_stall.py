"""A ``pool`` member that is itself a pool and one of its engines hangs: the inner pool
stalls that engine and moves the call to its other engine; the outer pool does not race
it (with the same ``stall_timeout_s``) and take the whole inner pool out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from executors.engines import PoolBackend, VLLMBackend, fake_vllm_api
from executors.engines._hub import SharedObjects
from orchestrator.errors import ConfigError
from orchestrator.runtime.contracts import BackendFactory, LLMRequest, Usage
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio
Ask = Callable[..., LLMRequest]
Config = Callable[..., ModelConfig]


def nested_pool(pool_config: Config, shared: SharedObjects, inner_options: dict[str, Any],
                member: dict[str, Any] | None = None, engines: int = 2, **options: Any
                ) -> tuple[PoolBackend, list[VLLMBackend]]:
    """An outer pool whose one member, ``inner``, is a pool of ``engines`` fake vLLM
    engines, ``gpu0``, ``gpu1``...; ``member`` adds fields to the inner pool's member entry."""
    made: list[VLLMBackend] = []

    def resolve(name: str) -> BackendFactory:
        if name == "pool":
            return lambda config: PoolBackend(config, resolve=resolve)

        def make(config: ModelConfig) -> VLLMBackend:
            made.append(VLLMBackend(config, api=fake_vllm_api(step_s=0.05,
                                                              tokens_per_step=1),
                                    shared=shared))
            return made[-1]
        return make

    members = [{"backend": "vllm", "model": "m", "options": {"gpu": i}, "name": f"gpu{i}"}
               for i in range(engines)]
    inner = {"backend": "pool", "model": "inner", "name": "inner", **(member or {}),
             "options": {"members": members, "shared": False, "routing": "least_loaded",
                         **inner_options}}
    pool = PoolBackend(pool_config([inner], **options), resolve=resolve)
    return pool, made


async def test_the_outer_pool_leaves_a_hung_inner_engine_to_the_inner_pool(
        ask: Ask, pool_config: Config) -> None:
    shared = SharedObjects()
    pool, made = nested_pool(pool_config, shared, {"stall_timeout_s": 5},
                             stall_timeout_s=5)
    inner = pool.members[0].backend
    assert isinstance(inner, PoolBackend)
    await pool.complete(ask("warm up gpu0", max_tokens=5))
    made[0]._engine.hang()  # gpu0 (first among equals) gets the next call, and hangs
    with anyio.fail_after(60):
        response = await pool.complete(ask("q", max_tokens=20, usage=Usage()))
    assert response.meta["engine"] == "inner"
    assert inner.stats()["gpu0"].stalls == 1  # the inner pool moved it to gpu1
    assert inner.stats()["gpu1"].completed >= 1
    outer = pool.stats()["inner"]
    assert (outer.stalls, outer.failed, outer.ejections) == (0, 0, 0)
    assert pool.members[0].down_since is None
    await pool.aclose()
    await shared.aclose()


async def test_an_inner_pool_is_not_watched_by_the_outer_pools_stall_timeout(
        pool_config: Config) -> None:
    shared = SharedObjects()
    pool, _ = nested_pool(pool_config, shared, {"stall_timeout_s": 5}, stall_timeout_s=5)
    assert pool.members[0].stall_s is None
    await pool.aclose()
    await shared.aclose()


async def test_an_inner_pools_own_stall_timeout_must_outlast_its_failover(
        pool_config: Config) -> None:
    shared = SharedObjects()
    # the inner pool moves a hung engine's call within 5 * 9/8 + 2 (its health check) s
    inner = {"stall_timeout_s": 5, "health_timeout_s": 2}
    with pytest.raises(ConfigError, match=r"member 'inner': stall_timeout_s 7.5 .* more than "
                                          r"7\.625s"):
        nested_pool(pool_config, shared, inner, member={"stall_timeout_s": 7.5})
    pool, _ = nested_pool(pool_config, shared, inner, member={"stall_timeout_s": 8})
    assert pool.members[0].stall_s == 8
    await pool.aclose()
    await shared.aclose()


async def test_an_outer_limit_of_its_own_outlasts_two_failovers_in_the_inner_pool(
        ask: Ask, pool_config: Config) -> None:
    shared = SharedObjects()
    # three engines inside, two of which hang: the inner pool moves the call twice, each
    # time within 5 * 9/8 + 1 s, which the outer limit of 8 s exceeds once but not twice
    pool, made = nested_pool(pool_config, shared, {"stall_timeout_s": 5,
                                                   "health_timeout_s": 1},
                             member={"stall_timeout_s": 8}, engines=3)
    inner = pool.members[0].backend
    assert isinstance(inner, PoolBackend)
    async with anyio.create_task_group() as tg:  # side by side: one call on each engine
        for i in range(3):
            tg.start_soon(pool.complete, ask(f"warm up {i}", max_tokens=5))
    made[0]._engine.hang()
    made[1]._engine.hang()
    with anyio.fail_after(60):
        response = await pool.complete(ask("q", max_tokens=20, usage=Usage()))
    assert response.text
    assert [inner.stats()[f"gpu{i}"].stalls for i in range(3)] == [1, 1, 0]
    assert pool.stats()["inner"].stalls == 0
    await pool.aclose()
    await shared.aclose()
