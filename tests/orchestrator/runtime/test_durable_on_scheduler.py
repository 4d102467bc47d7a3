"""`resume` and `replay` hand their run's scheduler to ``on_scheduler``, as
`Workflow.run` does: its ``cancel()`` ends the run as cancelled, recorded so (the same
events as a cancelled run's), and the call returns the run's result. They took no such
callback: `ponder resume` and `ponder replay` could stop their run only by cancelling
it from outside, and read how it ended back from the store. On every store backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.runtime.durable import replay, resume
from orchestrator.store import StoreHook, TraceStore

pytestmark = pytest.mark.anyio

WAITS = """\
name: waits
inputs:
  seconds: {type: number}
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "1 + 1"}}
  - {id: w, kind: tool, tool: sleep, args: {seconds: "${inputs.seconds}"}, after: [a]}
outputs:
  w: ${steps.w.output}
"""


class CancelAt:
    """Cancels the run it is handed (``started``, an ``on_scheduler``) through its
    scheduler once step ``step_id`` has started (``hook``)."""

    def __init__(self, step_id: str) -> None:
        self.step_id = step_id
        self.scheduler: Any = None

    def started(self, scheduler: Any) -> None:
        self.scheduler = scheduler

    async def hook(self, events: Sequence[Any]) -> None:
        if any(e.kind == "step_started" and e.step_id == self.step_id for e in events):
            self.scheduler.cancel()


def _ending(events: Sequence[Any], after: int) -> list[tuple[Any, ...]]:
    """How an execution ended: its events from the ``step_started`` of `w` after seq
    ``after`` on, as (kind, step, reason or status)."""
    start = next(e.seq for e in events if e.seq > after and e.kind == "step_started"
                 and e.step_id == "w")
    return [(e.kind, getattr(e, "step_id", None),
             getattr(e, "reason", None) or getattr(e, "status", None))
            for e in events if e.seq >= start]


async def _run(tmp_path: Path, store: TraceStore, seconds: float,
               stop: CancelAt | None = None) -> Any:
    wf_file = tmp_path / "waits.yaml"
    wf_file.write_text(WAITS)
    hooks: list[Any] = [StoreHook(store)] + ([stop.hook] if stop else [])
    return await Workflow.from_yaml(wf_file).run(
        {"seconds": seconds}, hooks=hooks, on_scheduler=stop.started if stop else None)


async def test_resume_is_cancelled_through_its_scheduler(tmp_path: Path,
                                                         trace_store: TraceStore) -> None:
    ran = await _run(tmp_path, trace_store, 60, CancelAt("w"))
    assert ran.status == "cancelled"
    before = await trace_store.events(ran.run_id)

    stop = CancelAt("w")
    resumed = await resume(before, hooks=[StoreHook(trace_store), stop.hook],
                           on_scheduler=stop.started)
    assert stop.scheduler is not None
    assert (resumed.run_id, resumed.status) == (ran.run_id, "cancelled")
    assert {s.id: s.status for s in resumed.steps} == {"a": "succeeded", "w": "cancelled"}
    after = await trace_store.events(ran.run_id)
    assert after[-1].kind == "run_finished" and after[-1].status == "cancelled"
    # recorded as the cancelled run was
    assert _ending(after, before[-1].seq) == _ending(before, -1) == [
        ("step_started", "w", None), ("step_cancelled", "w", "run cancelled"),
        ("run_finished", None, "cancelled")]


async def test_a_fork_is_cancelled_through_its_scheduler(tmp_path: Path,
                                                         trace_store: TraceStore) -> None:
    ran = await _run(tmp_path, trace_store, 0)
    assert ran.ok, ran.error
    stop = CancelAt("w")
    fork = await replay(await trace_store.events(ran.run_id), from_step="w",
                        inputs={"seconds": 60}, hooks=[StoreHook(trace_store), stop.hook],
                        on_scheduler=stop.started)
    assert stop.scheduler is not None
    assert fork.status == "cancelled" and fork.run_id != ran.run_id
    assert {s.id: s.status for s in fork.steps} == {"a": "succeeded", "w": "cancelled"}
    cancelled = await _run(tmp_path, trace_store, 60, CancelAt("w"))
    assert _ending(await trace_store.events(fork.run_id), -1) == _ending(
        await trace_store.events(cancelled.run_id), -1)
    assert (await trace_store.read_run(ran.run_id)).status == "succeeded"


async def test_a_replay_is_cancelled_through_its_scheduler(tmp_path: Path,
                                                           trace_store: TraceStore) -> None:
    """A replay serves every step from the trace; cancelled as its first step starts,
    it ends there."""
    ran = await _run(tmp_path, trace_store, 0)
    stop = CancelAt("a")
    again = await replay(await trace_store.events(ran.run_id),
                         hooks=[StoreHook(trace_store), stop.hook], on_scheduler=stop.started)
    assert stop.scheduler is not None
    assert again.status == "cancelled"
    assert (await trace_store.read_run(again.run_id)).status == "cancelled"
