"""The ``pool`` backend and a member that hangs (alive, but making no progress): its calls
move after ``stall_timeout_s`` instead of waiting for the engine's own limits, if any."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from executors.engines import PoolBackend, VLLMBackend, fake_vllm_api
from executors.engines._hub import SharedObjects
from executors.engines.fake_vllm import AsyncLLM
from orchestrator.errors import ConfigError, StepTimeout
from orchestrator.runtime.contracts import LLMRequest, Usage
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio
Ask = Callable[..., LLMRequest]
Config = Callable[..., ModelConfig]


def vllm_pool(pool_config: Config, shared: SharedObjects, step_s: float = 0.05,
              **options: object) -> tuple[PoolBackend, list[VLLMBackend]]:
    """A pool of two fake vLLM engines, ``gpu0`` and ``gpu1``."""
    made: list[VLLMBackend] = []

    def make(config: ModelConfig) -> VLLMBackend:
        made.append(VLLMBackend(config, api=fake_vllm_api(step_s=step_s, tokens_per_step=1),
                                shared=shared))
        return made[-1]

    members = [{"backend": "vllm", "model": "m", "options": {"gpu": i}, "name": f"gpu{i}"}
               for i in (0, 1)]
    pool = PoolBackend(pool_config(members, routing="least_loaded", **options),
                       resolve=lambda name: make)
    return pool, made


def engine(backend: VLLMBackend) -> AsyncLLM:
    return backend._engine  # type: ignore[no-any-return]


async def test_calls_on_a_hung_engine_move_after_the_stall_timeout(
        ask: Ask, pool_config: Config) -> None:
    shared = SharedObjects()
    pool, made = vllm_pool(pool_config, shared, stall_timeout_s=5)
    await pool.complete(ask("warm up gpu0", max_tokens=5))
    await pool.complete(ask("warm up gpu1", max_tokens=5))
    engine(made[0]).hang()  # stuck; its health check still answers, as vLLM's does
    answers = []

    async def one(i: int) -> None:
        answers.append(await pool.complete(ask(f"q{i}", max_tokens=20,
                                               usage=Usage())))

    started = anyio.current_time()
    with anyio.fail_after(60):  # without the stall limit they would wait for ever
        async with anyio.create_task_group() as tg:
            for i in range(6):
                tg.start_soon(one, i)
    assert len(answers) == 6
    assert anyio.current_time() - started < 10
    gpu0 = pool.stats()["gpu0"]
    assert gpu0.stalls >= 1 and gpu0.ejections == 1
    assert pool.members[0].down_since is not None
    assert "made no progress" in pool.members[0].last_error
    assert "stall_timeout_s" in pool.members[0].last_error
    # the other engine serves the next calls at once
    before = pool.retries
    await pool.complete(ask("next", max_tokens=5))
    assert pool.retries == before
    await pool.aclose()
    await shared.aclose()


async def test_a_slow_engine_that_keeps_decoding_is_not_stalled(
        ask: Ask, pool_config: Config) -> None:
    shared = SharedObjects()
    # two seconds a token, under the limit of five; the answer takes far longer than five
    pool, _ = vllm_pool(pool_config, shared, step_s=2.0, stall_timeout_s=5)
    response = await pool.complete(ask("a long story", max_tokens=30, usage=Usage()))
    assert response.latency_s > 20
    assert all(s.stalls == 0 and s.failed == 0 for s in pool.stats().values())
    chunks = [c async for c in pool.stream(ask("another long story", max_tokens=30))]
    assert chunks[-1].final is not None
    assert all(s.stalls == 0 for s in pool.stats().values())
    await pool.aclose()
    await shared.aclose()


async def test_the_caller_counts_the_tokens_through_the_pools_counter(
        ask: Ask, pool_config: Config) -> None:
    shared = SharedObjects()
    pool, _ = vllm_pool(pool_config, shared, stall_timeout_s=5)
    usage = Usage()
    response = await pool.complete(ask("count me", max_tokens=20, usage=usage))
    assert usage.completion_tokens == response.completion_tokens > 0
    assert usage.prompt_tokens == response.prompt_tokens > 0
    await pool.aclose()
    await shared.aclose()


async def test_a_stream_that_stalls_after_its_first_chunk_fails_and_the_engine_goes(
        ask: Ask, pool_config: Config) -> None:
    shared = SharedObjects()
    pool, made = vllm_pool(pool_config, shared, stall_timeout_s=5)
    with anyio.fail_after(60), pytest.raises(StepTimeout, match="made no progress"):
        async for _ in pool.stream(ask("a long story", max_tokens=200)):
            engine(made[0]).hang()  # after the first chunk: too late to move the call
    assert pool.members[0].down_since is not None
    assert pool.stats()["gpu0"].stalls == 1
    await pool.aclose()
    await shared.aclose()


async def test_a_stall_whose_health_check_fails_takes_the_engine_out_at_once(
        ask: Ask, pool_config: Config) -> None:
    shared = SharedObjects()
    pool, made = vllm_pool(pool_config, shared, stall_timeout_s=5, eject_after=3,
                           health_timeout_s=2)
    await pool.complete(ask("warm up gpu0", max_tokens=5))
    engine(made[0]).hang(health=True)
    with anyio.fail_after(60):
        response = await pool.complete(ask("q", max_tokens=5))
    assert response.text
    assert pool.members[0].down_since is not None  # at the first stall, not the third
    assert "health check did not answer within 2s" in pool.members[0].last_error
    await pool.aclose()
    await shared.aclose()


async def test_a_member_may_set_its_own_stall_timeout_or_none(
        ask: Ask, pool_config: Config) -> None:
    sim = {"backend": "sim-engine", "model": "llama-3-8b"}
    pool = PoolBackend(pool_config([{**sim, "name": "a", "stall_timeout_s": 12.5},
                                    {**sim, "name": "b", "stall_timeout_s": None},
                                    {**sim, "name": "c"}], stall_timeout_s=7))
    assert [m.stall_s for m in pool.members] == [12.5, None, 7]
    await pool.aclose()
    with pytest.raises(ConfigError, match="member 0: stall_timeout_s must be a positive"):
        PoolBackend(pool_config([{**sim, "stall_timeout_s": 0}]))
    assert PoolBackend.option_problems({"members": [{**sim, "stall_timeout_s": "soon"}]})[0][0] \
        == ("members", 0, "stall_timeout_s")
