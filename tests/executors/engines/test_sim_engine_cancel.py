"""``sim-engine``: a cancelled caller leaves at once, while the engine's iteration goes on
for the others; the callers left keep being served whoever drove; usage grows as the
engine decodes (what a pool watches for a hung engine)."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from executors.engines import PoolBackend, SimEngineBackend
from orchestrator.runtime.contracts import LLMRequest, Usage
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio
Ask = Callable[..., LLMRequest]
Config = Callable[..., ModelConfig]

# one prefill iteration of 1000 prompt tokens at 10 ms a token: about 10 s
SLOW_PREFILL = {"prefill_per_token_s": 0.01}
LONG_PROMPT = "word " * 800  # 4000 characters, 1000 tokens


async def test_a_cancelled_driver_leaves_at_once(ask: Ask, sim_config: Config) -> None:
    engine = SimEngineBackend(sim_config(**SLOW_PREFILL))
    start = anyio.current_time()
    with anyio.move_on_after(1):
        await engine.complete(ask(LONG_PROMPT, max_tokens=5))
    assert anyio.current_time() - start == pytest.approx(1)
    assert engine.counters.aborted == 1
    assert engine.active == 0
    # the iteration it started runs to its end on the engine, then the engine goes on
    response = await engine.complete(ask("next", max_tokens=5))
    assert response.completion_tokens == 5
    assert anyio.current_time() - start > 10


async def test_the_others_of_a_cancelled_drivers_batch_finish_as_without_it(
        ask: Ask, sim_config: Config) -> None:
    async def finish_of_second(cancel_first: bool) -> float:
        engine = SimEngineBackend(sim_config(**SLOW_PREFILL))
        start = anyio.current_time()
        ended: list[float] = []

        async def first() -> None:
            with anyio.move_on_after(1 if cancel_first else 1000):
                await engine.complete(ask(LONG_PROMPT, max_tokens=5))
            if cancel_first:
                assert anyio.current_time() - start == pytest.approx(1)

        async def second() -> None:
            await engine.complete(ask("short " * 10, max_tokens=5))
            ended.append(anyio.current_time() - start)

        with anyio.fail_after(100):
            async with anyio.create_task_group() as tg:
                tg.start_soon(first)
                await anyio.sleep(0.5)  # it arrives during the long iteration
                tg.start_soon(second)
        return ended[0]

    alone = await finish_of_second(cancel_first=False)
    cancelled = await finish_of_second(cancel_first=True)
    assert alone > 10  # it was in the first call's long iteration
    assert cancelled <= alone


async def test_a_caller_cancelled_as_it_is_handed_the_engine_does_not_strand_the_rest(
        ask: Ask, sim_config: Config) -> None:
    engine = SimEngineBackend(sim_config())
    second = anyio.CancelScope()
    done: list[str] = []

    async def first() -> None:
        await engine.complete(ask("first", max_tokens=5))
        # the first caller drove; finishing, it handed the engine to the second, which is
        # cancelled before it wakes
        second.cancel()

    async def take_second() -> None:
        with second:
            await engine.complete(ask("second", max_tokens=50))

    async def third() -> None:
        await engine.complete(ask("third", max_tokens=50))
        done.append("third")

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            tg.start_soon(take_second)
            tg.start_soon(third)
    assert done == ["third"]
    assert engine.counters.aborted == 1
    assert engine.active == 0


async def test_usage_grows_as_the_engine_decodes(ask: Ask, sim_config: Config) -> None:
    engine = SimEngineBackend(sim_config())
    usage = Usage()
    async with anyio.create_task_group() as tg:
        tg.start_soon(engine.complete, ask("hello", max_tokens=1000, usage=usage))
        await anyio.sleep(3)  # about 7 ms a token: some 400 decoded by now
        assert usage.prompt_tokens > 0
        assert 300 < usage.completion_tokens < 1000
    assert usage.completion_tokens == 1000


async def test_a_pool_does_not_take_a_decoding_sim_engine_for_a_hung_one(
        ask: Ask, pool_config: Config) -> None:
    members = [{"backend": "sim-engine", "model": "m", "name": f"gpu{i}"} for i in (0, 1)]
    pool = PoolBackend(pool_config(members, stall_timeout_s=2))
    # about 7 s of decoding, far over the stall limit, with a token every 7 ms
    response = await pool.complete(ask("hello", max_tokens=1000, usage=Usage()))
    assert response.completion_tokens == 1000
    assert all(s.stalls == 0 and s.ejections == 0 for s in pool.stats().values())
    assert pool.retries == 0
    await pool.aclose()
