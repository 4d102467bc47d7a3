"""An error of the request itself (a prompt too long for the model's context, a bad
sampling parameter, a schema the engine cannot follow) fails the call at once with the
engine's words: it is not the engine's fault, so the call does not move to another engine
and no engine is taken out. Engines in process (vLLM's, llama.cpp's) say so with Python's
ValueError or TypeError; the sim-engines here do the same."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import aclosing
from typing import Any

import pytest

from executors.engines import PoolBackend, SimEngineBackend
from executors.engines._model import PromptTooLong
from orchestrator.errors import BackendHTTPError, BackendUnavailable, is_retryable
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio
Ask = Callable[..., LLMRequest]
Config = Callable[..., ModelConfig]
SIM = {"backend": "sim-engine", "model": "llama-3-8b"}


class _InProcess(SimEngineBackend):
    """A sim-engine that refuses a request as an engine in process does: a prompt too long
    for its context is its model's ValueError, a temperature it cannot take a TypeError
    (a bad keyword); it counts the requests it was asked."""

    asked = 0

    async def _submit(self, request: LLMRequest) -> Any:
        self.asked += 1
        if request.temperature == 1.5:
            raise TypeError("unexpected keyword argument 'temperatur'")
        prompt = request.messages[-1]["content"]
        if len(prompt) > 100:
            raise PromptTooLong(f"prompt ({len(prompt) // 4}) + max_tokens "
                                f"({request.max_tokens}) exceeds max_model_len (25)")
        return await super()._submit(request)


def _pool(pool_config: Config, engines: int = 2, **options: Any) -> PoolBackend:
    members = [{**SIM, "name": f"e{i}"} for i in range(engines)]
    return PoolBackend(pool_config(members, routing="least_loaded", **options),
                       resolve=lambda name: _InProcess)


def _asked(pool: PoolBackend) -> list[int]:
    return [m.backend.asked for m in pool.members]  # type: ignore[attr-defined]


async def test_a_prompt_too_long_fails_at_once_and_the_engines_stay_in(
        ask: Ask, pool_config: Config) -> None:
    pool = _pool(pool_config)
    with pytest.raises(BackendHTTPError) as info:
        await pool.complete(ask("x" * 400, max_tokens=5))
    error = info.value
    assert error.status == 400 and not is_retryable(error)
    assert str(error) == ("pool 'pooled': engine 'e0' rejected the request: PromptTooLong: "
                          "prompt (100) + max_tokens (5) exceeds max_model_len (25)")
    assert _asked(pool) == [1, 0]  # not moved to e1
    assert all(m.down_since is None and m.stats.failed == 0 for m in pool.members)
    answer = await pool.complete(ask("short", max_tokens=5))
    assert answer.meta["engine"] == "e0" and "failed_attempts" not in answer.meta
    await pool.aclose()


async def test_a_bad_parameter_does_not_take_the_only_engine_out(
        ask: Ask, pool_config: Config) -> None:
    pool = _pool(pool_config, engines=1, max_attempts=1, eject_after=1)
    for _ in range(3):
        with pytest.raises(BackendHTTPError, match="TypeError: unexpected keyword"):
            await pool.complete(ask("short", max_tokens=5, temperature=1.5))
    [member] = pool.members
    assert member.down_since is None and member.stats.failed == 0
    assert (await pool.complete(ask("short", max_tokens=5))).meta["engine"] == "e0"
    await pool.aclose()


async def test_a_streamed_call_fails_at_once_too(ask: Ask, pool_config: Config) -> None:
    pool = _pool(pool_config)
    with pytest.raises(BackendHTTPError, match="rejected the request: PromptTooLong"):
        async with aclosing(pool.stream(ask("x" * 400, max_tokens=5))) as chunks:
            async for _ in chunks:
                pass
    assert _asked(pool) == [1, 0]
    assert all(m.down_since is None for m in pool.members)
    await pool.aclose()


async def test_an_engine_fault_still_moves_the_call(ask: Ask, pool_config: Config) -> None:
    pool = _pool(pool_config)
    pool.members[0].backend.kill("lost")  # type: ignore[attr-defined]
    answer = await pool.complete(ask("short", max_tokens=5))
    assert answer.meta["engine"] == "e1" and pool.members[0].down_since is not None
    with pytest.raises(BackendHTTPError, match="engine 'e1' rejected the request"):
        await pool.complete(ask("x" * 400, max_tokens=5))
    assert pool.members[1].down_since is None
    await pool.aclose()


async def test_a_pool_in_a_pool_passes_the_request_error_on(
        ask: Ask, pool_config: Config) -> None:
    def resolve(name: str) -> Any:
        if name == "pool":
            return lambda config: PoolBackend(config, resolve=resolve)
        return _InProcess

    inner = {"backend": "pool", "model": "inner", "name": "inner", "options": {
        "members": [{**SIM, "name": "i0"}], "shared": False}}
    pool = PoolBackend(pool_config([inner, {**SIM, "name": "e1"}], routing="least_loaded"),
                       resolve=resolve)
    with pytest.raises(BackendHTTPError) as info:
        await pool.complete(ask("x" * 400, max_tokens=5))
    assert info.value.status == 400 and not isinstance(info.value, BackendUnavailable)
    assert str(info.value).startswith("pool 'inner': engine 'i0' rejected the request")
    assert all(m.down_since is None and m.stats.failed == 0 for m in pool.members)
    await pool.aclose()
