"""A call a pool moved off an engine says so in its response's meta (and so in the step's
trace): each engine an earlier attempt failed on or was turned away by, and its error."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import aclosing
from typing import Any

import anyio
import pytest

from executors.engines import PoolBackend, SimEngineBackend
from orchestrator.errors import BackendHTTPError
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.sdk import Workflow
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio
Ask = Callable[..., LLMRequest]
Config = Callable[..., ModelConfig]
SIM = {"backend": "sim-engine", "model": "llama-3-8b"}


class _Full(SimEngineBackend):
    """A sim-engine that answers its first call HTTP 503 (a full queue)."""

    answered_busy = False

    async def _submit(self, request: LLMRequest) -> Any:
        if not self.answered_busy:
            self.answered_busy = True
            raise BackendHTTPError("queue full", status=503)
        return await super()._submit(request)


async def test_an_answer_after_a_failover_names_the_engine_that_failed(
        ask: Ask, pool_config: Config) -> None:
    pool = PoolBackend(pool_config([{**SIM, "name": "a"}, {**SIM, "name": "b"}],
                                   routing="least_loaded"))
    first, _ = pool.members
    first.backend.kill("the GPU fell off the bus")  # type: ignore[attr-defined]
    response = await pool.complete(ask("x", max_tokens=5))
    assert response.meta["engine"] == "b" and response.meta["attempts"] == 2
    assert response.meta["failed_attempts"] == [{
        "engine": "a",
        "error": "BackendUnavailable: sim-engine 'llama-3-8b' is dead: the GPU fell off the bus"}]
    again = await pool.complete(ask("y", max_tokens=5))  # a is out: no failed attempt
    assert "failed_attempts" not in again.meta
    await pool.aclose()


async def test_a_busy_answer_is_named_as_busy(ask: Ask, pool_config: Config) -> None:
    def make(config: ModelConfig) -> SimEngineBackend:  # a is full, b is not
        return _Full(config) if config.options.get("name") == "a" else SimEngineBackend(config)

    pool = PoolBackend(pool_config([{**SIM, "options": {"name": "a"}, "name": "a"},
                                    {**SIM, "options": {"name": "b"}, "name": "b"}],
                                   routing="least_loaded"), resolve=lambda name: make)
    final = None
    async with aclosing(pool.stream(ask("x", max_tokens=5))) as chunks:
        async for chunk in chunks:
            final = chunk.final or final
    assert final is not None and final.meta["engine"] == "b"
    assert final.meta["failed_attempts"] == [
        {"engine": "a", "error": "BackendHTTPError: queue full", "busy": True}]
    await pool.aclose()


async def test_the_steps_trace_records_it() -> None:
    models = {"default": {"backend": "pool", "model": "m", "options": {
        "routing": "least_loaded", "members": [
            {**SIM, "name": "dies", "options": {"die_after_requests": 0}},
            {**SIM, "name": "lives"}]}}}
    wf = Workflow("failover", models=models)
    wf.llm("a", prompt="Say something", max_tokens=20)
    with anyio.fail_after(60):
        result = await wf.run({})
    assert result.ok, result.error
    [step] = result.steps
    assert step.meta["engine"] == "lives"
    [move] = step.meta["failed_attempts"]
    assert move["engine"] == "dies" and "died after 0 requests" in move["error"]
