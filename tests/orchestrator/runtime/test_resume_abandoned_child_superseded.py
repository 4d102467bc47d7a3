"""A run killed while its sub-workflow ran, resumed without ``children=``: the step
starts a new child run, and the one in flight will never go on. It is recorded as over
before the new one starts (``run_finished``, cancelled, ``superseded_by`` the resumed
run, a reason naming it and the step), so it no longer reads as interrupted (`ponder
runs` told to resume it, or the run above it, for good), and resuming it says why it
will not go on instead of running it alone. Its tokens stay counted once. On every store
backend."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import pytest

from orchestrator.runtime.contracts import Usage
from orchestrator.runtime.durable import RunSuperseded, recorded_children, resume
from orchestrator.store import MemoryStore, StoredEvent, StoreHook, TraceStore
from orchestrator.store._liveness import interrupted_runs
from tests.orchestrator.runtime.test_durable_children import TALK
from tests.store.conftest import recorded_with_child

pytestmark = pytest.mark.anyio

MAIN = "name: main\nsteps:\n  - {id: w, kind: workflow, workflow: talk.yaml}\n"


async def _killed_in_child(tmp_path: Path, store: TraceStore) -> tuple[Any, list[Any], str]:
    """The run of MAIN, stored up to `w`'s start with its child up to `c2`'s success (the
    process killed then): the whole run's result, the parent's events, the child's id."""
    whole, recorder, _, child_id = await recorded_with_child(tmp_path, MAIN,
                                                             {"talk.yaml": TALK})
    assert whole.ok, whole.error
    parent = await recorder.events(whole.run_id)
    child = await recorder.events(child_id)
    kept = [e for e in parent if e.seq <= next(
        e.seq for e in parent if e.kind == "step_started" and e.step_id == "w")]
    child = [e for e in child if e.seq <= next(
        e.seq for e in child if e.kind == "step_succeeded" and e.step_id == "c2")]
    await store.append(kept)
    await store.append(child)
    return whole, kept, child_id


async def test_an_abandoned_child_run_is_recorded_superseded(
        tmp_path: Path, trace_store: TraceStore) -> None:
    whole, kept, child_id = await _killed_in_child(tmp_path, trace_store)
    resumed = await resume(kept, hooks=[StoreHook(trace_store)])
    assert resumed.ok, resumed.error
    end = await check_superseded(trace_store, child_id, resumed)
    # the abandoned child's tokens count once, beside the new child's
    assert resumed.usage == whole.usage + Usage(end.usage.prompt_tokens,
                                                end.usage.completion_tokens)


async def check_superseded(trace_store: TraceStore, child_id: str, resumed: Any) -> Any:
    """Check that the child run ``child_id``, which the step 'w' of the run ``resumed``
    abandoned, is recorded over (cancelled, superseded by it), that the step ran a new
    child run, and that resuming the old one says it will not go on.

    :returns: the old child run's last event (its ``run_finished``)."""
    child = await trace_store.events(child_id)
    end = child[-1]
    assert end.kind == "run_finished" and end.status == "cancelled"
    assert end.superseded_by == resumed.run_id
    assert resumed.run_id in end.error and "'w'" in end.error
    (info,) = [r for r in await trace_store.list_runs() if r.id == child_id]
    assert info.status == "cancelled" and info.error == end.error
    assert not await interrupted_runs(trace_store, [info])
    new = [r.id for r in await trace_store.list_runs()
           if r.parent_run_id == resumed.run_id and r.id != child_id]
    assert len(new) == 1  # the step's new child run

    with pytest.raises(RunSuperseded) as raised:
        await resume(child, hooks=[StoreHook(trace_store)],
                     children=recorded_children(trace_store))
    message = str(raised.value)
    assert f"run {child_id}" in message and resumed.run_id in message
    assert "will not go on" in message
    return end


async def test_a_superseded_child_is_not_taken_up_again(
        tmp_path: Path, trace_store: TraceStore) -> None:
    """A resume with children= after one without it had recorded the child superseded
    (and was killed before it wrote anything of its own) starts a new child too."""
    whole, kept, child_id = await _killed_in_child(tmp_path, trace_store)
    from orchestrator.runtime import durable

    rec = durable.recording_from_events(kept)
    runs = durable._store_children([StoreHook(trace_store)])
    assert runs is not None
    await durable._abandon_children(rec, runs, trace_store)
    assert (await trace_store.events(child_id))[-1].kind == "run_finished"

    resumed = await resume(kept, hooks=[StoreHook(trace_store)],
                           children=recorded_children(trace_store))
    assert resumed.ok and resumed.output == whole.output, resumed.error
    after = (await trace_store.events(resumed.run_id))[len(kept):]
    (marker,) = [e for e in after if e.kind == "step_cancelled" and e.step_id == "w"]
    spent = (await trace_store.events(child_id))[-1].usage
    assert marker.usage == spent and spent.completion_tokens > 0  # counted once, there
    (info,) = [r for r in await trace_store.list_runs() if r.id == child_id]
    assert info.status == "cancelled"


class _GcBeforeWriting(MemoryStore):
    """A store where `ponder gc` deletes one run just before the next write to it."""

    doomed = ""

    async def append(self, events: Sequence[StoredEvent], *,
                     continues: Collection[str] = ()) -> None:
        if self.doomed in {e.run_id for e in events}:
            await self.delete_runs([self.doomed])
            self.doomed = ""
        await super().append(events, continues=continues)


async def test_a_child_run_deleted_meanwhile_is_not_written_again(tmp_path: Path) -> None:
    """Its run_finished (superseded) alone was written: a run of one event, no start."""
    store = _GcBeforeWriting()
    _, kept, child_id = await _killed_in_child(tmp_path, store)
    store.doomed = child_id
    resumed = await resume(kept, hooks=[StoreHook(store)])
    assert resumed.ok, resumed.error
    assert not store.doomed  # the resume went to write to it
    assert await store.events(child_id) == []
    assert child_id not in [r.id for r in await store.list_runs()]
