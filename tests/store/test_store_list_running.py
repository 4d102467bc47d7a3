"""Running runs narrowed to the interrupted ones (or the live ones) before a page is
cut, on every backend: a page of running runs narrowed afterwards missed the
interrupted runs past it."""

from __future__ import annotations

import os
from typing import Any

import pytest

from orchestrator.runtime import events as ev
from orchestrator.runtime._process import host_name, writer_fields
from orchestrator.store import RunFilter, TraceStore, _liveness
from orchestrator.store._liveness import list_running

pytestmark = pytest.mark.anyio

# this process's id with another start: a writer known to be gone
GONE: dict[str, Any] = {"writer_host": host_name(), "writer_pid": os.getpid(),
                        "writer_start": "another-boot:1"}


async def _seed(store: TraceStore) -> None:
    """Newest first: live0..live4, then gone0..gone2, with a finished run and another
    workflow's interrupted run among them."""

    def started(run_id: str, ts: float, writer: dict[str, Any], wf: str = "w") -> ev.RunStarted:
        return ev.RunStarted(run_id=run_id, seq=0, ts=ts, workflow=wf, inputs={},
                             **writer)

    for i in range(5):
        await store.append([started(f"live{i}", 100.0 - i, writer_fields())])
    await store.append([started("other", 94.5, GONE, wf="x")])
    await store.append([started("done", 94.2, GONE),
                        ev.RunFinished(run_id="done", seq=1, ts=95.0, status="failed")])
    for i in range(3):
        await store.append([started(f"gone{i}", 90.0 - i, GONE)])


async def _ids(store: TraceStore, *, interrupted: bool, limit: int, offset: int = 0,
               workflow: str | None = "w") -> tuple[list[str], set[str]]:
    rows, found = await list_running(store, RunFilter(workflow=workflow),
                                     interrupted=interrupted, limit=limit, offset=offset)
    return [r.id for r in rows], found


async def test_interrupted_runs_past_a_page_of_live_ones_are_found(store: TraceStore) -> None:
    await _seed(store)
    assert await _ids(store, interrupted=True, limit=2) == (["gone0", "gone1"], {"gone0", "gone1"})
    assert await _ids(store, interrupted=True, limit=2, offset=2) == (["gone2"], {"gone2"})
    assert await _ids(store, interrupted=True, limit=2, offset=3) == ([], set())
    assert await _ids(store, interrupted=True, limit=0) == ([], set())
    assert (await _ids(store, interrupted=True, limit=9, workflow=None))[0] == [
        "other", "gone0", "gone1", "gone2"]
    assert await _ids(store, interrupted=False, limit=2, offset=4) == (["live4"], set())
    assert (await _ids(store, interrupted=False, limit=9))[0] == [f"live{i}" for i in range(5)]


async def test_the_running_runs_are_read_page_after_page(
    store: TraceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _seed(store)
    monkeypatch.setattr(_liveness, "_RUNNING_PAGE", 2)
    monkeypatch.setattr(_liveness, "_RUNNING_PAGE_MAX", 2)
    assert (await _ids(store, interrupted=True, limit=2, offset=1))[0] == ["gone1", "gone2"]
    assert (await _ids(store, interrupted=False, limit=1, offset=3))[0] == ["live3"]
