"""A run killed while a sub-workflow ran, resumed, and killed again before anything of
it finished: the second resume still counts the time the child worked in the first
execution, after the parent's last event there (its ``duration_s``). The first resume
found that time in the child's trace and records what it counted of the executions
before it (``run_started.ran_s``); the second takes it from there. (It was lost: the
second resume looks only at the execution killed last.) On every store backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.runtime.durable import recorded_children, recording_from_events, resume
from orchestrator.store import MemoryStore, StoreHook, TraceStore
from tests.orchestrator.runtime.test_resume_child_time import CHILD_S, _killed_in_child

pytestmark = pytest.mark.anyio


def _up_to_second_start(events: list[Any], then: int, kind: str, step_id: str | None
                        ) -> list[Any]:
    """``events`` up to the first ``kind`` event (of ``step_id``) from index ``then``."""
    cut = next(i for i, e in enumerate(events) if i >= then and e.kind == kind
               and getattr(e, "step_id", None) == step_id)
    return events[:cut + 1]


async def test_a_run_killed_twice_counts_the_time_its_child_worked_first(
        tmp_path: Path, trace_store: TraceStore) -> None:
    kept, child = await _killed_in_child(tmp_path)
    first = MemoryStore()
    await first.append(kept)
    await first.append(child)
    once = await resume(kept, hooks=[StoreHook(first)], children=recorded_children(first))
    assert once.ok and once.duration_s >= CHILD_S, once.error

    # the first resume killed once it had gone on with the child, nothing of it finished
    parent = _up_to_second_start(await first.events(once.run_id), len(kept),
                                 "step_started", "w")
    child_id = child[0].run_id
    again = _up_to_second_start(await first.events(child_id), len(child),
                                "run_started", None)
    assert parent[-1].attempt == 2
    assert recording_from_events(parent).writer is not None
    await trace_store.append(parent)
    await trace_store.append(again)

    twice = await resume(parent, hooks=[StoreHook(trace_store)],
                         children=recorded_children(trace_store))
    assert twice.ok, twice.error
    assert CHILD_S <= twice.duration_s < CHILD_S + 60  # not the hour of downtime
    shown = await trace_store.read_run(twice.run_id)
    assert shown.duration_s == pytest.approx(twice.duration_s, abs=0.05)
