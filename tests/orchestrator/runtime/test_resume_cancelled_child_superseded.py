"""A run stopped with Ctrl-C while its sub-workflow ran (the child run cancelled with it)
and resumed without ``children=``: the step starts a new child run, and the cancelled one
will never go on, as an interrupted one would not. It is recorded as over (a second
``run_finished``, cancelled, ``superseded_by`` the resumed run, the reason naming it and
the step), so `ponder runs` says why and resuming it says it will not go on, instead of
running it alone. (It stayed plain cancelled, to be resumed.) Its tokens count once. On
every store backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.runtime.contracts import Usage
from orchestrator.runtime.durable import resume
from orchestrator.store import MemoryStore, StoreHook, TraceStore
from tests.orchestrator.runtime.test_resume_abandoned_child_superseded import check_superseded
from tests.orchestrator.runtime.test_resume_cancelled_child_usage import _run, _workflow

pytestmark = pytest.mark.anyio


async def test_a_cancelled_child_abandoned_by_its_parents_resume_is_superseded(
        tmp_path: Path, trace_store: TraceStore) -> None:
    wf = _workflow(tmp_path)
    whole = await _run(wf, MemoryStore())
    stopped = await _run(wf, trace_store, stop_after="c2")
    assert stopped.status == "cancelled"
    (child_id,) = [r.id for r in await trace_store.list_runs()
                   if r.parent_run_id == stopped.run_id]
    cancelled = (await trace_store.events(child_id))[-1]
    assert cancelled.kind == "run_finished" and cancelled.status == "cancelled"
    assert cancelled.usage.completion_tokens > 0

    events = await trace_store.events(stopped.run_id)
    resumed = await resume(events, hooks=[StoreHook(trace_store)])
    assert resumed.ok and resumed.output == whole.output, resumed.error
    # the step's cancelled attempt counted the old child's tokens; the new one all its own
    assert resumed.usage == whole.usage + Usage(cancelled.usage.prompt_tokens,
                                                cancelled.usage.completion_tokens)

    end = await check_superseded(trace_store, child_id, resumed)
    assert end.usage == cancelled.usage  # as it had recorded them


async def test_the_cancelled_runs_below_it_are_superseded_too(
        tmp_path: Path, trace_store: TraceStore) -> None:
    wf = _workflow(tmp_path)
    (tmp_path / "mid.yaml").write_text(
        "name: mid\nsteps:\n  - {id: v, kind: workflow, workflow: talk.yaml}\n")
    wf.write_text("name: main\nsteps:\n  - {id: w, kind: workflow, workflow: mid.yaml}\n")
    stopped = await _run(wf, trace_store, stop_after="c2")
    assert stopped.status == "cancelled"
    runs = await trace_store.list_runs()
    (mid,) = [r.id for r in runs if r.parent_run_id == stopped.run_id]
    (low,) = [r.id for r in runs if r.parent_run_id == mid]

    resumed = await resume(await trace_store.events(stopped.run_id),
                           hooks=[StoreHook(trace_store)])
    assert resumed.ok, resumed.error
    for run_id in (mid, low):
        end = (await trace_store.events(run_id))[-1]
        assert (end.kind, end.status, end.superseded_by) == ("run_finished", "cancelled",
                                                             resumed.run_id)
    assert f"sub-workflow run {mid}" in (await trace_store.events(low))[-1].error
