"""A pool whose engines that are up are all busy while another engine, taken out, falls
due for its probe sooner: the call waits only until the probe, and a pool that is a
member of another says so in its :class:`PoolBusy`'s ``retry_after_s``."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from executors.engines import PoolBackend
from executors.engines.pool import PoolBusy
from orchestrator.errors import BackendError, BackendHTTPError
from orchestrator.runtime.contracts import LLMRequest, LLMResponse
from orchestrator.spec.models import ModelConfig
from tests.executors.engines.nested_pools import engine, resolver
from tests.executors.engines.openai_servers import CompleteOnly

pytestmark = pytest.mark.anyio
Ask = Callable[..., LLMRequest]
Config = Callable[..., ModelConfig]


class Engine(CompleteOnly):
    """``busy``: answers HTTP 503 with ``Retry-After: 30`` to every call; otherwise fails
    its first call (an engine error, which takes it out) and answers the others."""

    def __init__(self, config: ModelConfig) -> None:
        self.name = str(config.options["name"])
        self.busy = bool(config.options.get("busy"))
        self.calls = 0

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.calls += 1
        await anyio.sleep(0.01)
        if self.busy:
            raise BackendHTTPError(f"{self.name}: HTTP 503: the queue is full", status=503,
                                   retry_after_s=30)
        if self.calls == 1:
            raise BackendError(f"{self.name}: the engine died")
        return LLMResponse(text=f"ok from {self.name}", prompt_tokens=1,
                           completion_tokens=1, latency_s=0.01)


resolve = resolver(Engine)
# "flaky" first (the least-loaded tie goes to it): it fails the first call and is taken
# out, to be probed 5 s later; "full" is busy for 30 s from then on
MEMBERS = [engine("flaky"), engine("full", busy=True)]


async def test_a_nested_pool_is_busy_until_its_engine_taken_out_is_due_for_a_probe(
        ask: Ask, pool_config: Config) -> None:
    pool = PoolBackend(pool_config(MEMBERS, probe_after_s=5), resolve=resolve)
    pool.nested = True
    with pytest.raises(PoolBusy) as caught:
        await pool.complete(ask("q"))
    # "flaky" may take a call at its probe, 5 s after it failed: not "full"'s 30 s
    assert caught.value.retry_after_s == pytest.approx(5, abs=0.1)
    await anyio.sleep(caught.value.retry_after_s)
    response = await pool.complete(ask("q"))
    assert response.text == "ok from flaky"
    await pool.aclose()


async def test_a_call_waits_for_the_probe_of_an_engine_taken_out_not_the_busy_one(
        ask: Ask, pool_config: Config) -> None:
    pool = PoolBackend(pool_config(MEMBERS, probe_after_s=5), resolve=resolve)
    pool.nested = True  # the first call takes "flaky" out, finds "full" busy, and fails
    with pytest.raises(PoolBusy):
        await pool.complete(ask("first"))
    pool.nested = False
    started = anyio.current_time()
    response = await pool.complete(ask("q"))  # "full" is busy for 30 s
    assert response.text == "ok from flaky"
    assert 4.5 < anyio.current_time() - started < 5.5  # at "flaky"'s probe, not after 30 s
    await pool.aclose()


class SlowToCheck(Engine):
    """An :class:`Engine` whose ``health()`` takes 3 s to say yes."""

    async def health(self) -> bool:
        await anyio.sleep(3)
        return True


async def test_while_a_probe_runs_a_call_waits_for_its_end_and_a_nested_pool_says_0(
        ask: Ask, pool_config: Config) -> None:
    pool = PoolBackend(pool_config(MEMBERS, probe_after_s=5),
                       resolve=lambda name: SlowToCheck)
    pool.nested = True
    with pytest.raises(PoolBusy):
        await pool.complete(ask("first"))  # takes "flaky" out; "full" busy for 30 s
    await anyio.sleep(5)
    ends: dict[str, float] = {}
    hints: list[float | None] = []

    async def call(name: str) -> None:
        await pool.complete(ask(name))
        ends[name] = anyio.current_time()

    async def nested_call() -> None:
        pool.nested = True
        try:
            await pool.complete(ask("nested"))
        except PoolBusy as exc:
            hints.append(exc.retry_after_s)
        finally:
            pool.nested = False

    started = anyio.current_time()
    async with anyio.create_task_group() as tg:
        pool.nested = False
        tg.start_soon(call, "probes")  # probes "flaky" for 3 s
        await anyio.sleep(0.5)
        await nested_call()  # "flaky" may pass its probe at any moment
        tg.start_soon(call, "waits")
    assert hints == [0.0]
    # "waits" went to "flaky" after its probe, behind "probes": not after "full"'s 30 s
    assert ends["waits"] - started < 3.5
    await pool.aclose()
