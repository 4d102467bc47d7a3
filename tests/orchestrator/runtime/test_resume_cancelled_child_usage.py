"""A run stopped with Ctrl-C (cancelled, not killed) while a sub-workflow ran: the
``workflow`` step's ``step_cancelled`` counts what the child run had spent by then. On
resume the child run goes on, and its result counts every execution of it: the step's
next attempt pays only what its parent's trace had not counted yet, so the run's total
is the uninterrupted run's and the steps add up to it, on every store backend. (The
resumed step paid the child's first tokens a second time: the run's total was above the
uninterrupted run's by them.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.runtime.contracts import Usage
from orchestrator.runtime.durable import recorded_children, resume
from orchestrator.runtime.engine import RunResult, compile_graph, execute
from orchestrator.runtime.registry import Registry
from orchestrator.spec.loader import load_yaml
from orchestrator.store import MemoryStore, StoreHook, TraceStore
from tests.orchestrator.runtime.test_durable_children import TALK

pytestmark = pytest.mark.anyio

MAIN = "name: main\nsteps:\n  - {id: w, kind: workflow, workflow: talk.yaml}\n"


def _total(usage: Any) -> tuple[int, int]:
    return usage.prompt_tokens, usage.completion_tokens


async def _run(wf: Path, store: TraceStore, stop_after: str | None = None) -> RunResult:
    """A run of ``wf``, cancelled (as by Ctrl-C) once its child's ``stop_after`` step
    succeeded, when given."""
    registry = Registry.default()
    spec, smap = load_yaml(wf)
    graph = compile_graph(spec, smap, registry=registry, base_dir=wf.parent)
    held: dict[str, Any] = {}

    async def stop(batch: Any) -> None:
        if any(e.kind == "step_succeeded" and getattr(e, "step_id", None) == stop_after
               for e in batch):
            held["scheduler"].cancel()

    hooks: list[Any] = [StoreHook(store)] + ([stop] if stop_after else [])
    return await execute(graph, {}, registry=registry, hooks=hooks, source=str(wf),
                         on_scheduler=lambda s: held.__setitem__("scheduler", s))


def _workflow(tmp_path: Path) -> Path:
    (tmp_path / "talk.yaml").write_text(TALK)
    wf = tmp_path / "main.yaml"
    wf.write_text(MAIN)
    return wf


async def test_a_child_cancelled_with_its_run_is_paid_once_when_it_goes_on(
        tmp_path: Path, trace_store: TraceStore) -> None:
    wf = _workflow(tmp_path)
    whole = await _run(wf, MemoryStore())
    assert whole.ok, whole.error

    stopped = await _run(wf, trace_store, stop_after="c2")
    assert stopped.status == "cancelled"
    events = await trace_store.events(stopped.run_id)
    (cancelled,) = [e for e in events if e.kind == "step_cancelled" and e.step_id == "w"]
    assert cancelled.usage.completion_tokens > 0  # what the child had spent by then

    resumed = await resume(events, hooks=[StoreHook(trace_store)],
                           children=recorded_children(trace_store))
    assert resumed.ok and resumed.output == whole.output, resumed.error
    assert resumed.usage == whole.usage
    after = await trace_store.events(resumed.run_id)
    (done,) = [e for e in after if e.kind == "step_succeeded" and e.step_id == "w"]
    child = await trace_store.events(done.meta["child_run_id"])
    assert [e.kind for e in child].count("run_started") == 2  # the same child went on
    # the child's own total counts both its executions; the step's attempts split it
    child_total = Usage(*_total(child[-1].usage))
    assert _total(Usage(*_total(cancelled.usage)) + Usage(*_total(done.usage))) == _total(
        child_total) == _total(whole.usage)
    shown = await trace_store.read_run(resumed.run_id)
    for steps in (resumed.steps, shown.steps):
        w = {s.id: s for s in steps}["w"]
        assert w.attempts == 2
        assert (w.prompt_tokens, w.completion_tokens) == _total(whole.usage)
    assert (shown.prompt_tokens, shown.completion_tokens) == _total(whole.usage)


async def test_a_child_cancelled_twice_is_paid_once(
        tmp_path: Path, trace_store: TraceStore) -> None:
    """Stopped after c1, resumed and stopped again after c2, resumed: each cancelled
    attempt counted what the child spent while it ran; the last pays the rest."""
    wf = _workflow(tmp_path)
    whole = await _run(wf, MemoryStore())
    stopped = await _run(wf, trace_store, stop_after="c1")
    assert stopped.status == "cancelled"
    held: dict[str, Any] = {}

    async def stop(batch: Any) -> None:
        if any(e.kind == "step_succeeded" and getattr(e, "step_id", None) == "c2"
               for e in batch):
            held["scheduler"].cancel()

    again = await resume(await trace_store.events(stopped.run_id),
                         hooks=[StoreHook(trace_store), stop],
                         children=recorded_children(trace_store),
                         on_scheduler=lambda s: held.__setitem__("scheduler", s))
    assert again.status == "cancelled"
    resumed = await resume(await trace_store.events(stopped.run_id),
                           hooks=[StoreHook(trace_store)],
                           children=recorded_children(trace_store))
    assert resumed.ok and resumed.output == whole.output, resumed.error
    assert resumed.usage == whole.usage
    shown = await trace_store.read_run(resumed.run_id)
    w = {s.id: s for s in shown.steps}["w"]
    assert w.attempts == 3 and (w.prompt_tokens, w.completion_tokens) == _total(whole.usage)
