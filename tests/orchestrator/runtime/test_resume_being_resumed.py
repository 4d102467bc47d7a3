"""`resume` of a run that another process is resuming too, on every store backend: of its
sub-workflow's run (`ponder resume CHILD`, then `ponder resume TOP`), or of the run itself
(two `ponder resume RUN` at once). The resume is refused as a run still running is, and
the run is not recorded as failed: it stays interrupted, to be resumed once the other
process is done. The step that went on with the child used to fail with "run ... is still
running", and the run with it, for good; the second of two resumes of one run said "event
6 of run ... is already stored"."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from orchestrator.runtime import _process
from orchestrator.runtime.durable import (
    ChildRuns,
    RunBeingResumed,
    RunStillRunning,
    SubRunStillRunning,
    recorded_children,
    resume,
)
from orchestrator.store import MemoryStore, StoreHook, TraceStore
from tests.orchestrator.runtime.test_durable_children import (
    Counting,
    _check_trace,
    _child_of,
    _cut_before,
    _run,
    _runs,
    _write,
)

pytestmark = pytest.mark.anyio


def _written_by(events: list[Any], pid: int) -> list[Any]:
    """``events`` with their ``run_started`` written by the process ``pid``."""
    writer = {"writer_host": _process.host_name(), "writer_pid": pid,
              "writer_start": f"{_process._pid_namespace()}|{_process.process_start(pid)}"}
    return [e.model_copy(update=writer) if e.kind == "run_started" else e for e in events]


async def _cut(tmp_path: Path, counting: Counting, child: str = "leaf.yaml"
               ) -> tuple[Any, dict[str, list[Any]], list[Any]]:
    """A run of main.yaml whose sub-workflow step `w` was in flight when it stopped: the
    whole run, its runs' events, and the parent's events kept."""
    whole_store = MemoryStore()
    whole = await _run(_write(tmp_path, child=child), counting, whole_store)
    assert whole.ok, whole.error
    runs = await _runs(whole_store)
    counting.calls.clear()
    return whole, runs, _cut_before(runs[whole.run_id], "step_succeeded", "w")


async def _not_failed(store: TraceStore, run_ids: Sequence[str]) -> None:
    """The runs are still stored as running (interrupted once this process is gone),
    with no step failed and no event written twice."""
    for rid in run_ids:
        events = await store.events(rid)
        _check_trace(events)
        assert not [e for e in events if e.kind in ("run_finished", "step_failed")], rid
    assert {r.id: r.status for r in await store.list_runs()
            if r.id in run_ids} == dict.fromkeys(run_ids, "running")


async def test_a_sub_workflows_run_being_resumed_is_refused_before_anything_runs(
        tmp_path: Path, trace_store: TraceStore,
        other_process: subprocess.Popen[bytes]) -> None:
    store = trace_store
    counting = Counting()
    whole, runs, parent = await _cut(tmp_path, counting)
    child_id = _child_of(runs, whole.run_id)
    pid = other_process.pid
    # `ponder resume CHILD` in another process: it wrote the child's run_started
    await store.append(parent + _written_by(_cut_before(runs[child_id], "step_succeeded",
                                                        "l2"), pid))
    before = {rid: len(await store.events(rid)) for rid in (whole.run_id, child_id)}
    with pytest.raises(SubRunStillRunning) as info:
        await resume(parent, registry=counting.registry, hooks=[StoreHook(store)],
                     children=recorded_children(store))
    assert isinstance(info.value, RunStillRunning)  # `ponder resume`'s run_still_running
    assert str(info.value) == (
        f"sub-workflow run {child_id} of run {whole.run_id} is being resumed by process "
        f"{pid} on {_process.host_name()}; wait for it to finish, then resume run "
        f"{whole.run_id}")
    assert not counting.calls
    assert {rid: len(await store.events(rid)) for rid in before} == before  # nothing written

    other_process.kill()  # the other resume is over (killed): this one goes on
    other_process.wait()
    result = await resume(parent, registry=counting.registry, hooks=[StoreHook(store)],
                          children=recorded_children(store))
    assert result.ok and result.output == whole.output, result.error


async def test_a_run_below_the_sub_workflows_being_resumed_is_refused(
        tmp_path: Path, trace_store: TraceStore,
        other_process: subprocess.Popen[bytes]) -> None:
    """`ponder resume LEAF` of the run two levels down: the top run's resume, which
    would go on with it through `mid`, is refused naming it."""
    store = trace_store
    counting = Counting()
    whole, runs, parent = await _cut(tmp_path, counting, child="mid.yaml")
    mid_id = _child_of(runs, whole.run_id)
    leaf_id = _child_of(runs, mid_id)
    await store.append(parent + _cut_before(runs[mid_id], "step_succeeded", "inner")
                       + _written_by(_cut_before(runs[leaf_id], "step_succeeded", "l2"),
                                     other_process.pid))
    with pytest.raises(SubRunStillRunning, match=f"^sub-workflow run {leaf_id} of run "
                       f"{whole.run_id} is being resumed by process {other_process.pid} "):
        await resume(parent, registry=counting.registry, hooks=[StoreHook(store)],
                     children=recorded_children(store))
    await _not_failed(store, [whole.run_id, mid_id])


class _ReadEarlier:
    """The child runs of a store, each child's events as they were when the resume began
    (``stale``): another process began resuming it just after they were read."""

    def __init__(self, store: TraceStore, stale: dict[str, list[Any]]) -> None:
        self._runs: ChildRuns = recorded_children(store)
        self._stale = stale

    async def children(self, parent_run_id: str) -> dict[tuple[str, int], str]:
        return await self._runs.children(parent_run_id)

    async def events(self, run_id: str) -> Sequence[Any]:
        return self._stale.get(run_id) or await self._runs.events(run_id)


async def test_a_sub_workflows_run_resumed_meanwhile_stops_the_run_unfailed(
        tmp_path: Path, trace_store: TraceStore,
        other_process: subprocess.Popen[bytes]) -> None:
    """The other process wrote the child's run_started after this resume read it: the
    child's first batch of events cannot be stored (it holds that seq), and the run stops
    there, neither it nor its step recorded as failed; its resume goes on later."""
    store = trace_store
    counting = Counting()
    whole, runs, parent = await _cut(tmp_path, counting)
    child_id = _child_of(runs, whole.run_id)
    child = _cut_before(runs[child_id], "step_succeeded", "l2")
    await store.append(parent + child)
    # the other process's resume of the child: its run_started, once read
    again = _written_by([runs[child_id][0]], other_process.pid)[0].model_copy(
        update={"seq": len(child), "resumed": True})
    await store.append([again])
    with pytest.raises(SubRunStillRunning, match=f"^sub-workflow run {child_id} of run "
                       f"{whole.run_id} is being resumed by "):
        await resume(parent, registry=counting.registry, hooks=[StoreHook(store)],
                     children=_ReadEarlier(store, {child_id: child}))
    await _not_failed(store, [whole.run_id, child_id])
    assert not counting.calls


async def test_a_sub_workflows_run_started_meanwhile_stops_the_run_unfailed(
        tmp_path: Path, trace_store: TraceStore,
        other_process: subprocess.Popen[bytes]) -> None:
    """As above, the other process's run_started read by the step that goes on with the
    child (after the check before the run): the child is not run here, the run stops."""
    store = trace_store
    counting = Counting()
    whole, runs, parent = await _cut(tmp_path, counting)
    child_id = _child_of(runs, whole.run_id)
    child = _cut_before(runs[child_id], "step_succeeded", "l2")
    await store.append(parent + _written_by(child, other_process.pid))

    class LiveOnSecondRead(_ReadEarlier):
        reads = 0

        async def events(self, run_id: str) -> Sequence[Any]:
            if run_id == child_id:
                self.reads += 1
                if self.reads == 1:  # the check before the run: not yet resumed there
                    return child
            return await super().events(run_id)

    with pytest.raises(SubRunStillRunning, match=f"^sub-workflow run {child_id} of run "
                       f"{whole.run_id} is being resumed by process {other_process.pid} "):
        await resume(parent, registry=counting.registry, hooks=[StoreHook(store)],
                     children=LiveOnSecondRead(store, {}))
    await _not_failed(store, [whole.run_id])
    assert not counting.calls


async def test_a_run_another_process_resumes_at_the_same_time(
        tmp_path: Path, trace_store: TraceStore,
        other_process: subprocess.Popen[bytes]) -> None:
    """Both read the run interrupted; the other one's run_started was stored first."""
    store = trace_store
    counting = Counting()
    whole_store = MemoryStore()
    whole = await _run(_write(tmp_path), counting, whole_store)
    events = (await _runs(whole_store))[whole.run_id]
    kept = _cut_before(events, "step_succeeded", "a")
    pid = other_process.pid
    theirs = _written_by([kept[0]], pid)[0].model_copy(update={"seq": len(kept),
                                                               "resumed": True})
    await store.append([*kept, theirs])
    counting.calls.clear()
    with pytest.raises(RunBeingResumed) as info:
        await resume(kept, registry=counting.registry, hooks=[StoreHook(store)],
                     children=recorded_children(store))
    assert isinstance(info.value, RunStillRunning)  # `ponder resume`'s run_still_running
    assert str(info.value) == (
        f"run {whole.run_id} is being resumed by process {pid} on {_process.host_name()}, "
        "which started resuming it at the same time as this command; wait for it to "
        f"finish (`ponder show {whole.run_id}` shows the run)")
    assert not counting.calls
    assert len(await store.events(whole.run_id)) == len(kept) + 1  # nothing of this one

    # without a way to read the run again, the process goes unnamed
    with pytest.raises(RunBeingResumed, match=f"^run {whole.run_id} is being resumed by "
                       "another process, "):
        await resume(kept, registry=counting.registry, hooks=[StoreHook(store)])
