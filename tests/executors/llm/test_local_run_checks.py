"""A ``local`` model whose ``model_path`` is not a file refuses a run of the SDK before
anything is recorded (the run started, and each of its LLM steps failed building the
backend); ``ponder validate`` and ``ponder run`` report it at its line
(tests/orchestrator/graph/test_model_extras.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import ConfigError, Workflow
from orchestrator.store import StoreHook, open_store

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_missing_model_file_refuses_the_run_before_it_starts(tmp_path: Path) -> None:
    missing = tmp_path / "missing.gguf"
    wf = Workflow("t", models={"default": {"backend": "local",
                                           "options": {"model_path": str(missing)}}})
    wf.llm("a", "hi")
    async with await open_store("memory://") as store:
        with pytest.raises(ConfigError) as caught:
            await wf.run(hooks=[StoreHook(store)])
        assert list(await store.list_runs()) == []
    assert str(caught.value) == (
        f"model 'default': model_path {str(missing)!r} is not a file (give the path of a "
        "GGUF model file; a relative one is read from the folder the run starts in)")
    # run on another backend, the model's options are not its
    async with await open_store("memory://") as store:
        assert (await wf.run(backend="simulated", hooks=[StoreHook(store)])).ok
