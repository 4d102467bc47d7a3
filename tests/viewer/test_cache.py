"""The viewer's summaries of recently viewed runs: read a page at a time, topped up."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from viewer_traces import CountingReader, big_trace, research_trace

from orchestrator.store import MemoryStore, RunNotFound, fold_events
from orchestrator.viewer import _cache, graph_of
from orchestrator.viewer._cache import RunCache

pytestmark = pytest.mark.anyio


async def test_the_cache_reads_only_new_events() -> None:
    store = MemoryStore()
    events = research_trace().events
    await store.append(events[:10])
    reader = CountingReader(store)
    cache = RunCache(reader, max_runs=2)
    entry = await cache.get("research-1")
    assert (entry.n_events, entry.last_seq, entry.finished) == (10, 9, False)
    await store.append(events[10:])
    entry = await cache.get("research-1")
    assert entry.n_events == len(events) and entry.finished
    # from the last event read on: it comes back while the run is stored (not deleted)
    assert reader.calls == [("research-1", None), ("research-1", 8)]
    assert entry.headline().status == "succeeded"
    with pytest.raises(RunNotFound):
        await cache.get("nope")


async def test_a_run_is_read_a_page_at_a_time_and_no_event_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_cache, "READ_PAGE", 100)
    store = MemoryStore()
    events = big_trace("big", 300).events  # 905 events
    await store.append(events)
    reader = CountingReader(store)
    cache = RunCache(reader)
    light = await cache.get("big")
    assert reader.whole == [] and set(reader.pages) == {100}
    assert [after for _, after in reader.calls] == [None, *range(99, 905, 100)]
    assert not any(isinstance(v, list) and len(v) >= 100 for v in vars(light).values())
    whole = fold_events(events)
    assert light.headline() == whole.model_copy(update={"steps": []})
    assert light.graph() == graph_of(events)
    with pytest.raises(RuntimeError, match="without its steps"):
        light.record()
    # the steps are folded once asked for: the run is read again, from its first event
    reader.calls.clear()
    full = await cache.get("big", steps=True)
    assert reader.calls[0] == ("big", None) and full.record() == whole
    assert (await cache.get("big")) is full and full.graph() == graph_of(events)


async def test_the_cache_forgets_the_least_recently_used_run() -> None:
    store = MemoryStore()
    for rid in ("r1", "r2", "r3"):
        await store.append(research_trace(rid).events)
    reader = CountingReader(store)
    cache = RunCache(reader, max_runs=2)
    for rid in ("r1", "r2", "r1", "r3", "r1", "r2"):
        await cache.get(rid)
    # r2 was dropped when r3 came, so it is read in full again
    assert [c for c in reader.calls if c[1] is None] == [("r1", None), ("r2", None),
                                                         ("r3", None), ("r2", None)]


async def test_a_run_is_read_and_folded_without_garbage_collections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What a fold keeps holds no cycle; each collection during a long read scanned ever
    # more of it, for nothing: half the CPU of a first read of 200,000 events.
    monkeypatch.setattr(_cache, "READ_PAGE", 100)
    store = MemoryStore()
    await store.append(big_trace("big", 1000).events)
    reader = CountingReader(store)
    cache = RunCache(reader)
    started: list[int] = []

    def note(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started.append(info["generation"])

    gc.collect()
    gc.callbacks.append(note)
    try:
        entry = await cache.get("big", steps=True)
        read = list(started)
        graph, record = entry.graph(), entry.record()  # a node, a record per step
    finally:
        gc.callbacks.remove(note)
    assert len(reader.pages) > 10 and record.status == "succeeded" and len(graph) == 1001
    # at most the one that the first allocation after the read starts
    assert read in ([], [0])
    assert len(started) <= 3, started  # and after each of the other two
    assert gc.isenabled()
