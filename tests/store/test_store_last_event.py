"""A run's last event (the one of highest seq) comes in one read, on every backend: the
viewer found an interrupted run's by reads of one event, doubling then halving, some
2 log2(n) of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.store import RawEvent, SqlStore, StoredEvent, TraceStore, open_store

pytestmark = pytest.mark.anyio


async def test_the_last_event_is_the_one_of_highest_seq(
        store: TraceStore, make_linear_run: Any, make_run: Any) -> None:
    events = make_linear_run("r1", 12)
    del events[10]  # a gap in the seqs (an imported trace's)
    events[-1] = events[-1].model_copy(update={"seq": 40})  # and a wider one
    await store.append(events[6:])  # stored out of order
    await store.append(events[:6])
    await store.append(make_linear_run("r10", 50))  # a longer run whose id starts like it

    last = await store.last_event("r1")
    assert last is not None
    assert last.model_dump() == events[-1].model_dump()
    assert type(last) is type(events[-1])
    assert (await store.events("r1"))[-1].model_dump() == last.model_dump()


async def test_only_a_last_event_after_the_seq_given(
        store: TraceStore, make_linear_run: Any) -> None:
    events = make_linear_run("r1", 8)
    events[-1] = events[-1].model_copy(update={"seq": 20})
    await store.append(events)

    def seq(e: StoredEvent | None) -> int | None:
        return None if e is None else e.seq

    assert seq(await store.last_event("r1", after_seq=6)) == 20
    assert seq(await store.last_event("r1", after_seq=19)) == 20
    for below in (-1, -5, -(2**63), -(10**30)):
        assert seq(await store.last_event("r1", after_seq=below)) == 20, below
    for beyond in (20, 21, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 10**30):
        assert await store.last_event("r1", after_seq=beyond) is None, beyond


async def test_a_run_without_events_has_no_last_event(
        store: TraceStore, make_run: Any) -> None:
    assert await store.last_event("nope") is None  # an empty store
    await store.append(make_run("ab"))
    for run_id in ("nope", "a", "abc", "", "a\x00b", "ab\x00"):
        assert await store.last_event(run_id) is None, run_id
        assert await store.last_event(run_id, after_seq=-1) is None, run_id
    await store.delete_runs(["ab"])
    assert await store.last_event("ab") is None


async def test_an_unknown_kind_comes_back_raw(store: TraceStore) -> None:
    future = RawEvent.model_validate(
        {"run_id": "r1", "seq": 3, "ts": 5.0, "kind": "future_kind", "answer": 42})
    await store.append([future])
    last = await store.last_event("r1")
    assert isinstance(last, RawEvent)
    assert last.model_dump() == future.model_dump()


async def test_a_store_opened_read_only_reads_it(tmp_path: Path, make_linear_run: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ponder.db'}"
    events = make_linear_run("r1", 5)
    async with await open_store(url) as store:
        await store.append(events)
    async with await open_store(url, read_only=True) as reader:
        assert isinstance(reader, SqlStore)
        last = await reader.last_event("r1")
        assert last is not None and last.model_dump() == events[-1].model_dump()
        assert await reader.last_event("r1", after_seq=4) is None
