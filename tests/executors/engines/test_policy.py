"""The ``program_aware`` policy (Autellix's ATLAS plus Ponder's critical paths): its
ordering decisions on small hand-made cases, its engine priorities, and that neither
short nor long runs starve. Pure functions take the time as an argument; the pool tests
run on the virtual clock."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import anyio.abc
import pytest

from executors.engines import PoolBackend
from executors.engines._meta import HAS_META, meta_of
from executors.engines._policy import (
    Call,
    PolicySettings,
    ServiceLedger,
    engine_priority,
    level,
    sort_key,
    starving,
)
from executors.llm._common import engine_int
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.spec.models import ModelConfig

SETTINGS = PolicySettings(quantum_tokens=1000, starvation_s=60, starvation_ratio=4,
                          starvation_floor_s=5)
SIM = {"backend": "sim-engine", "model": "llama-3-8b"}


class Pool:
    """Calls as the pool makes them: numbered, stamped by the ledger on arrival, and
    waiting for a slot from then on (a finished call got its slot at once)."""

    def __init__(self, settings: PolicySettings = SETTINGS) -> None:
        self.settings = settings
        self.ledger = ServiceLedger()
        self.seq = 0

    def call(self, run: str, critical_path: float, at: float = 0.0) -> Call:
        call = Call(run, critical_path, at, self.seq)
        self.seq += 1
        self.ledger.arrive(call)
        self.ledger.queued(call, at)
        return call

    def finish(self, call: Call, completion_tokens: int, engine_s: float = 1.0) -> None:
        self.ledger.dequeued(call, call.arrival)
        self.ledger.served(call, 0, completion_tokens, engine_s, self.settings.prompt_weight)
        self.ledger.leave(call)

    def order(self, calls: list[Call], now: float) -> list[Call]:
        return sorted(calls, key=lambda c: sort_key(c, self.settings, self.ledger, now))


def test_service_follows_the_critical_path_not_the_sum() -> None:
    pool = Pool()
    # a fan-out: three calls side by side count once, as the longest of them
    wide = [pool.call("wide", 1.0) for _ in range(3)]
    for call, tokens in zip(wide, (300, 500, 400), strict=True):
        pool.finish(call, tokens)
    assert pool.ledger.get("wide") == 500
    # a chain: each call starts from the service left by the one before (PLAS)
    for tokens in (300, 500, 400):
        pool.finish(pool.call("chain", 1.0), tokens)
    assert pool.ledger.get("chain") == 1200
    # a call that arrived before its sibling finished does not add the sibling's service
    early = pool.call("wide", 1.0)
    pool.finish(pool.call("wide", 1.0), 600)
    pool.finish(early, 100)
    assert pool.ledger.get("wide") == 1100


def test_less_served_runs_go_first() -> None:
    pool = Pool()
    pool.finish(pool.call("served", 1.0), 5_000)  # level 2 with a quantum of 1000
    assert level(pool.ledger.get("served"), SETTINGS) == 2
    old = pool.call("served", 1.0, at=1.0)
    new = pool.call("fresh", 50.0, at=2.0)
    assert pool.order([old, new], now=3.0) == [new, old]


def test_inside_a_level_the_run_nearest_its_end_goes_first() -> None:
    pool = Pool()
    long_run = pool.call("long", 40.0, at=0.0)
    short_run = pool.call("short", 5.0, at=1.0)
    assert pool.order([long_run, short_run], now=2.0) == [short_run, long_run]


def test_a_runs_remaining_path_is_its_longest_call_at_the_pool() -> None:
    pool = Pool()
    # run "a" has a long step still running: its short side step does not make it short
    running = pool.call("a", 40.0, at=0.0)
    side = pool.call("a", 2.0, at=1.0)
    other = pool.call("b", 10.0, at=1.5)
    assert pool.order([side, other], now=2.0) == [other, side]
    pool.finish(running, 100)
    assert pool.order([side, other], now=3.0) == [side, other]


def test_a_call_with_slack_yields_to_another_runs_critical_call() -> None:
    pool = Pool()
    pool.call("a", 20.0, at=0.0)  # run a's critical step, running
    side = pool.call("a", 5.0, at=0.5)  # may wait 15 s without delaying run a
    critical = pool.call("b", 25.0, at=1.0)  # run b is longer, but this is its critical step
    assert pool.order([side, critical], now=2.0) == [critical, side]
    tight = pool.call("a", 18.0, at=1.5)  # 2 s of slack: run a is still nearer its end
    assert pool.order([critical, tight], now=2.0) == [tight, critical]


def test_equal_runs_are_served_in_arrival_order_of_the_run() -> None:
    pool = Pool()
    first = pool.call("first", 10.0, at=0.0)
    second = pool.call("second", 10.0, at=0.5)
    # a later call of the first run still goes before the second run's call
    pool.finish(first, 100)
    again = pool.call("first", 10.0, at=2.0)
    waiting = pool.call("second", 10.0, at=1.0)
    assert pool.order([waiting, again], now=3.0) == [again, waiting]
    assert pool.order([second, first], now=1.0) == [first, second]


def test_inside_a_run_the_longest_critical_path_goes_first() -> None:
    pool = Pool()
    side = pool.call("run", 3.0, at=0.0)
    critical = pool.call("run", 30.0, at=1.0)
    assert pool.order([side, critical], now=2.0) == [critical, side]


def test_a_call_that_waited_too_long_jumps_every_level() -> None:
    settings = PolicySettings(quantum_tokens=1000, starvation_s=60, starvation_ratio=1e9)
    pool = Pool(settings)
    pool.finish(pool.call("heavy", 1.0), 100_000)
    old = pool.call("heavy", 1.0, at=0.0)
    new = pool.call("light", 1.0, at=50.0)
    assert pool.order([old, new], now=59.0) == [new, old]
    assert pool.order([old, new], now=60.0) == [old, new]


def test_a_run_that_waited_far_longer_than_it_was_served_jumps_every_level() -> None:
    pool = Pool()
    done = pool.call("heavy", 1.0)
    pool.finish(done, 100_000, engine_s=10.0)  # needs 4 x 10 s of waiting
    pool.ledger.waited(done, 35.0)
    old = pool.call("heavy", 1.0, at=100.0)
    new = pool.call("light", 1.0, at=100.0)
    assert not starving(old, SETTINGS, pool.ledger, now=104.0)
    assert pool.order([old, new], now=104.0) == [new, old]
    assert starving(old, SETTINGS, pool.ledger, now=105.0)
    assert pool.order([old, new], now=105.0) == [old, new]


def test_a_new_run_is_not_starving_before_the_floor() -> None:
    pool = Pool()
    call = pool.call("new", 1.0, at=0.0)
    assert not starving(call, SETTINGS, pool.ledger, now=19.9)
    assert starving(call, SETTINGS, pool.ledger, now=20.0)  # 4 x the 5 s floor


def test_starving_calls_go_oldest_run_first() -> None:
    pool = Pool()
    first = pool.call("first", 1.0, at=0.0)
    second = pool.call("second", 1.0, at=0.0)
    pool.finish(first, 100)
    later_of_first = pool.call("first", 1.0, at=1.0)  # its next step, after second's call
    # both runs starve (more than 4 x the 5 s floor of waiting): the older run goes first,
    # so that under overload runs finish one after another instead of all at the end
    assert pool.order([second, later_of_first], now=25.0) == [later_of_first, second]
    assert (engine_priority(later_of_first, SETTINGS, pool.ledger, 25.0)
            > engine_priority(second, SETTINGS, pool.ledger, 25.0))


@pytest.mark.parametrize("now", [1.0, 30.0])
def test_engine_priorities_order_calls_as_the_pool_does(now: float) -> None:
    pool = Pool()
    pool.finish(pool.call("served", 1.0), 3_000)
    calls = [pool.call("served", 20.0, at=0.5), pool.call("served", 4.0, at=0.6),
             pool.call("a", 12.0, at=0.7), pool.call("a", 3.0, at=0.8),
             pool.call("b", 2.5, at=0.9)]
    if now > 20:  # the oldest call is starving by then
        calls.append(pool.call("late", 1.0, at=now))
    by_key = pool.order(calls, now)
    by_priority = sorted(calls, key=lambda c: (-engine_priority(c, SETTINGS, pool.ledger, now),
                                               c.arrival))
    assert by_priority == by_key
    assert all(float(engine_priority(c, SETTINGS, pool.ledger, now)).is_integer()
               for c in calls)


def test_engine_priorities_keep_urgencies_a_few_milliseconds_apart() -> None:
    pool = Pool()
    nearer = pool.call("a", 0.30)  # runs with 0.30 s and 0.33 s left: the first is nearer
    farther = pool.call("b", 0.33)  # its end (tenths of a second would tie them)
    assert pool.order([farther, nearer], now=0.0) == [nearer, farther]
    p_near, p_far = (engine_priority(c, SETTINGS, pool.ledger, 0.0) for c in (nearer, farther))
    assert p_near > p_far
    assert engine_int(p_near) < engine_int(p_far)  # vLLM: lower first
    assert engine_int(0.6) < engine_int(0.3)  # critical_path passes seconds through


# -- in a pool, on the virtual clock ---------------------------------------------------------
def _pool(policy: str, **options: object) -> PoolBackend:
    return PoolBackend(ModelConfig(backend="pool", model="pooled", options={
        "members": [{**SIM, "concurrency": 1}], "shared": False, "policy": policy,
        **options}))


def _ask(run: str, step: str, tokens: int, critical_path: float) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": f"{run} {step}"}],
                      max_tokens=tokens, run_id=run, step_id=step, priority=critical_path,
                      request_id=f"{run}/{step}/1")


async def _chain(pool: PoolBackend, run: str, steps: int, tokens: int,
                 finished: dict[str, float], start: float = 0.0) -> None:
    await anyio.sleep(start)
    began = anyio.current_time()
    for i in range(steps):
        await pool.complete(_ask(run, f"s{i}", tokens, (steps - i) * tokens * 0.02))
    finished[run] = anyio.current_time() - began


async def _latencies(policy: str, spawn: Callable[..., None], **options: object
                     ) -> dict[str, float]:
    pool = _pool(policy, **options)
    finished: dict[str, float] = {}
    async with anyio.create_task_group() as tg:
        spawn(tg, pool, finished)
    await pool.aclose()
    return finished


def _long_and_shorts(tg: anyio.abc.TaskGroup, pool: PoolBackend,
                     finished: dict[str, float]) -> None:
    tg.start_soon(_chain, pool, "long", 20, 200, finished)
    for i in range(5):
        tg.start_soon(_chain, pool, f"short{i}", 2, 20, finished, 0.5 + i)


@pytest.mark.anyio
async def test_short_runs_are_not_starved_behind_a_long_one() -> None:
    fifo = await _latencies("fifo", _long_and_shorts)
    aware = await _latencies("program_aware", _long_and_shorts)
    short = [f"short{i}" for i in range(5)]
    # under fifo each call of a short run queues behind the long run's next call;
    # program_aware lets it through (the slot is not preemptive: a short run may still
    # wait for the long call that holds it)
    assert sum(aware[r] for r in short) < 0.6 * sum(fifo[r] for r in short)
    assert max(aware[r] for r in short) <= max(fifo[r] for r in short)
    assert aware["long"] < fifo["long"] * 1.05


def _flood(tg: anyio.abc.TaskGroup, pool: PoolBackend, finished: dict[str, float]) -> None:
    tg.start_soon(_chain, pool, "long", 3, 400, finished)
    for i in range(120):  # fresh short runs arrive faster than one engine serves them
        tg.start_soon(_chain, pool, f"short{i}", 1, 100, finished, 2.0 + 0.5 * i)


@pytest.mark.anyio
async def test_a_long_run_is_not_starved_forever_by_a_flood_of_short_ones() -> None:
    starved = await _latencies("program_aware", _flood, starvation_s=1e9,
                               starvation_ratio=1e9)
    guarded = await _latencies("program_aware", _flood, starvation_s=20)
    # without anti-starvation the long run waits for the whole flood; with it, its
    # calls jump the queue after 20 s of waiting at most
    assert starved["long"] > 50
    assert guarded["long"] < starved["long"] - 10
    assert guarded["long"] < 3 * 400 * 0.008 + 2 * 20 + 10


def _crowd(tg: anyio.abc.TaskGroup, pool: PoolBackend, finished: dict[str, float]) -> None:
    for i in range(40):  # 120 calls of about 0.7 s at once on one slot: every run starves
        tg.start_soon(_chain, pool, f"run{i}", 3, 100, finished)


@pytest.mark.anyio
async def test_an_overloaded_pool_still_finishes_runs_one_after_another() -> None:
    fifo = sorted((await _latencies("fifo", _crowd)).values())
    aware = sorted((await _latencies("program_aware", _crowd)).values())
    # fifo serves every run's first calls before anyone's last: all finish near the end;
    # program_aware's starving runs go oldest first, so half of them are done by half time
    assert fifo[20] > 0.8 * fifo[-1]
    assert aware[20] < 0.6 * aware[-1]
    assert aware[-1] < 1.05 * fifo[-1]


@pytest.mark.skipif(not HAS_META, reason="LLMResponse has no `meta` field yet")
@pytest.mark.anyio
async def test_each_response_records_the_level_and_priority_it_was_dispatched_with() -> None:
    pool = _pool("program_aware", quantum_tokens=1000)
    first = meta_of(await pool.complete(_ask("run", "a", 5, 3.0)))
    assert first["policy"] == "program_aware"
    assert first["service_level"] == 0
    pool._core.ledger.add("run", 0, 5_000, 0.1)  # level 2 with a quantum of 1000
    second = meta_of(await pool.complete(_ask("run", "b", 5, 3.0)))
    assert second["service_level"] == 2
    assert second["priority"] < first["priority"]
    assert second["priority"] == engine_priority(
        Call("run", 3.0, 0.0, 0), pool._core.settings, pool._core.ledger)
    await pool.aclose()
