"""Whose fault an error of llama.cpp is: a ValueError the request's (400), a RuntimeError
the engine's, so that a pool of local engines moves only the latter elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import anyio
import pytest

from executors.engines.pool import is_engine_fault
from executors.llm import LocalBackend
from executors.llm.local import _LoadedModel
from orchestrator.errors import BackendError, BackendHTTPError
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio


class _FailingLlama:
    """A llama whose every call fails with ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def n_ctx(self) -> int:
        return 512

    def create_chat_completion(self, **kwargs: Any) -> Any:
        raise self.error


def _failing(error: Exception) -> LocalBackend:
    backend = LocalBackend(ModelConfig(backend="local", options={"n_threads": 1}))
    backend._model = _LoadedModel(cast(Any, _FailingLlama(error)), anyio.Semaphore(1))
    return backend


def _ask() -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": "Hi"}], max_tokens=4)


async def test_a_runtime_error_of_llama_cpp_stays_the_engines_fault(gguf_path: Path) -> None:
    backend = _failing(RuntimeError("llama_decode returned -3"))
    with pytest.raises(BackendError, match="llama_decode returned -3") as info:
        await backend.complete(_ask())
    assert not isinstance(info.value, BackendHTTPError) and is_engine_fault(info.value)
    assert backend.stats.failed == 1


async def test_a_value_error_of_llama_cpp_is_the_requests_fault(gguf_path: Path) -> None:
    backend = _failing(ValueError("unknown grammar rule"))
    with pytest.raises(BackendHTTPError, match="unknown grammar rule") as info:
        await backend.complete(_ask())
    assert info.value.status == 400 and not is_engine_fault(info.value)
