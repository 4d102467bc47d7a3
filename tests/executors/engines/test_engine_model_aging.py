"""Aging in the engine model's ``priority`` policy: a request that has waited in the
engine's queue ``starvation_s`` goes before every request that has not (the oldest of
them first), as a call that has waited ``starvation_s`` at a pool does; without it a
stream of more urgent requests kept a less urgent one waiting for ever."""

from __future__ import annotations

import anyio
import pytest

from executors.engines import EngineModel, EngineParams, SimEngineBackend
from executors.engines._model import SimRequest
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.spec.models import ModelConfig


def flood(model: EngineModel, until: float) -> tuple[SimRequest, float]:
    """One request of priority 1 at 0 s, then requests of priority 5 arriving every
    0.5 s (each takes about 0.8 s on the one sequence slot, so one always waits) until
    ``until``; returns the low request and the time the model got to."""
    low = SimRequest("low", 100, 100, priority=1.0)
    model.add(low, 0.0)
    now, next_high, count = 0.0, 0.0, 0
    while now < until and model.has_work():
        while next_high <= now:
            model.add(SimRequest(f"high{count}", 100, 100, priority=5.0), next_high)
            count += 1
            next_high += 0.5
        batch = model.schedule(now)
        now += batch.duration_s
        model.finish(batch, now)
    return low, now


def test_without_aging_a_stream_of_urgent_requests_starves_a_less_urgent_one() -> None:
    model = EngineModel(EngineParams(max_num_seqs=1, starvation_s=None))
    low, now = flood(model, until=300.0)
    assert now >= 300.0 and low.first_token_at is None


@pytest.mark.parametrize("starvation_s", [20.0, 60.0])
def test_a_request_that_waited_starvation_s_goes_before_more_urgent_ones(
        starvation_s: float) -> None:
    model = EngineModel(EngineParams(max_num_seqs=1, starvation_s=starvation_s))
    low, _ = flood(model, until=300.0)
    assert low.finished_at is not None
    # admitted when the slot frees after it has waited starvation_s (one request, < 1 s)
    assert low.first_token_at is not None
    assert starvation_s <= low.first_token_at < starvation_s + 1.5


def test_the_default_ages_after_60_s_as_the_pools_starvation_s() -> None:
    assert EngineParams().starvation_s == 60.0


def test_aged_requests_go_oldest_first_and_fcfs_never_needs_aging() -> None:
    model = EngineModel(EngineParams(max_num_seqs=1, starvation_s=10.0))
    blocker = SimRequest("blocker", 100, 2000, priority=9.0)  # holds the slot ~16 s
    older, newer = (SimRequest("older", 100, 10, priority=1.0),
                    SimRequest("newer", 100, 10, priority=2.0))
    model.add(blocker, 0.0)
    model.add(older, 0.0)
    model.add(newer, 1.0)
    fresh = SimRequest("fresh", 100, 10, priority=8.0)
    model.add(fresh, 15.0)
    now = 0.0
    while model.has_work():
        batch = model.schedule(now)
        now += batch.duration_s
        model.finish(batch, now)
    ends = {r.request_id: r.finished_at or 0.0 for r in (older, newer, fresh)}
    # both waited past 10 s when the slot freed: the older first, though less urgent,
    # then the newer, and the fresh urgent one (4 s of waiting) last
    assert ends["older"] < ends["newer"] < ends["fresh"]


def test_a_request_that_waited_starvation_s_is_preempted_last() -> None:
    # 2 x (4 prompt + 13 output blocks) > 30 blocks: one must give way. "low" waited 20 s
    # (> starvation_s) before it got in, so "high", which never waited, gives way
    model = EngineModel(EngineParams(kv_blocks=30, block_size=16, starvation_s=10.0))
    low = SimRequest("low", 64, 200, priority=1.0)
    high = SimRequest("high", 64, 200, priority=5.0)
    model.add(low, 0.0)
    model.add(high, 20.0)
    now = 20.0
    while model.has_work():
        batch = model.schedule(now)
        now += batch.duration_s
        model.finish(batch, now)
    assert low.preemptions == 0 and high.preemptions > 0
    assert low.finished_at is not None and high.finished_at is not None
    assert low.finished_at < high.finished_at


@pytest.mark.anyio
@pytest.mark.parametrize("starvation_s", [30.0, None])
async def test_a_sim_engine_ages_its_queue_on_its_clock(starvation_s: float | None) -> None:
    engine = SimEngineBackend(ModelConfig(backend="sim-engine", model="m", options={
        "max_num_seqs": 1, "starvation_s": starvation_s}))
    done: dict[str, float] = {}

    async def call(name: str, priority: float) -> None:
        await engine.complete(LLMRequest(messages=[{"role": "user", "content": name}],
                                         max_tokens=100, priority=priority))
        done[name] = anyio.current_time()

    async with anyio.create_task_group() as tg:
        for i in range(200):  # a more urgent call every 0.5 s, each about 0.7 s long
            tg.start_soon(call, f"high{i}", 5.0)
            if i == 0:
                await anyio.sleep(0.1)
                tg.start_soon(call, "low", 1.0)  # waits: the one slot is taken
            await anyio.sleep(0.5)
    if starvation_s is None:  # served after all 200 urgent calls
        assert done["low"] > max(t for name, t in done.items() if name != "low")
    else:
        assert starvation_s + 0.1 <= done["low"] < starvation_s + 2
    await engine.aclose()
