"""A resume's events for a run the store no longer holds are refused, on every backend:
`ponder gc` deleting the run after a resume had read it made the resume write the rest
of a run whose first events and row were gone (a run listed without its start). The
batch is not written, and the error says why; a batch that starts a run (an import's)
is written as before."""

from __future__ import annotations

import pytest

from orchestrator.runtime import events as ev
from orchestrator.store import RunNotFound, TraceStore

pytestmark = pytest.mark.anyio


def _run(run_id: str) -> list[ev.Event]:
    return [ev.RunStarted(run_id=run_id, seq=0, ts=1.0, workflow="w", inputs={}),
            ev.StepStarted(run_id=run_id, seq=1, ts=2.0, step_id="a", step_kind="tool", attempt=1,
                           input={})]


def _resumed(run_id: str, seq: int) -> list[ev.Event]:
    return [ev.RunStarted(run_id=run_id, seq=seq, ts=9.0, workflow="w", inputs={},
                          resumed=True),
            ev.StepStarted(run_id=run_id, seq=seq + 1, ts=9.5, step_id="a", step_kind="tool",
                           attempt=2,
                           input={})]


async def test_a_resume_of_a_deleted_run_writes_nothing(store: TraceStore) -> None:
    await store.append(_run("r1"))
    assert await store.delete_runs(["r1"]) == 1
    with pytest.raises(RunNotFound, match="no longer in the trace store") as info:
        await store.append(_resumed("r1", 2))
    assert info.value.run_id == "r1"
    assert await store.events("r1") == []
    assert await store.run_info("r1") is None
    assert [r.id for r in await store.list_runs()] == []


async def test_a_resume_of_a_stored_run_and_a_new_run_are_written(store: TraceStore) -> None:
    await store.append(_run("r1"))
    await store.append(_resumed("r1", 2))
    assert [e.seq for e in await store.events("r1")] == [0, 1, 2, 3]
    # a whole run's events at once, as an import writes them, resumes included
    await store.append([*_run("r2"), *_resumed("r2", 2)])
    info = await store.run_info("r2")
    assert info is not None and info.status == "running"
