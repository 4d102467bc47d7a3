"""A batch that goes on with a run read from the store (``append(..., continues=)``, a
resume's) is written only while the store still holds that run, on every backend:
`ponder gc` deleting the run after a resume had read it made the resume write the rest
of a run whose start was gone (a run listed with no workflow's first events). A store
that never held the run (a resume recorded elsewhere) takes the batch without it."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import anyio
import pytest
import sqlalchemy as sa

from orchestrator.runtime import events as ev
from orchestrator.store import (
    MemoryStore,
    RunNotFound,
    StoredEvent,
    StoreHook,
    TraceStore,
    open_store,
)

pytestmark = pytest.mark.anyio


def _run(run_id: str) -> list[ev.Event]:
    return [ev.RunStarted(run_id=run_id, seq=0, ts=1.0, workflow="w", inputs={}),
            ev.StepStarted(run_id=run_id, seq=1, ts=2.0, step_id="a", step_kind="tool",
                           attempt=1, input={}),
            ev.RunFinished(run_id=run_id, seq=2, ts=3.0, status="cancelled")]


def _resumed(run_id: str, seq: int = 3) -> list[ev.Event]:
    return [ev.RunStarted(run_id=run_id, seq=seq, ts=9.0, workflow="w", inputs={},
                          resumed=True),
            ev.StepStarted(run_id=run_id, seq=seq + 1, ts=9.5, step_id="a", step_kind="tool",
                           attempt=2, input={})]


async def test_a_run_deleted_after_it_was_read_gets_nothing_more(store: TraceStore) -> None:
    await store.append(_run("r1"))
    assert await store.delete_runs(["r1"]) == 1  # `ponder gc`, after the resume read it
    with pytest.raises(RunNotFound) as info:
        await store.append(_resumed("r1"), continues={"r1"})
    assert info.value.run_id == "r1"
    assert str(info.value) == (
        "run 'r1' is no longer in the trace store: it was deleted (by `ponder gc`, say) "
        "after it was read to go on with it; nothing more of it was written")
    assert await store.events("r1") == []
    assert await store.run_info("r1") is None
    assert await store.list_runs() == []


async def test_a_batch_of_several_runs_is_refused_whole(store: TraceStore) -> None:
    await store.append(_run("r1"))
    await store.delete_runs(["r1"])
    with pytest.raises(RunNotFound):
        await store.append([*_run("r2"), *_resumed("r1")], continues=["r1"])
    assert await store.list_runs() == []


async def test_a_stored_run_goes_on(store: TraceStore) -> None:
    await store.append(_run("r1"))
    await store.append(_resumed("r1"), continues={"r1"})
    assert [e.seq for e in await store.events("r1")] == [0, 1, 2, 3, 4]
    info = await store.run_info("r1")
    assert info is not None and info.status == "running"


async def test_runs_of_continues_without_an_event_in_the_batch_are_not_asked_for(
        store: TraceStore) -> None:
    await store.append(_run("r2"), continues={"gone"})
    assert [r.id for r in await store.list_runs()] == ["r2"]


async def test_a_store_that_never_held_the_run_takes_it_without_continues(
        store: TraceStore) -> None:
    """A resume recorded in another store than the one it read (the SDK allows it)."""
    await store.append(_resumed("r1"))
    assert [e.seq for e in await store.events("r1")] == [3, 4]


class _Recording(MemoryStore):
    """A MemoryStore that keeps the ``continues`` of each append."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[set[str]] = []

    async def append(self, events: Sequence[StoredEvent], *,
                     continues: Collection[str] = ()) -> None:
        self.asked.append(set(continues))
        await super().append(events, continues=continues)


async def test_the_hook_asks_for_each_run_until_its_first_batch_is_stored() -> None:
    """Once the resume's run_started is stored the run is running, which gc leaves."""
    store = _Recording()
    await store.append(_run("r1"))
    hook = StoreHook(store)
    hook.continues("r1")
    await hook([])
    await hook(_run("other"))
    await hook(_resumed("r1")[:1])
    await hook(_resumed("r1")[1:])
    assert store.asked[1:] == [set(), {"r1"}, set()]


async def test_the_hook_stops_a_resume_of_a_deleted_run() -> None:
    store = _Recording()
    await store.append(_run("r1"))
    await store.delete_runs(["r1"])
    hook = StoreHook(store, continues=["r1"])
    for _ in range(2):  # refused again: nothing of the run was written
        with pytest.raises(RunNotFound):
            await hook(_resumed("r1"))
    assert await store.events("r1") == []


@pytest.mark.postgres
async def test_on_postgres_a_write_waits_for_a_gc_that_holds_the_run(pg_url: str) -> None:
    """The race itself, in two connections: gc has selected the finished run FOR UPDATE
    (as it does) when the resume writes; the write waits for gc's transaction, then
    finds the run gone and writes nothing."""
    engine = sa.create_engine(pg_url)
    async with await open_store(pg_url) as store:
        await store.append(_run("r1"))
        with engine.connect() as gc:
            gc.execute(sa.text("SELECT id FROM runs WHERE id = 'r1' AND status != 'running' "
                               "FOR UPDATE"))
            outcome: list[BaseException | str] = []

            async def resume() -> None:
                try:
                    await store.append(_resumed("r1"), continues={"r1"})
                    outcome.append("written")
                except RunNotFound as exc:
                    outcome.append(exc)

            def delete() -> None:
                gc.execute(sa.text("DELETE FROM events WHERE run_id = 'r1'"))
                gc.execute(sa.text("DELETE FROM runs WHERE id = 'r1'"))
                gc.commit()

            with anyio.fail_after(30):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(resume)
                    await anyio.sleep(0.5)
                    assert outcome == []  # waiting for gc's lock
                    await anyio.to_thread.run_sync(delete)
        (result,) = outcome
        assert isinstance(result, RunNotFound), result
        assert await store.events("r1") == []
        assert await store.list_runs() == []
    engine.dispose()
