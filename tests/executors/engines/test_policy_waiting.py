"""``program_aware``'s anti-starvation counts a call's waiting once: the time it spends in
a member's queue for a slot, from when it enters the queue on an attempt until it gets the
slot (or moves), added to its run's and its own when it leaves. Time at an engine (on an
earlier attempt too) is not waiting, and a call being dispatched waits no more: the engine
priority it is sent with counts its wait once, in its run's."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from executors.engines import PoolBackend
from executors.engines._policy import Call, PolicySettings, ServiceLedger, starving
from orchestrator.errors import BackendHTTPError
from orchestrator.runtime.contracts import LLMRequest, LLMResponse
from orchestrator.spec.models import ModelConfig
from tests.executors.engines.openai_servers import CompleteOnly

pytestmark = pytest.mark.anyio
LEVELS = 8
#: engine priorities of starving calls start here (``_policy.engine_priority``)
STARVING = 1e9 * (LEVELS + 1)


class Engine(CompleteOnly):
    """A member that takes ``max_tokens`` seconds per call and records the priority each
    call came with; with ``fail``, its calls fail after that time (HTTP 500)."""

    def __init__(self, config: ModelConfig) -> None:
        self.fail = bool(config.options.get("fail"))
        self.priorities: dict[str, float] = {}

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.priorities[request.run_id] = request.priority
        await anyio.sleep(request.max_tokens or 0)
        if self.fail:
            raise BackendHTTPError("HTTP 500: internal error", status=500)
        return LLMResponse(text="ok", prompt_tokens=1, completion_tokens=1,
                           latency_s=float(request.max_tokens or 0))


def make_pool(members: list[dict[str, Any]], **options: Any
              ) -> tuple[PoolBackend, dict[str, Engine]]:
    made: dict[str, Engine] = {}

    def make(config: ModelConfig) -> Engine:
        engine = made[str(config.options["name"])] = Engine(config)
        return engine

    config = ModelConfig(backend="pool", model="pooled", options={
        "members": [{"backend": "fake", "model": "m", "name": m["name"], "concurrency": 1,
                     "options": {**m.get("options", {}), "name": m["name"]}}
                    for m in members],
        "shared": False, "policy": "program_aware", "routing": "least_loaded",
        "levels": LEVELS, **options})
    return PoolBackend(config, resolve=lambda name: make), made


def ask(run: str, seconds: float) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": run}], max_tokens=int(seconds),
                      run_id=run, step_id="s", priority=1.0, request_id=f"{run}/s/1")


@pytest.mark.parametrize(("queued_s", "starves"), [(15, False), (25, True)])
async def test_a_call_waiting_for_a_slot_counts_its_wait_once(
        queued_s: int, starves: bool) -> None:
    # starvation_ratio 4 x the 5 s floor: a run starves after 20 s of waiting. b waits for
    # the slot a holds: 14.5 s is not starving (counted twice it was 29 s), 24.5 s is
    pool, made = make_pool([{"name": "gpu"}], starvation_ratio=4, starvation_floor_s=5)
    async with anyio.create_task_group() as tg:
        tg.start_soon(pool.complete, ask("a", queued_s))
        await anyio.sleep(0.5)
        tg.start_soon(pool.complete, ask("b", 1))
    assert (made["gpu"].priorities["b"] >= STARVING) is starves
    run = pool._core.ledger.run("b")
    assert run is not None and run.waited_s == pytest.approx(queued_s - 0.5, abs=0.01)
    await pool.aclose()


@pytest.mark.parametrize("options", [
    {"starvation_ratio": 4, "starvation_floor_s": 5},  # the run's wait: 20 s
    {"starvation_ratio": 1e9, "starvation_s": 60},  # the call's wait: 60 s
])
async def test_time_at_an_engine_on_an_earlier_attempt_is_not_waiting(
        options: dict[str, float]) -> None:
    # the call runs 70 s on `broken`, fails, and goes to the idle `spare` at once: it has
    # not waited, so it is sent to `spare` with its level's priority, not a starving one
    pool, made = make_pool([{"name": "broken", "options": {"fail": True}},
                            {"name": "spare"}], eject_after=100, **options)
    assert (await pool.complete(ask("b", 70))).text == "ok"
    assert made["broken"].priorities["b"] < STARVING
    assert made["spare"].priorities["b"] < STARVING
    await pool.aclose()


def test_a_call_that_moves_keeps_its_wait_but_not_the_time_between() -> None:
    settings = PolicySettings(starvation_s=60, starvation_ratio=1e9)
    ledger = ServiceLedger()
    call = Call("run", 1.0, arrival=0.0, seq=0)
    ledger.arrive(call)
    ledger.queued(call, 0.0)
    ledger.dequeued(call, 40.0)  # moved: its member was taken out
    assert not starving(call, settings, ledger, now=49.0)  # routed, not waiting
    ledger.queued(call, 50.0)  # waiting at another member
    assert not starving(call, settings, ledger, now=69.9)  # 40 s + 19.9 s
    assert starving(call, settings, ledger, now=70.0)  # 40 s + 20 s
    ledger.dequeued(call, 70.0)
    run = ledger.run("run")
    assert run is not None and run.waited_s == 60.0 and call.waited_s == 60.0


def test_a_runs_wait_is_the_time_any_of_its_calls_waited() -> None:
    # the run starves at 4 x the 5 s floor = 20 s of waiting. Its wait is the time during
    # which at least one of its calls waited: the same for each of its calls, not
    # multiplied by how many wait side by side, and not jumping when one gets its slot
    # (before, each call saw its run's finished waits plus its own open one)
    settings = PolicySettings(starvation_s=60, starvation_ratio=4, starvation_floor_s=5)
    ledger = ServiceLedger()
    first = Call("wide", 1.0, arrival=0.0, seq=0)
    second = Call("wide", 1.0, arrival=0.0, seq=1)
    for call in (first, second):
        ledger.arrive(call)
    ledger.queued(first, 0.0)
    ledger.queued(second, 4.0)
    run = ledger.run("wide")
    assert run is not None and run.wait(10.0) == 10.0  # not 10 + 6
    ledger.dequeued(first, 10.0)  # it has its slot; the run goes on waiting for second
    assert run.wait(10.0) == 10.0
    assert not starving(second, settings, ledger, now=19.9)
    assert starving(second, settings, ledger, now=20.0)
    ledger.dequeued(second, 22.0)
    assert run.waited_s == 22.0 and run.wait(30.0) == 22.0  # none waits: it stands still
    assert (first.waited_s, second.waited_s) == (10.0, 18.0)
    ledger.queued(first, 40.0)  # a later attempt: the run waits again
    assert run.wait(43.0) == 25.0
