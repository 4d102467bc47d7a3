"""Requests no engine can honour are refused alike by every backend, before any work."""

from __future__ import annotations

from typing import Any

import pytest

from executors.llm import OpenAIBackend, SimulatedBackend
from orchestrator.errors import ConfigError, is_retryable
from orchestrator.runtime.contracts import LLMBackend, LLMRequest
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio

BAD = [
    ({"max_tokens": 0}, "max_tokens must be at least 1, not 0"),
    ({"max_tokens": -5}, "max_tokens must be at least 1, not -5"),  # -5 tokens were counted
    ({"temperature": -1.0}, "temperature must be from 0 to 2, not -1.0"),
    ({"temperature": 5.0}, "temperature must be from 0 to 2, not 5.0"),
    ({"temperature": float("nan")}, "temperature must be from 0 to 2, not nan"),
    ({"n": 0}, "n must be at least 1, not 0"),
    ({"top_p": 0.0}, "top_p must be above 0 and at most 1, not 0.0"),
    ({"top_p": 1.5}, "top_p must be above 0 and at most 1, not 1.5"),
    ({"top_p": float("nan")}, "top_p must be above 0 and at most 1, not nan"),
]


def make(name: str, port: int) -> LLMBackend:
    if name == "openai":  # nothing listens there: a request sent would be 'cannot reach'
        return OpenAIBackend(ModelConfig(backend="openai", model="m",
                                         base_url=f"http://127.0.0.1:{port}/v1"))
    return SimulatedBackend(ModelConfig(backend="simulated", options={"time_scale": 0}))


@pytest.mark.parametrize("name", ["openai", "simulated"])
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("fields", "problem"), BAD)
async def test_settings_no_engine_honours_are_config_errors(
        name: str, stream: bool, fields: dict[str, Any], problem: str, unused_port: int) -> None:
    backend = make(name, unused_port)
    request = LLMRequest(messages=[{"role": "user", "content": "Hi"}], **fields)
    with pytest.raises(ConfigError) as info:
        if stream:
            async for _ in backend.stream(request):
                pass
        else:
            await backend.complete(request)
    await backend.aclose()
    assert str(info.value) == f"{name} backend: {problem}"
    assert not is_retryable(info.value)
