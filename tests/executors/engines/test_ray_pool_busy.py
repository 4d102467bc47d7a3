"""A ``ray-engine`` whose engine is a pool all of whose engines are busy: the error comes
back across the actor as :class:`PoolBusy` with its ``Retry-After``, so that a pool whose
member the ``ray-engine`` is backs off from it instead of counting a failure (it came back
as a plain ``BackendError``). Called in this process, as the actor's Ray handle is."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from executors.engines.pool import PoolBusy, is_busy
from executors.engines.ray import EngineActor, RayEngineBackend
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio


class _AllBusy:
    async def complete(self, request: LLMRequest) -> Any:
        raise PoolBusy("pool 'inside': every engine is busy", retry_after_s=2.5)


async def test_a_busy_pool_in_an_actor_is_busy_to_the_caller(
        monkeypatch: pytest.MonkeyPatch) -> None:
    body = EngineActor(ModelConfig(backend="sim-engine", model="llama-3-8b").model_dump_json())
    body.backend = _AllBusy()
    backend = RayEngineBackend(ModelConfig(backend="ray-engine", options={
        "engine": {"backend": "sim-engine", "model": "llama-3-8b"}}))
    fake_ray = SimpleNamespace(exceptions=SimpleNamespace(RayError=RuntimeError))
    actor = SimpleNamespace(complete=SimpleNamespace(remote=body.complete))

    async def started() -> tuple[Any, Any]:
        return fake_ray, actor

    monkeypatch.setattr(backend, "_started", started)
    with pytest.raises(PoolBusy) as info:
        await backend.complete(LLMRequest(messages=[{"role": "user", "content": "hi"}]))
    assert info.value.retry_after_s == 2.5 and is_busy(info.value)
    assert "every engine is busy" in str(info.value)
