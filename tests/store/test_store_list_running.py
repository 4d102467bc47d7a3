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


class _FinishingOnePage:
    """The store, where ``finish`` (a running run) finishes once the first page of runs
    has been read, as a run whose process ends while ``ponder runs`` pages."""

    def __init__(self, store: TraceStore, finish: str) -> None:
        self._store, self._finish, self.pages = store, finish, 0

    async def list_runs(self, filters: RunFilter | None = None, *, limit: int = 50,
                        offset: int = 0) -> list[Any]:
        rows = await self._store.list_runs(filters, limit=limit, offset=offset)
        self.pages += 1
        if self.pages == 1:
            await self._store.append([ev.RunFinished(run_id=self._finish, seq=1, ts=99.0,
                                                     status="failed")])
        return rows

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def test_a_run_that_finishes_between_pages_moves_no_other_past_them(
    store: TraceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_liveness, "_RUNNING_PAGE", 2)
    monkeypatch.setattr(_liveness, "_RUNNING_PAGE_MAX", 2)
    for i in range(6):
        await store.append([ev.RunStarted(run_id=f"gone{i}", seq=0, ts=90.0 - i, workflow="w",
                                          inputs={}, **GONE)])
    paging = _FinishingOnePage(store, "gone0")
    rows, _ = await list_running(paging, RunFilter(), interrupted=True, limit=9)  # type: ignore[arg-type]
    assert paging.pages > 1
    # gone0 is over by the time it is looked at; read by offset, the second page began
    # one run later, and gone2 was never listed
    assert [r.id for r in rows] == [f"gone{i}" for i in range(1, 6)]


async def test_runs_started_at_one_time_across_pages_are_each_listed_once(
    store: TraceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_liveness, "_RUNNING_PAGE", 2)
    monkeypatch.setattr(_liveness, "_RUNNING_PAGE_MAX", 2)
    await store.append([ev.RunStarted(run_id="first", seq=0, ts=81.0, workflow="w",
                                      inputs={}, **GONE)])
    for i in range(5):  # (an import of runs written at one time, say)
        await store.append([ev.RunStarted(run_id=f"tie{i}", seq=0, ts=80.0, workflow="w",
                                          inputs={}, **GONE)])
    await store.append([ev.RunStarted(run_id="last", seq=0, ts=79.0, workflow="w",
                                      inputs={}, **GONE)])
    expected = ["first", *[f"tie{i}" for i in reversed(range(5))], "last"]
    assert (await _ids(store, interrupted=True, limit=20))[0] == expected
    assert (await _ids(store, interrupted=True, limit=3, offset=2))[0] == expected[2:5]
