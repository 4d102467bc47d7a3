"""What the ``pool`` backend says when no engine could serve a call: the pool, and each
engine with its error (a call that failed on ``max_attempts`` engines named only the last
one's before)."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from executors.engines import PoolBackend
from orchestrator.errors import BackendHTTPError, BackendUnavailable
from orchestrator.runtime.contracts import LLMChunk, LLMRequest, LLMResponse
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio
Ask = Callable[..., LLMRequest]
Config = Callable[..., ModelConfig]


class Broken:
    """Fails every call with HTTP ``status`` (503 is busy, with a Retry-After of 1 s)."""

    def __init__(self, config: ModelConfig) -> None:
        self.name = config.options["name"]
        self.status = int(config.options.get("status", 500))

    async def complete(self, request: LLMRequest) -> LLMResponse:
        await anyio.sleep(0.01)
        raise BackendHTTPError(f"{self.name}: HTTP {self.status}: boom {self.name}",
                               status=self.status, retry_after_s=1)

    async def stream(self, request: LLMRequest) -> object:
        yield LLMChunk("", final=await self.complete(request))

    async def aclose(self) -> None:
        pass


def broken_pool(pool_config: Config, members: dict[str, int], **options: object
                ) -> PoolBackend:
    config = pool_config([{"backend": "broken", "model": "m", "name": name,
                           "options": {"name": name, "status": status}}
                          for name, status in members.items()],
                         routing="least_loaded", **options)
    return PoolBackend(config, resolve=lambda name: Broken)


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_call_that_failed_on_max_attempts_engines_names_each(
        ask: Ask, pool_config: Config, streamed: bool) -> None:
    pool = broken_pool(pool_config, {"a": 500, "b": 502, "c": 500, "d": 500},
                       max_attempts=3)
    with pytest.raises(BackendUnavailable) as info:
        if streamed:
            async for _ in pool.stream(ask("q")):
                pass  # pragma: no cover
        else:
            await pool.complete(ask("q"))
    assert str(info.value) == (
        "pool 'pooled': the call failed on 3 engine(s) (max_attempts 3): "
        "a (BackendHTTPError: a: HTTP 500: boom a); b (BackendHTTPError: b: HTTP 502: boom b); "
        "c (BackendHTTPError: c: HTTP 500: boom c)")
    await pool.aclose()


async def test_busy_answers_are_not_listed_as_failures(ask: Ask, pool_config: Config) -> None:
    pool = broken_pool(pool_config, {"busy": 503, "a": 500, "b": 500}, max_attempts=2)
    with pytest.raises(BackendUnavailable) as info:
        await pool.complete(ask("q"))
    message = str(info.value)
    assert "failed on 2 engine(s)" in message and "busy (" not in message
    await pool.aclose()


async def test_once_every_engine_is_out_the_message_names_each_and_its_last_error(
        ask: Ask, pool_config: Config) -> None:
    pool = broken_pool(pool_config, {"a": 500, "b": 404})
    with pytest.raises(BackendUnavailable):
        await pool.complete(ask("q"))
    with pytest.raises(BackendUnavailable) as info:
        await pool.complete(ask("q"))  # it asks the engine out longest (a), once
    assert str(info.value) == (
        "pool 'pooled': no engine can take the call; engines: "
        "a (tried: BackendHTTPError: a: HTTP 500: boom a), "
        "b (down: BackendHTTPError: b: HTTP 404: boom b)")
    await pool.aclose()
