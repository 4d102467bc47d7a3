"""A pool whose every engine is out, none due for its probe (``probe_after_s``): a call
failed at once without asking any engine. A step's retries on a pool of one engine were
all spent so on a single 5xx: three attempts, one request. Now such a call probes the
engine out longest at once (once per call) and goes to it when it passes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from executors.engines import PoolBackend
from orchestrator.errors import BackendHTTPError, BackendUnavailable
from orchestrator.runtime.contracts import LLMRequest, LLMResponse
from orchestrator.spec.models import ModelConfig
from tests.executors.engines.openai_servers import CompleteOnly

pytestmark = pytest.mark.anyio
Ask = Callable[..., LLMRequest]
Config = Callable[..., ModelConfig]


class Flaky(CompleteOnly):
    """Fails its first ``fail`` calls with an HTTP 500, then answers "ok"; its
    ``health()`` answers ``healthy``."""

    def __init__(self, config: ModelConfig) -> None:
        self.fail = int(config.options.get("fail", 1))
        self.healthy = bool(config.options.get("healthy", True))
        self.calls = 0
        self.checks = 0

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.calls += 1
        await anyio.sleep(0.01)
        if self.calls <= self.fail:
            raise BackendHTTPError("engine: HTTP 500: boom", status=500)
        return LLMResponse(text="ok", prompt_tokens=1, completion_tokens=1, latency_s=0.01)

    async def health(self) -> bool:
        self.checks += 1
        return self.healthy


def _pool(pool_config: Config, n: int = 1, **options: Any) -> tuple[PoolBackend, list[Flaky]]:
    made: list[Flaky] = []

    def make(config: ModelConfig) -> Flaky:
        made.append(Flaky(config))
        return made[-1]

    members = [{"backend": "flaky", "model": "m", "name": f"e{i}", "options": options}
               for i in range(n)]
    return PoolBackend(pool_config(members, routing="least_loaded", probe_after_s=30),
                       resolve=lambda name: make), made


async def test_the_next_call_probes_the_only_engine_at_once(ask: Ask, pool_config: Config
                                                           ) -> None:
    pool, (engine,) = _pool(pool_config)
    with pytest.raises(BackendUnavailable, match="HTTP 500: boom"):
        await pool.complete(ask("q"))
    assert pool.members[0].down_since is not None
    with anyio.fail_after(5):  # not after probe_after_s (30 s)
        answer = await pool.complete(ask("q"))
    assert answer.text == "ok"
    assert (engine.calls, engine.checks) == (2, 1)
    assert pool.members[0].down_since is None


async def test_an_engine_that_fails_its_probe_fails_the_call_with_one_probe(
        ask: Ask, pool_config: Config) -> None:
    pool, engines = _pool(pool_config, n=2, healthy=False, fail=10)
    with pytest.raises(BackendUnavailable):
        await pool.complete(ask("q"))  # both tried, both out
    assert [e.calls for e in engines] == [1, 1]
    with pytest.raises(BackendUnavailable, match="no engine can take the call"):
        await pool.complete(ask("q"))
    # the one out longest was probed, once; the call sent nothing
    assert sorted(e.checks for e in engines) == [0, 1]
    assert [e.calls for e in engines] == [1, 1]


async def test_an_engine_that_passes_its_probe_and_fails_again_is_not_probed_again(
        ask: Ask, pool_config: Config) -> None:
    pool, (engine,) = _pool(pool_config, fail=2)
    with pytest.raises(BackendUnavailable):
        await pool.complete(ask("q"))
    with anyio.fail_after(5), pytest.raises(BackendUnavailable, match="HTTP 500: boom"):
        await pool.complete(ask("q"))  # probed, sent, failed: not probed again
    assert (engine.calls, engine.checks) == (2, 1)


async def test_a_call_probes_one_engine_before_its_time_not_each(
        ask: Ask, pool_config: Config) -> None:
    pool, engines = _pool(pool_config, n=3, fail=10)
    with pytest.raises(BackendUnavailable):
        await pool.complete(ask("q"))  # each tried once, each out
    assert [e.calls for e in engines] == [1, 1, 1]
    with pytest.raises(BackendUnavailable, match="HTTP 500: boom"):
        await pool.complete(ask("q"))
    assert sorted(e.calls for e in engines) == [1, 1, 2]
