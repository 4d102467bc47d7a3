"""An engine that cannot start for a reason of its own (not memory) is said in one line,
in vLLM's words, also where vLLM wrote them on several."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from executors.engines import PoolBackend, VLLMBackend, fake_vllm_api
from executors.engines._hub import SharedObjects
from orchestrator.errors import BackendError, BackendUnavailable
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio
Ask = Callable[..., LLMRequest]


def _vllm(config: ModelConfig) -> VLLMBackend:
    return VLLMBackend(config, api=fake_vllm_api(start_error="no_model"),
                       shared=SharedObjects())


async def test_a_model_vllm_refuses_is_one_line_naming_it(ask: Ask) -> None:
    b = _vllm(ModelConfig(backend="vllm", model="no/such-model"))
    with pytest.raises(BackendError) as info:
        await b.complete(ask("x"))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("vllm:no/such-model: the engine could not start: ValueError: "
                              "1 validation error for ModelConfig Value error, Invalid "
                              "repository ID or local directory specified: 'no/such-model'. "
                              "Please verify")
    assert "not enough GPU memory" not in message


async def test_a_pool_names_it_in_one_line_too(ask: Ask) -> None:
    pool = PoolBackend(ModelConfig(backend="pool", options={"shared": False, "members": [
        {"backend": "vllm", "model": "no/such-model", "name": "gpu0"}]}),
        resolve=lambda name: _vllm)
    with pytest.raises(BackendUnavailable) as info:
        await pool.complete(ask("x"))
    assert "\n" not in str(info.value) and "Invalid repository ID" in str(info.value)
    await pool.aclose()
