"""A ``workflow`` step whose attempt failed (its child run cut by the step's timeout) and
whose run was then cancelled during the retry back-off: the resumed run's next attempt
starts a new child run; the failed attempt's child stays as it was recorded (cancelled).
On every store backend: the children are found with the store's own query."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.runtime.durable import recorded_children, resume
from orchestrator.runtime.engine import compile_graph, execute
from orchestrator.runtime.registry import Registry
from orchestrator.spec.loader import load_yaml
from orchestrator.store import RunFilter, StoreHook, TraceStore

pytestmark = pytest.mark.anyio

LEAF = """\
name: leaf
inputs:
  x: {type: integer}
steps:
  - {id: l1, kind: tool, tool: slow, args: {value: "${inputs.x}"}}
outputs:
  y: ${steps.l1.output}
"""
MAIN = """\
name: main
steps:
  - id: w
    kind: workflow
    workflow: leaf.yaml
    inputs: {x: 1}
    timeout_s: 0.3
    retry: {max_attempts: 2, initial_backoff_s: 0.2, jitter: 0}
outputs:
  y: ${steps.w.output.y}
"""


def _registry(calls: list[int]) -> Registry:
    registry = Registry.default()

    async def slow(value: int) -> int:
        """Hangs on its first call (past the step's timeout), then answers value + 1."""
        calls.append(value)
        if len(calls) == 1:
            await anyio.sleep(30)
        return value + 1

    registry.add_tool(slow, "slow")
    return registry


async def test_the_attempt_after_a_back_off_cut_by_cancel_starts_a_new_child(
        tmp_path: Path, trace_store: TraceStore) -> None:
    (tmp_path / "leaf.yaml").write_text(LEAF)
    wf = tmp_path / "main.yaml"
    wf.write_text(MAIN)
    calls: list[int] = []
    registry = _registry(calls)
    spec, smap = load_yaml(wf)
    graph = compile_graph(spec, smap, registry=registry, base_dir=tmp_path)
    holder: dict[str, Any] = {}

    async def cancel_in_back_off(batch: Any) -> None:
        if any(e.kind == "step_retrying" for e in batch):
            holder["s"].cancel()

    cut = await execute(graph, {}, registry=registry, source=str(wf),
                        hooks=[StoreHook(trace_store), cancel_in_back_off],
                        on_scheduler=lambda s: holder.__setitem__("s", s))
    assert cut.status == "cancelled"
    events = await trace_store.events(cut.run_id)
    assert [e.kind for e in events if getattr(e, "step_id", None) == "w"][-2:] == [
        "step_retrying", "step_cancelled"]
    (first_child,) = await trace_store.list_runs(RunFilter(parent_run_id=cut.run_id))
    assert first_child.status == "cancelled"
    first_events = await trace_store.events(first_child.id)

    resumed = await resume(events, registry=registry, hooks=[StoreHook(trace_store)],
                           children=recorded_children(trace_store))
    assert resumed.ok and resumed.output == {"y": 2}, resumed.error
    children = await trace_store.list_runs(RunFilter(parent_run_id=cut.run_id))
    assert len(children) == 2
    (second,) = [c for c in children if c.id != first_child.id]
    assert second.status == "succeeded"
    (started,) = [e for e in await trace_store.events(second.id) if e.kind == "run_started"]
    assert (started.parent_step_id, started.parent_attempt) == ("w", 2)
    # the failed attempt's child is as it was recorded: cancelled, nothing added
    assert await trace_store.events(first_child.id) == first_events
    assert len(calls) == 2

