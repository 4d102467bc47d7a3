"""A streamed run takes ``run``'s keywords: ``hooks=[StoreHook(store)]`` records it (each
event before the loop reads it, and a loop left early as a cancelled run), under the
``run_id`` given."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator import Workflow
from orchestrator.errors import ConfigError
from orchestrator.store import StoreHook, open_store

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def slow_workflow() -> Workflow:
    async def slow(x: int) -> int:
        await anyio.sleep(1)
        return x

    wf = Workflow("slow")
    wf.tool("a", slow, x=1)
    wf.tool("b", "calc", expression="${steps.a.output} + 1")
    return wf


async def test_a_streamed_run_is_recorded_as_it_is_read() -> None:
    store = await open_store("memory://")
    seen_stored: list[bool] = []
    kinds = []
    async for event in slow_workflow().stream(hooks=[StoreHook(store)], run_id="s1"):
        stored = await store.events("s1")
        seen_stored.append(stored[-1].seq >= event.seq)
        kinds.append(event.kind)
    assert all(seen_stored) and kinds[-1] == "run_finished"
    (info,) = await store.list_runs()
    assert (info.id, info.status) == ("s1", "succeeded")


async def test_a_stream_left_early_is_recorded_as_cancelled(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'runs.db'}")
    async with store:
        async for event in slow_workflow().stream(hooks=[StoreHook(store)], run_id="s2"):
            if event.kind == "step_started":
                break
        gc.collect()
        await anyio.sleep(0.3)  # the loop closes the abandoned generator, which cancels
        kinds = [e.kind for e in await store.events("s2")]
        assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
        (info,) = await store.list_runs()
        assert (info.id, info.status) == ("s2", "cancelled")


async def test_the_context_form_takes_hooks_too() -> None:
    batches: list[Sequence[Any]] = []
    async with slow_workflow().stream(hooks=[batches.append], run_id="s3") as events:
        async for event in events:
            if event.kind == "step_started":
                break
    assert batches and {e.run_id for batch in batches for e in batch} == {"s3"}


async def test_a_hook_given_alone_is_refused_when_the_stream_is_made() -> None:
    with pytest.raises(ConfigError, match=r"hooks: pass a list of hooks, such as "
                                          r"hooks=\[append\]"):
        slow_workflow().stream(hooks=[].append)  # type: ignore[arg-type]
