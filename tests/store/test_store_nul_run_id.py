"""A run id holding a NUL character names no stored run (PostgreSQL's text cannot hold
one, so no backend stores such a run): every read by such an id answers that there is
no such run, alike on every backend, where PostgreSQL's failed the query (a store error)
or took the NUL for U+FFFD (another run)."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.runtime import events as ev
from orchestrator.store import InvalidTrace, RunFilter, RunNotFound, TraceStore

pytestmark = pytest.mark.anyio

NUL_IDS = ["a\x00b", "\x00", "a\x00", "ab\x00"]


@pytest.mark.parametrize("run_id", NUL_IDS, ids=["inside", "alone", "after-prefix", "after-id"])
async def test_every_read_by_an_id_with_a_nul_finds_no_run(
        store: TraceStore, make_run: Any, run_id: str) -> None:
    await store.append(make_run("ab"))
    await store.append(make_run("a\ufffdb", parent_run_id="ab"))  # what PostgreSQL wrote for a NUL
    assert await store.events(run_id) == []
    assert await store.events(run_id, kinds=("run_started",), after_seq=0) == []
    assert await store.events_page(run_id, limit=5) == []
    assert await store.run_info(run_id) is None
    for read in (store.resolve_run_id, store.read_run, store.export_run):
        with pytest.raises(RunNotFound):
            await read(run_id)
    assert await store.list_runs(RunFilter(id_prefix=run_id)) == []
    assert await store.list_runs(RunFilter(parent_run_id=run_id)) == []
    assert await store.delete_runs([run_id]) == 0
    assert await store.delete_runs([run_id, "ab"]) == 1
    assert [r.id for r in await store.list_runs()] == ["a\ufffdb"]


async def test_an_event_whose_run_id_holds_a_nul_is_refused_alike(store: TraceStore) -> None:
    started = ev.RunStarted(run_id="a\x00b", seq=0, ts=1.0, workflow="wf", inputs={})
    other = ev.RunStarted(run_id="ok", seq=0, ts=1.0, workflow="wf", inputs={})
    with pytest.raises(ValueError, match="NUL"):
        await store.append([other, started])
    assert await store.list_runs() == []
    assert await store.events("ok") == []


async def test_a_trace_whose_run_id_holds_a_nul_is_not_imported(store: TraceStore) -> None:
    started = ev.RunStarted(run_id="a\x00b", seq=0, ts=1.0, workflow="wf", inputs={})
    doc = {"run": {"id": "a\x00b"}, "events": [started.model_dump(mode="json")]}
    with pytest.raises(InvalidTrace, match="NUL"):
        await store.import_run(doc)
    assert await store.list_runs() == []
