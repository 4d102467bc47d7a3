"""A fan-out in flight when its run was killed runs again on resume (attempt 2, children
``s@2[i]``). A child whose namesake of the attempt before (``s[i]``) had failed, and was
recorded so, fails again with its recorded error, as a step that failed does on resume:
it is not run again (no tokens, no tool call), and the join sees the failure it saw. (It
ran again: a resumed spawn called its failed sub-workflow again.) A child's
``step_failed`` is written once its own retry policy gave up; one the run stopped in a
retry back-off of runs again. On every store backend."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from orchestrator.runtime.durable import recorded_children, resume
from orchestrator.runtime.engine import RunResult, compile_graph, execute
from orchestrator.runtime.registry import Registry
from orchestrator.spec.loader import load_yaml
from orchestrator.store import MemoryStore, StoreHook, TraceStore

pytestmark = pytest.mark.anyio

LEAF = """\
name: leaf
inputs:
  x: {type: integer}
steps:
  - {id: l1, kind: tool, tool: count, args: {value: "${inputs.x}"}}
outputs:
  y: ${steps.l1.output}
"""
# one child at a time: the second one fails, the run is killed once the third started
SPAWN = """\
name: main
steps:
  - {id: s, kind: spawn, messages: [1, 2, 3], workflow: leaf.yaml, inputs: {x: "${message}"},
     concurrency: 1}
  - {id: v, kind: join, of: s, reducer: concat}
outputs:
  v: ${steps.v.output}
"""
class Counting:
    """A registry whose tool ``count`` counts its calls by value and fails for 2."""

    def __init__(self) -> None:
        self.calls: Counter[int] = Counter()
        self.registry = Registry.default()

        def count(value: int) -> int:
            """Return value + 1."""
            self.calls[value] += 1
            if value == 2:
                raise ValueError(f"{value} is bad")
            return value + 1

        self.registry.add_tool(count, "count")


async def _killed(tmp_path: Path, main: str, counting: Counting, store: TraceStore
                  ) -> tuple[RunResult, list[Any]]:
    """The whole run of ``main``, and its events up to the third child's start, stored in
    ``store`` with the child runs that had ended by then (the run killed there)."""
    (tmp_path / "leaf.yaml").write_text(LEAF)
    wf = tmp_path / "main.yaml"
    wf.write_text(main)
    spec, smap = load_yaml(wf)
    graph = compile_graph(spec, smap, registry=counting.registry, base_dir=tmp_path)
    recorder = MemoryStore()
    whole = await execute(graph, {}, registry=counting.registry,
                          hooks=[StoreHook(recorder)], source=str(wf))
    events = await recorder.events(whole.run_id)
    cut = next(e.seq for e in events if e.kind == "step_started" and e.step_id == "s[2]")
    kept = [e for e in events if e.seq <= cut]
    await store.append(kept)
    for run in await recorder.list_runs():
        child = await recorder.events(run.id)
        if run.id != whole.run_id and child[0].parent_step_id != "s[2]":
            await store.append(child)
    return whole, kept


async def test_a_recorded_child_failure_is_replayed(
        tmp_path: Path, trace_store: TraceStore) -> None:
    counting = Counting()
    whole, kept = await _killed(tmp_path, SPAWN, counting, trace_store)
    assert whole.ok and whole.output == {"v": [{"y": 2}, {"y": 4}]}, whole.error
    (failed,) = [e for e in kept if e.kind == "step_failed"]
    assert failed.step_id == "s[1]"
    counting.calls.clear()

    resumed = await resume(kept, registry=counting.registry, hooks=[StoreHook(trace_store)],
                           children=recorded_children(trace_store))
    assert resumed.ok and resumed.output == whole.output, resumed.error
    assert dict(counting.calls) == {3: 1}  # only the child in flight ran again
    after = (await trace_store.events(resumed.run_id))[len(kept):]
    (again,) = [e for e in after if e.kind == "step_failed"]
    assert (again.step_id, again.error, again.error_type) == (
        "s@2[1]", failed.error, failed.error_type)
    assert not [e for e in after if e.kind == "step_started" and e.step_id == "s@2[1]"]
    shown = await trace_store.read_run(resumed.run_id)
    assert {s.id: s.status for s in shown.steps}["s@2[1]"] == "failed"

