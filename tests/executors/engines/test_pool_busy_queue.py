"""A ``pool`` member that answers busy gets no call until its ``Retry-After``, and one
taken out none until it is probed: neither those routed to it since, nor those that were
already waiting at the pool for one of its slots."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from executors.engines import PoolBackend
from orchestrator.errors import BackendHTTPError, BackendUnavailable
from orchestrator.runtime.contracts import BackendFactory, LLMRequest, LLMResponse
from orchestrator.spec.models import ModelConfig
from tests.executors.engines.openai_servers import CompleteOnly

pytestmark = pytest.mark.anyio
Ask = Callable[..., LLMRequest]
Config = Callable[..., ModelConfig]


class Engine(CompleteOnly):
    """Answers busy (HTTP 503, ``Retry-After: retry_after``) for its first ``busy_for``
    seconds, then "ok" from its ``name``; ``asked`` records when each call came."""

    def __init__(self, config: ModelConfig) -> None:
        self.name = str(config.options["name"])
        self.free_at = anyio.current_time() + float(config.options.get("busy_for", 0))
        self.retry_after = config.options.get("retry_after")
        self.asked: list[float] = []

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.asked.append(anyio.current_time())
        await anyio.sleep(0.01)
        if self.name.startswith("down"):
            raise BackendUnavailable(f"{self.name}: connection refused")
        if anyio.current_time() < self.free_at:
            raise BackendHTTPError(f"{self.name}: HTTP 503: the queue is full", status=503,
                                   retry_after_s=self.retry_after)
        return LLMResponse(text=f"ok from {self.name}", prompt_tokens=1,
                           completion_tokens=1, latency_s=0.01)


def engine(name: str, concurrency: int, **options: Any) -> dict[str, Any]:
    return {"backend": "fake", "model": "m", "name": name, "concurrency": concurrency,
            "options": {"name": name, **options}}


def resolve(name: str) -> BackendFactory:
    return Engine


async def test_calls_waiting_for_a_slot_of_a_busy_member_wait_out_its_retry_after(
        ask: Ask, pool_config: Config) -> None:
    pool = PoolBackend(pool_config([engine("a", 1, busy_for=3, retry_after=5)]),
                       resolve=resolve)
    backend = pool.members[0].backend
    assert isinstance(backend, Engine)
    answers: list[str] = []

    async def one(i: int) -> None:
        answers.append((await pool.complete(ask(f"q{i}"))).text)

    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(one, i)
    assert answers == ["ok from a"] * 4
    # the first call was turned away; the three queued behind it waited for the 5 s it
    # asked for, instead of each being sent at once to be turned away in turn
    assert [t for t in backend.asked if t < 5] == [0]
    assert pool.stats()["a"].busy == 1
    await pool.aclose()


async def test_calls_waiting_for_a_busy_member_go_to_a_free_one(
        ask: Ask, pool_config: Config) -> None:
    members = [engine("a", 1, busy_for=100, retry_after=50), engine("b", 4)]
    pool = PoolBackend(pool_config(members, routing="least_loaded"), resolve=resolve)
    answers: list[str] = []

    async def one(i: int) -> None:
        answers.append((await pool.complete(ask(f"q{i}"))).text)

    started = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(one, i)
    assert answers == ["ok from b"] * 6
    assert anyio.current_time() - started < 1
    assert pool.stats()["a"].busy == 1
    await pool.aclose()


async def test_calls_waiting_for_a_slot_of_a_member_taken_out_go_elsewhere(
        ask: Ask, pool_config: Config) -> None:
    members = [engine("down", 1), engine("b", 4)]
    pool = PoolBackend(pool_config(members, routing="least_loaded"), resolve=resolve)
    down = pool.members[0].backend
    assert isinstance(down, Engine)
    answers: list[str] = []

    async def one(i: int) -> None:
        answers.append((await pool.complete(ask(f"q{i}"))).text)

    async with anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(one, i)
    assert answers == ["ok from b"] * 6
    # the call waiting for its slot when it failed was not sent to it after all
    assert len(down.asked) == 1
    assert pool.stats()["down"].failed == 1 and pool.retries == 1
    await pool.aclose()
