"""A run killed while a sub-workflow ran: its own trace says nothing between the
``workflow`` step's ``step_started`` and the kill, but its child run's trace shows the
process was alive and working until the child's last event. A resumed run's
``duration_s`` (``run_finished``, ``ponder show``, ``ponder runs``) counts its earlier
execution up to there, on every store backend. (It counted it up to its own last event,
so a run killed after ten minutes in its sub-workflow said it had run for seconds.)
What ran after the last event of any of its traces cannot be known, and is not counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.runtime.durable import recorded_children, resume
from orchestrator.store import StoreHook, TraceStore
from tests.orchestrator.runtime.test_durable_children import TALK
from tests.store.conftest import recorded_with_child

pytestmark = pytest.mark.anyio

MAIN = "name: main\nsteps:\n  - {id: w, kind: workflow, workflow: talk.yaml}\n"
HOUR = 3600.0
CHILD_S = 600.0  # how long the child worked before the kill


def _at(events: list[Any], shift: float) -> list[Any]:
    return [e.model_copy(update={"ts": e.ts + shift}) for e in events]


async def _killed_in_child(tmp_path: Path) -> tuple[list[Any], list[Any]]:
    """The parent's events up to `w`'s start and its child's up to its `c2`'s success,
    ten minutes later, the process killed then: an hour ago."""
    whole, recorder, _, child_id = await recorded_with_child(tmp_path, MAIN,
                                                             {"talk.yaml": TALK})
    assert whole.ok, whole.error
    parent = await recorder.events(whole.run_id)
    child = await recorder.events(child_id)
    cut = next(e.seq for e in parent if e.kind == "step_started" and e.step_id == "w")
    kept = [e for e in parent if e.seq <= cut]
    child_cut = next(e.seq for e in child if e.kind == "step_succeeded" and e.step_id == "c2")
    child = [e for e in child if e.seq <= child_cut]
    # the child's events spread over its ten minutes, after the parent's last one
    start = kept[-1].ts
    stretched = [e.model_copy(update={"ts": start + CHILD_S * (i + 1) / len(child)})
                 for i, e in enumerate(child)]
    return _at(kept, -HOUR), _at(stretched, -HOUR)


@pytest.mark.parametrize("given", [True, False], ids=["children", "store_hook"])
async def test_a_resumed_run_counts_the_time_its_child_worked(
        tmp_path: Path, trace_store: TraceStore, given: bool) -> None:
    kept, child = await _killed_in_child(tmp_path)
    await trace_store.append(kept)
    await trace_store.append(child)
    resumed = await resume(kept, hooks=[StoreHook(trace_store)],
                           children=recorded_children(trace_store) if given else None)
    assert resumed.ok, resumed.error
    assert CHILD_S <= resumed.duration_s < CHILD_S + 60  # not the hour of downtime
    # the result's duration is the one recorded: it read the clock again after the
    # trace's write, 0.06 s later on a loaded machine (the test allowed 0.05)
    shown = await trace_store.read_run(resumed.run_id)
    assert shown.duration_s == resumed.duration_s
    (info,) = [r for r in await trace_store.list_runs() if r.id == resumed.run_id]
    assert info.duration_s == resumed.duration_s
