"""A fan-out in flight when its run was killed, whose child had failed, killed again
while its resumed attempt ran: the second resume still counts the failed child's tokens
in its fan-out's. The first resume's child (``s@2[1]``) fails again with the recorded
error of ``s[1]`` without running, its ``step_failed`` naming that child
(``meta.reused_from``, as a reused success's ``step_succeeded`` does); the second
resume's (``s@3[1]``) counts what ``s[1]`` spent through it. (Its ``step_failed`` named
no earlier child: the fan-out's tokens left ``s[1]``'s out.) On every store backend."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from orchestrator.runtime.durable import recorded_children, resume
from orchestrator.runtime.engine import compile_graph, execute
from orchestrator.runtime.registry import Registry
from orchestrator.spec.loader import load_yaml
from orchestrator.store import MemoryStore, StoreHook, TraceStore

pytestmark = pytest.mark.anyio

# each child pays for an answer, then its tool runs (and fails for 2)
LEAF = """\
name: leaf
models:
  default: {backend: simulated, options: {time_scale: 0, output_tokens: text,
            responses: [{match: ".", output: "word word word word word"}]}}
inputs:
  x: {type: integer}
steps:
  - {id: l0, kind: llm, prompt: "one ${inputs.x}"}
  - {id: l1, kind: tool, tool: count, args: {value: "${inputs.x}"}, after: [l0]}
outputs:
  y: ${steps.l1.output}
"""
SPAWN = """\
name: main
steps:
  - {id: s, kind: spawn, messages: [1, 2, 3], workflow: leaf.yaml, inputs: {x: "${message}"},
     concurrency: 1}
  - {id: v, kind: join, of: s, reducer: concat}
outputs:
  v: ${steps.v.output}
"""


def _registry(calls: Counter[int]) -> Registry:
    registry = Registry.default()

    def count(value: int) -> int:
        """Return value + 1 (fails for 2)."""
        calls[value] += 1
        if value == 2:
            raise ValueError(f"{value} is bad")
        return value + 1

    registry.add_tool(count, "count")
    return registry


async def _cut(recorder: MemoryStore, run_id: str, started: str, store: TraceStore
               ) -> list[Any]:
    """The events of ``run_id`` up to ``started``'s step_started, stored in ``store`` with
    the child runs of ``recorder`` but the one that step ran (the run killed there)."""
    events = await recorder.events(run_id)
    cut = next(e.seq for e in events if e.kind == "step_started" and e.step_id == started)
    kept = [e for e in events if e.seq <= cut]
    await store.append(kept)
    for run in await recorder.list_runs():
        child = await recorder.events(run.id)
        by = [e for e in child if e.kind == "run_started"][-1].parent_step_id
        if run.id != run_id and by != started \
                and not await store.events(run.id):
            await store.append(child)
    return kept


def _fanout_tokens(events: list[Any]) -> Any:
    """The tokens the fan-out ``s`` records it spent (its latest ``step_succeeded``)."""
    return [e for e in events if e.kind == "step_succeeded" and e.step_id == "s"][-1
                                                                                  ].meta["tokens"]


async def test_a_replayed_failure_keeps_its_tokens_on_a_second_resume(
        tmp_path: Path, trace_store: TraceStore) -> None:
    (tmp_path / "leaf.yaml").write_text(LEAF)
    wf = tmp_path / "main.yaml"
    wf.write_text(SPAWN)
    calls: Counter[int] = Counter()
    registry = _registry(calls)
    spec, smap = load_yaml(wf)
    graph = compile_graph(spec, smap, registry=registry, base_dir=tmp_path)
    recorder = MemoryStore()
    whole = await execute(graph, {}, registry=registry, hooks=[StoreHook(recorder)],
                          source=str(wf))
    assert whole.ok, whole.error
    assert _fanout_tokens(await recorder.events(whole.run_id))

    first = await _cut(recorder, whole.run_id, "s[2]", trace_store)
    again = MemoryStore()
    await again.append(await trace_store.events(whole.run_id))
    for run in await trace_store.list_runs():
        if run.id != whole.run_id:
            await again.append(await trace_store.events(run.id))
    once = await resume(first, registry=registry, hooks=[StoreHook(again)],
                        children=recorded_children(again))
    assert once.ok and once.output == whole.output, once.error
    (replayed,) = [e for e in (await again.events(whole.run_id))[len(first):]
                   if e.kind == "step_failed"]
    assert replayed.step_id == "s@2[1]" and replayed.meta == {"reused_from": "s[1]"}

    # killed again, while s@2[2] ran
    final = trace_store
    second = await _cut(again, whole.run_id, "s@2[2]", MemoryStore())
    await final.append(second[len(first):])
    calls.clear()
    twice = await resume(second, registry=registry, hooks=[StoreHook(final)],
                         children=recorded_children(final))
    assert twice.ok and twice.output == whole.output, twice.error
    assert dict(calls) == {3: 1}
    shown = await final.read_run(whole.run_id)
    assert {x.id: x.meta for x in shown.steps}["s@3[1]"] == {"reused_from": "s@2[1]"}
    assert twice.usage == whole.usage
    assert _fanout_tokens(await final.events(whole.run_id)) == _fanout_tokens(
        await recorder.events(whole.run_id))
