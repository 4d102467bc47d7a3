"""Closing a ``pool`` (and the process's shared engines) closes every engine, also when
one of them fails to close: an engine left open holds its GPU."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from executors.engines import PoolBackend
from executors.engines._hub import SharedObjects
from orchestrator.errors import BackendError
from orchestrator.runtime.contracts import LLMRequest, LLMResponse
from orchestrator.spec.models import ModelConfig
from tests.executors.engines.openai_servers import CompleteOnly

pytestmark = pytest.mark.anyio
Config = Callable[..., ModelConfig]


class Engine(CompleteOnly):
    """An engine that records its closing; ``broken`` ones fail to close."""

    closed: list[str] = []

    def __init__(self, config: ModelConfig) -> None:
        self.name = str(config.options["name"])
        self.broken = bool(config.options.get("broken", False))

    async def complete(self, request: LLMRequest) -> LLMResponse:
        return LLMResponse(text="ok", prompt_tokens=1, completion_tokens=1, latency_s=0)

    async def aclose(self) -> None:
        Engine.closed.append(self.name)
        if self.broken:
            raise BackendError(f"{self.name}: shutdown failed")


def engine(name: str, broken: bool = False) -> dict[str, object]:
    return {"backend": "fake", "model": "m", "name": name,
            "options": {"name": name, "broken": broken}}


async def test_every_member_is_closed_when_one_fails_to_close(pool_config: Config) -> None:
    Engine.closed = []
    pool = PoolBackend(pool_config([engine("a"), engine("b", broken=True), engine("c")]),
                       resolve=lambda name: Engine)
    with pytest.raises(BackendError, match="b: shutdown failed"):
        await pool.aclose()
    assert Engine.closed == ["a", "b", "c"]


async def test_every_shared_object_is_closed_when_one_fails_to_close() -> None:
    closed: list[str] = []

    async def close(name: str) -> None:
        closed.append(name)
        if name == "b":
            raise BackendError("b: shutdown failed")

    shared = SharedObjects()
    for name in ("a", "b", "c"):
        shared.acquire(name, lambda name=name: name, close)  # type: ignore[misc]
    with pytest.raises(BackendError, match="b: shutdown failed"):
        await shared.aclose()
    assert closed == ["a", "b", "c"]
    assert "a" not in shared and "c" not in shared
