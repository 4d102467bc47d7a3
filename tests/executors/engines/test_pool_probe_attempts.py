"""A call that an engine taken out is tried again with (its probe, after probe_after_s)
and that fails there goes on to the others as before; that failure is the engine's, not
the call's, and does not count toward the call's max_attempts: with one engine down for
good, a pool of max_attempts 1 failed one call of its users per probe_after_s, though
another engine was up."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from executors.engines import PoolBackend, SimEngineBackend
from orchestrator.errors import BackendUnavailable
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio
Ask = Callable[..., LLMRequest]
Config = Callable[..., ModelConfig]
SIM = {"backend": "sim-engine", "model": "llama-3-8b"}


class _NoHealth(SimEngineBackend):
    """A sim-engine without a health check (as an HTTP server without one): a call is its
    probe."""

    health = None  # type: ignore[assignment]


async def test_a_failed_probe_does_not_spend_the_calls_attempts(
        ask: Ask, pool_config: Config) -> None:
    pool = PoolBackend(pool_config([{**SIM, "name": "a"}, {**SIM, "name": "b"}],
                                   routing="least_loaded", max_attempts=1, probe_after_s=5),
                       resolve=lambda name: _NoHealth)
    down, _ = pool.members
    down.backend.kill("gone")  # type: ignore[attr-defined]
    with pytest.raises(BackendUnavailable, match="failed on 1 engine"):
        await pool.complete(ask("q0", max_tokens=5))  # its one attempt: a, as it fails
    engines = []
    for i in range(1, 4):
        await anyio.sleep(6)  # a is due for its probe: the next call is it
        answer = await pool.complete(ask(f"q{i}", max_tokens=5))
        engines.append(answer.meta["engine"])
        assert answer.meta["failed_attempts"] == [{
            "engine": "a", "probe": True,
            "error": "BackendUnavailable: sim-engine 'llama-3-8b' is dead: gone"}]
    assert engines == ["b", "b", "b"] and down.down_since is not None
    assert down.stats.failed == 4
    await pool.aclose()


async def test_a_call_that_fails_on_every_engine_still_ends(
        ask: Ask, pool_config: Config) -> None:
    pool = PoolBackend(pool_config([{**SIM, "name": "a"}, {**SIM, "name": "b"}],
                                   routing="least_loaded", max_attempts=1, probe_after_s=5),
                       resolve=lambda name: _NoHealth)
    for member in pool.members:
        member.backend.kill("gone")  # type: ignore[attr-defined]
        pool._core.eject(member)
    await anyio.sleep(6)  # both due: the call probes a, then b, and fails
    with pytest.raises(BackendUnavailable, match="no engine can take the call"):
        await pool.complete(ask("q", max_tokens=5))
    assert [m.stats.failed for m in pool.members] == [1, 1]
    await pool.aclose()
