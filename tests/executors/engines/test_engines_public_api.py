"""The public names of :mod:`executors.engines` are pinned, and importing it loads neither
vLLM nor Ray."""

from __future__ import annotations

import subprocess
import sys

import executors.engines


def test_all_is_pinned() -> None:
    assert executors.engines.__all__ == [
        "POLICIES",
        "EngineCounters",
        "EngineModel",
        "EngineParams",
        "MemberStats",
        "PoolBackend",
        "RayEngineBackend",
        "RayToolExecutor",
        "SimEngineBackend",
        "VLLMBackend",
        "VirtualClockLoop",
        "connect_ray",
        "fake_vllm_api",
        "run_virtual",
        "shutdown_engines",
    ]


def test_every_public_name_is_defined_here() -> None:
    for name in executors.engines.__all__:
        value = getattr(executors.engines, name)
        module = getattr(value, "__module__", "executors.engines")
        assert module.startswith("executors.engines"), name


def test_importing_loads_neither_vllm_nor_ray() -> None:
    code = ("import sys, executors.engines; "
            "print(sorted(m for m in ('vllm', 'ray', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
