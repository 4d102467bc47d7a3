"""The first read of a run pauses the garbage collector (what it folds holds no cycle),
but other requests' cycles are not left uncollected until the read ends."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest
from viewer_traces import CountingReader, big_trace

from orchestrator.store import StoredEvent, TraceStore
from orchestrator.viewer import _cache
from orchestrator.viewer._cache import RunCache
from tests.store.conftest import store, store_url  # noqa: F401  (every backend)

pytestmark = pytest.mark.anyio


class _Cycle:
    def __init__(self) -> None:
        self.me = self


class _BusyNeighbour(CountingReader):
    """A reader over which, while the first page is read, another request leaves a
    reference cycle behind; records at each later page whether it is still there."""

    def __init__(self, over: Any) -> None:
        super().__init__(over)
        self.garbage: weakref.ref[_Cycle] | None = None
        self.alive: list[bool] = []
        self.collector_on: list[bool] = []

    async def events_page(self, run_id: str, *, after_seq: int | None = None,
                          limit: int) -> list[StoredEvent]:
        if self.garbage is None:
            self.garbage = weakref.ref(_Cycle())  # freed only by a collection
        else:
            self.alive.append(self.garbage() is not None)
        self.collector_on.append(gc.isenabled())
        return await super().events_page(run_id, after_seq=after_seq, limit=limit)


async def test_a_long_read_collects_young_cycles_between_pages(
    store: TraceStore, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    # The collector stayed off for the whole read, its waits on the store included:
    # a cycle made by another request meanwhile lived until the read ended.
    monkeypatch.setattr(_cache, "READ_PAGE", 100)
    monkeypatch.setattr(_cache, "GC_BREATHE_S", 0.0, raising=False)  # each page: 1 s
    await store.append(big_trace("big", 300).events)  # 905 events: 10 pages
    reader = _BusyNeighbour(store)
    started: list[int] = []

    def note(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started.append(info["generation"])

    gc.collect()
    gc.callbacks.append(note)
    try:
        entry = await RunCache(reader).get("big")
    finally:
        gc.callbacks.remove(note)
    assert entry.n_events == 905 and len(reader.alive) == 9
    assert reader.alive[0] is False  # collected after the first page, not at the end
    assert not any(reader.collector_on)  # the read itself runs with the collector paused
    assert set(started) <= {0}, started  # the young generation only: what the fold
    assert gc.isenabled()                # keeps is not scanned again and again
