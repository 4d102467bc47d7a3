"""The ``pool`` backend and busy answers whose ``Retry-After`` asks for no wait at all (0,
a date in the past: 0; a ``ray-engine`` member relays whatever number its engine gave,
negative or NaN too): the call is still bounded by ``busy_wait_s``, and the member is not
asked again and again without a pause."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from executors.engines import PoolBackend
from orchestrator.errors import BackendHTTPError, BackendUnavailable
from orchestrator.runtime.contracts import LLMRequest, LLMResponse
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio
Ask = Callable[..., LLMRequest]
Config = Callable[..., ModelConfig]


class AlwaysFull:
    """A member that answers busy to every call, with ``retry_after`` as its Retry-After."""

    retry_after: float | None = 0.0

    def __init__(self, config: ModelConfig) -> None:
        self.calls = 0

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.calls += 1
        await anyio.sleep(0.01)  # a round trip
        raise BackendHTTPError("engine: HTTP 503: the queue is full", status=503,
                               retry_after_s=AlwaysFull.retry_after)

    async def stream(self, request: LLMRequest) -> Any:
        await self.complete(request)
        yield  # pragma: no cover

    async def aclose(self) -> None:
        pass


@pytest.mark.parametrize("retry_after", [0.0, -5.0, float("nan")])
@pytest.mark.parametrize("streamed", [False, True])
async def test_a_member_busy_with_no_wait_still_fails_the_call_after_busy_wait_s(
        ask: Ask, pool_config: Config, retry_after: float, streamed: bool) -> None:
    AlwaysFull.retry_after = retry_after
    made: list[AlwaysFull] = []

    def make(config: ModelConfig) -> AlwaysFull:
        made.append(AlwaysFull(config))
        return made[-1]

    pool = PoolBackend(pool_config([{"backend": "full", "model": "m"}], busy_wait_s=10,
                                   busy_backoff_s=1, busy_backoff_max_s=2),
                       resolve=lambda name: make)
    started = anyio.current_time()
    with anyio.fail_after(1000), pytest.raises(BackendUnavailable, match="busy_wait_s"):
        if streamed:
            async for _ in pool.stream(ask("q")):
                pass  # pragma: no cover
        else:
            await pool.complete(ask("q"))
    assert anyio.current_time() - started <= 12
    # backed off (1 s, then 2 s) rather than asked a thousand times in 10 s
    assert made[0].calls <= 8
    assert pool.members[0].down_since is None
    await pool.aclose()
