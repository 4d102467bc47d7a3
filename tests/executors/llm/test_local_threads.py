"""The local backend's decode threads when its options give none: half the CPUs the
process may use, at least one. Threads on every CPU decode at the pace of the busiest
one: on a two-CPU machine with other work, two threads took 25 to 30 s for 40 tokens
that one thread decoded in under a second."""

from __future__ import annotations

from pathlib import Path

import pytest

from executors.llm import LocalBackend
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(("cpus", "threads"), [(1, 1), (2, 1), (8, 4)])
async def test_a_model_without_n_threads_decodes_on_half_the_usable_cpus(
        gguf_path: Path, monkeypatch: pytest.MonkeyPatch, cpus: int, threads: int) -> None:
    # the CPUs this process may run on, as a container or `taskset` limits them
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 64)  # the machine's: not the process's
    # an n_ctx of its own, so that this test loads its own model rather than a shared one
    backend = LocalBackend(ModelConfig(backend="local", options={"n_ctx": 256 * (cpus + 4)}))
    response = await backend.complete(LLMRequest(
        messages=[{"role": "user", "content": "Say hi."}], max_tokens=2, temperature=0))
    assert response.completion_tokens == 2
    loaded = backend._model
    assert loaded is not None and loaded.llama.n_threads == threads
    await backend.aclose()
