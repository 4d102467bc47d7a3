"""bench/gpu/vllm_check.py's abort check, run against the fake engine: it passes when a
cancelled call leaves no request at the engine, and fails when the engine keeps it."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from executors.engines import VLLMBackend, fake_vllm_api
from executors.engines._hub import SharedObjects
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio
SCRIPT = Path(__file__).resolve().parents[3] / "bench" / "gpu" / "vllm_check.py"


@pytest.fixture
def vllm_check() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("vllm_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["vllm_check"] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("vllm_check", None)


def _backend(**engine: object) -> VLLMBackend:
    return VLLMBackend(ModelConfig(backend="vllm", model="m"),
                       api=fake_vllm_api(step_s=0.05, **engine), shared=SharedObjects())


async def test_the_abort_check_passes_when_the_engine_drops_the_request(
        vllm_check: ModuleType) -> None:
    ok, detail = await vllm_check.abort_check(_backend())
    assert ok, detail
    assert "1 while decoding, 0 after the cancel" in detail


async def test_the_abort_check_fails_when_the_engine_keeps_decoding_it(
        vllm_check: ModuleType) -> None:
    ok, detail = await vllm_check.abort_check(_backend(ignore_abort=True))
    assert not ok
    assert "1 after the cancel" in detail
