"""`resume` of a run whose sub-workflow was in flight: the recorded child run goes on under
its own id (its succeeded steps are not executed again), a child that had succeeded gives
its recorded output, a failed one was a failed attempt. On every store backend: the
children are found with the store's own query."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from orchestrator.runtime.durable import recorded_children, resume
from orchestrator.runtime.engine import RunResult, compile_graph, execute
from orchestrator.runtime.registry import Registry
from orchestrator.spec.loader import load_yaml
from orchestrator.store import MemoryStore, RunFilter, StoreHook, TraceStore

pytestmark = pytest.mark.anyio


LEAF = """\
name: leaf
inputs:
  x: {type: integer}
steps:
  - {id: l1, kind: tool, tool: count, args: {name: l1, value: "${inputs.x}"}}
  - {id: l2, kind: tool, tool: count, args: {name: l2, value: "${steps.l1.output}"}}
  - {id: l3, kind: tool, tool: count, args: {name: l3, value: "${steps.l2.output}"}}
outputs:
  y: ${steps.l3.output}
"""

MID = """\
name: mid
inputs:
  x: {type: integer}
steps:
  - {id: m1, kind: tool, tool: count, args: {name: m1, value: "${inputs.x}"}}
  - {id: inner, kind: workflow, workflow: leaf.yaml, inputs: {x: "${steps.m1.output}"}}
outputs:
  y: ${steps.inner.output.y}
"""

MAIN = """\
name: main
steps:
  - {id: a, kind: tool, tool: count, args: {name: a, value: 1}}
  - {id: w, kind: workflow, workflow: CHILD, inputs: {x: "${steps.a.output}"}}
  - {id: b, kind: tool, tool: count, args: {name: b, value: "${steps.w.output.y}"}}
outputs:
  b: ${steps.b.output}
"""

SPAWNING = """\
name: spawning
steps:
  - id: s
    kind: spawn
    messages: [10, 20]
    workflow: leaf.yaml
    inputs: {x: "${message}"}
  - {id: b, kind: tool, tool: count, args: {name: b, value: 1}, after: [s]}
outputs:
  s: ${steps.s.output}
"""


class Counting:
    """A registry whose tool ``count`` counts its calls by name (and may fail once)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.fail_next: set[str] = set()
        self.registry = Registry.default()

        def count(name: str, value: int) -> int:
            """Return value + 1."""
            self.calls[name] += 1
            if name in self.fail_next:
                self.fail_next.discard(name)
                raise RuntimeError(f"{name} fails this once")
            return value + 1

        self.registry.add_tool(count, "count")


def _write(tmp_path: Path, child: str = "leaf.yaml", main: str = MAIN) -> Path:
    (tmp_path / "leaf.yaml").write_text(LEAF)
    (tmp_path / "mid.yaml").write_text(MID)
    wf = tmp_path / "main.yaml"
    wf.write_text(main.replace("CHILD", child))
    return wf


async def _run(wf: Path, counting: Counting, store: TraceStore) -> RunResult:
    spec, smap = load_yaml(wf)
    graph = compile_graph(spec, smap, registry=counting.registry, base_dir=wf.parent)
    return await execute(graph, {}, registry=counting.registry, hooks=[StoreHook(store)],
                         source=str(wf))


async def _runs(store: TraceStore) -> dict[str, list[Any]]:
    """Every run's events, by run id."""
    return {r.id: await store.events(r.id) for r in await store.list_runs(limit=1000)}


def _child_of(runs: dict[str, list[Any]], parent: str) -> str:
    (child,) = [rid for rid, evs in runs.items() if evs[0].parent_run_id == parent]
    return child


def _cut_before(events: list[Any], kind: str, step_id: str) -> list[Any]:
    """The events before the first ``kind`` event of ``step_id``."""
    at = next(i for i, e in enumerate(events)
              if e.kind == kind and getattr(e, "step_id", None) == step_id)
    return events[:at]


def _succeeded(events: list[Any]) -> set[str]:
    return {e.step_id for e in events if e.kind == "step_succeeded"}


async def _resume(store: TraceStore, counting: Counting, events: list[Any]) -> RunResult:
    return await resume(events, registry=counting.registry, hooks=[StoreHook(store)],
                        children=recorded_children(store))


def _check_trace(events: list[Any]) -> None:
    seqs = [e.seq for e in events]
    assert seqs == list(range(len(events))), "sequence numbers skip, repeat or go back"
    done = Counter(e.step_id for e in events if e.kind == "step_succeeded")
    assert max(done.values(), default=1) == 1, f"a step succeeded twice: {done}"


async def test_a_child_cut_anywhere_goes_on_under_its_own_id(
        tmp_path: Path, trace_store: TraceStore) -> None:
    store = trace_store
    counting = Counting()
    whole_store = MemoryStore()
    whole = await _run(_write(tmp_path), counting, whole_store)
    assert whole.ok and whole.output == {"b": 6}, whole.error
    runs = await _runs(whole_store)
    parent = runs[whole.run_id]
    child_id = _child_of(runs, whole.run_id)
    child = runs[child_id]
    parent_cut = _cut_before(parent, "step_succeeded", "w")  # `w` in flight
    for n in range(1, len(child) + 1):  # the child cut after each of its events
        where = f"child cut after {child[n - 1].kind} {getattr(child[n - 1], 'step_id', '')}"
        await store.delete_runs([whole.run_id, child_id])
        await store.append(parent_cut + child[:n])
        counting.calls.clear()
        result = await _resume(store, counting, parent_cut)
        assert result.ok and result.output == whole.output, f"{where}: {result.error}"

        children = await store.list_runs(RunFilter(parent_run_id=whole.run_id))
        assert [c.id for c in children] == [child_id], where
        assert children[0].status == "succeeded", where
        after = await store.events(child_id)
        _check_trace(after)
        _check_trace(await store.events(whole.run_id))
        done_before = _succeeded(child[:n])
        assert {s: counting.calls[s] for s in ("l1", "l2", "l3")} == {
            s: 0 if s in done_before else 1 for s in ("l1", "l2", "l3")}, where
        assert (counting.calls["a"], counting.calls["b"]) == (0, 1), where
        starts = [e for e in after if e.kind == "run_started"]
        finished_before = child[n - 1].kind == "run_finished"
        assert len(starts) == (1 if finished_before else 2), where
        assert all(s.parent_run_id == whole.run_id and s.parent_step_id == "w"
                   for s in starts), where
        assert starts[-1].resumed is not finished_before, where
        w_done = next(e for e in await store.events(whole.run_id)
                      if e.kind == "step_succeeded" and e.step_id == "w")
        assert w_done.meta["child_run_id"] == child_id, where


async def test_nested_children_go_on_down_to_the_last(
        tmp_path: Path, trace_store: TraceStore) -> None:
    store = trace_store
    counting = Counting()
    whole_store = MemoryStore()
    whole = await _run(_write(tmp_path, child="mid.yaml"), counting, whole_store)
    assert whole.ok and whole.output == {"b": 7}, whole.error
    runs = await _runs(whole_store)
    mid_id = _child_of(runs, whole.run_id)
    leaf_id = _child_of(runs, mid_id)
    kept = (_cut_before(runs[whole.run_id], "step_succeeded", "w")
            + _cut_before(runs[mid_id], "step_succeeded", "inner")
            + _cut_before(runs[leaf_id], "step_succeeded", "l2"))
    await store.append(kept)
    counting.calls.clear()
    result = await _resume(store, counting, _cut_before(runs[whole.run_id],
                                                        "step_succeeded", "w"))
    assert result.ok and result.output == whole.output, result.error
    assert dict(counting.calls) == {"l2": 1, "l3": 1, "b": 1}
    assert {r.id: r.status for r in await store.list_runs()} == {
        whole.run_id: "succeeded", mid_id: "succeeded", leaf_id: "succeeded"}
    for rid in (whole.run_id, mid_id, leaf_id):
        _check_trace(await store.events(rid))


async def test_a_spawn_run_again_takes_its_children_of_before(
        tmp_path: Path, trace_store: TraceStore) -> None:
    """The spawn in flight runs again (attempt 2, children `s@2[i]`): child `s@2[i]`
    continues the run of `s[i]`, or takes its output when it had succeeded."""
    store = trace_store
    counting = Counting()
    whole_store = MemoryStore()
    whole = await _run(_write(tmp_path, main=SPAWNING), counting, whole_store)
    assert whole.ok, whole.error
    runs = await _runs(whole_store)
    parent = runs[whole.run_id]
    by_step = {evs[0].parent_step_id: rid for rid, evs in runs.items()
               if evs[0].parent_run_id == whole.run_id}
    assert set(by_step) == {"s[0]", "s[1]"}
    first, second = [e.step_id for e in parent
                     if e.kind == "step_succeeded" and e.step_id in by_step]
    # one child in flight past its first step, the other one finished: before and after
    # the parent recorded that
    for cut_at in (first, second):
        parent_cut = _cut_before(parent, "step_succeeded", cut_at)
        await store.delete_runs([r.id for r in await store.list_runs()])
        await store.append(parent_cut + runs[by_step[first]]
                           + _cut_before(runs[by_step[second]], "step_succeeded", "l2"))
        counting.calls.clear()
        result = await _resume(store, counting, parent_cut)
        assert result.ok and result.output == whole.output, result.error
        assert dict(counting.calls) == {"l2": 1, "l3": 1, "b": 1}, cut_at
        children = await store.list_runs(RunFilter(parent_run_id=whole.run_id))
        assert {c.id: c.status for c in children} == {
            rid: "succeeded" for rid in by_step.values()}, cut_at
        (started,) = [e for e in await store.events(by_step[second])
                      if e.kind == "run_started" and e.resumed]
        assert started.parent_step_id == "s@2" + second[1:], cut_at


async def test_a_failed_child_is_a_failed_attempt(
        tmp_path: Path, trace_store: TraceStore) -> None:
    store = trace_store
    counting = Counting()
    counting.fail_next.add("l2")
    whole_store = MemoryStore()
    whole = await _run(_write(tmp_path), counting, whole_store)
    assert not whole.ok
    runs = await _runs(whole_store)
    failed_child = _child_of(runs, whole.run_id)
    assert runs[failed_child][-1].status == "failed"
    # killed after the child failed, before the parent recorded it
    parent_cut = _cut_before(runs[whole.run_id], "step_failed", "w")
    await store.append(parent_cut + runs[failed_child])
    counting.calls.clear()
    result = await _resume(store, counting, parent_cut)
    assert result.ok and result.output == {"b": 6}, result.error
    assert dict(counting.calls) == {"l1": 1, "l2": 1, "l3": 1, "b": 1}
    children = {c.id: c.status for c in
                await store.list_runs(RunFilter(parent_run_id=whole.run_id))}
    assert children.pop(failed_child) == "failed"
    assert list(children.values()) == ["succeeded"]  # a new child, with a new id
    (new_child,) = children
    (started,) = [e for e in await store.events(new_child) if e.kind == "run_started"]
    assert (started.parent_step_id, started.parent_attempt) == ("w", 2)


async def test_without_the_children_a_resume_starts_a_new_child(
        tmp_path: Path) -> None:
    """`resume` called without a way to find the children (as before) still completes."""
    counting = Counting()
    store = MemoryStore()
    whole = await _run(_write(tmp_path), counting, store)
    runs = await _runs(store)
    child_id = _child_of(runs, whole.run_id)
    other = MemoryStore()
    parent_cut = _cut_before(runs[whole.run_id], "step_succeeded", "w")
    await other.append(parent_cut + _cut_before(runs[child_id], "step_succeeded", "l2"))
    result = await resume(parent_cut, registry=counting.registry, hooks=[StoreHook(other)])
    assert result.ok and result.output == whole.output
    assert len(await other.list_runs(RunFilter(parent_run_id=whole.run_id))) == 2


TALK = """\
name: talk
models:
  default: {backend: simulated, options: {time_scale: 0, output_tokens: text,
            responses: [{match: ".", output: "word word word word word word word word"}]}}
steps:
  - {id: c1, kind: llm, prompt: "one"}
  - {id: c2, kind: llm, prompt: "two {{ steps.c1.output }}"}
  - {id: c3, kind: llm, prompt: "three {{ steps.c2.output }}"}
"""


async def test_a_child_that_goes_on_counts_towards_its_parents_budget(
        tmp_path: Path, trace_store: TraceStore) -> None:
    """As a child started afresh does: the parent's token budget bounds it (it ran
    unbounded when resumed)."""
    store = trace_store
    counting = Counting()
    (tmp_path / "talk.yaml").write_text(TALK)
    wf = tmp_path / "main.yaml"
    wf.write_text("name: main\nbudget: {max_tokens: 100000}\nsteps:\n"
                  "  - {id: w, kind: workflow, workflow: talk.yaml}\n")
    whole_store = MemoryStore()
    whole = await _run(wf, counting, whole_store)
    assert whole.ok, whole.error
    runs = await _runs(whole_store)
    child_id = _child_of(runs, whole.run_id)
    child = runs[child_id]
    spent = {e.step_id: e.usage.prompt_tokens + e.usage.completion_tokens
             for e in child if e.kind == "step_succeeded"}
    assert spent["c2"] > spent["c1"]
    # the parent's budget, as recorded: room for c1 and little more
    parent = _cut_before(runs[whole.run_id], "step_succeeded", "w")
    spec = {**parent[0].spec, "budget": {"max_tokens": spent["c1"] + 1}}
    parent[0] = parent[0].model_copy(update={"spec": spec})
    kept = parent + _cut_before(child, "step_started", "c2")
    await store.append(kept)
    result = await _resume(store, counting, parent)
    assert not result.ok
    after = {e.step_id: e for e in await store.events(child_id)
             if e.kind in ("step_succeeded", "step_failed")}
    assert after["c2"].kind == "step_succeeded"  # dispatched before the budget was spent
    assert after["c3"].kind == "step_failed" and "token budget" in after["c3"].error
