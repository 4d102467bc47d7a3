"""A resumed run keeps what its steps' recorded failures decided: a step recorded as
failed (its retries spent, or an error no retry helps) fails again without running, and
the steps that needed it are skipped again, so the run ends as an uninterrupted one does.
It was run again: a tool that had refused a charge ran a second time, its dependents ran,
and a run whose uninterrupted execution failed succeeded after a crash and a resume.
Checked on every store backend, for a plain step and for a map's item."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from orchestrator import Workflow
from orchestrator.runtime.durable import resume
from orchestrator.store import MemoryStore, StoreHook, TraceStore

pytestmark = pytest.mark.anyio

FLOW = """\
name: charge
defaults:
  retry: {max_attempts: 2, initial_backoff_s: 0, jitter: 0}
steps:
  - {id: charge, kind: tool, tool: charge, args: {order: 7}}
  - {id: ship, kind: tool, tool: note, args: {what: "ship ${steps.charge.output}"}}
  - {id: flaky, kind: tool, tool: flaky, args: {}}
  - {id: wait, kind: tool, tool: sleep, args: {seconds: 0.2}}
  - {id: long, kind: tool, tool: note, args: {what: long}, after: [wait]}
"""
ITEMS = """\
name: items
steps:
  - id: m
    kind: map
    over: [1, 2, 3]
    step: {kind: tool, tool: charge, args: {order: "${item}"}}
  - {id: after, kind: tool, tool: note, args: {what: "after ${steps.m.output}"}}
"""


def _workflow(text: str, calls: list[str]) -> Workflow:
    wf = Workflow.from_yaml_text(text)

    async def charge(order: int) -> str:
        calls.append(f"charge {order}")
        if order == 3:
            await anyio.sleep(0.2)  # still charging when the others have ended
        if order in (2, 7):
            raise ValueError(f"order {order}: charge refused")
        return f"charged {order}"

    def flaky() -> str:
        calls.append("flaky")
        raise ConnectionError("the payment server is down")  # retryable: 2 attempts

    def note(what: str) -> str:
        calls.append(what)
        return what

    for fn in (charge, flaky, note):
        wf.register_tool(fn)
    return wf


async def _cut_and_resume(text: str, store: TraceStore, cut_before: str
                          ) -> tuple[Any, Any, list[str], list[Any]]:
    """The whole run, then its events up to (not including) the first step event of
    ``cut_before`` resumed as a run killed there would be; the calls the resume made."""
    recorder, whole_calls = MemoryStore(), []
    whole = await _workflow(text, whole_calls).run(hooks=[StoreHook(recorder)])
    events = await recorder.events(whole.run_id)
    cut = next(e.seq for e in events
               if e.kind == "step_succeeded" and e.step_id == cut_before)
    kept = [e for e in events if e.seq < cut]
    await store.append(kept)
    calls: list[str] = []
    resumed = await resume(kept, registry=_workflow(text, calls).registry,
                           hooks=[StoreHook(store)])
    return whole, resumed, calls, kept


async def test_a_failed_step_stays_failed_and_its_dependents_skipped(
        trace_store: TraceStore) -> None:
    whole, resumed, calls, kept = await _cut_and_resume(FLOW, trace_store, "long")
    failed_before = {e.step_id for e in kept if e.kind == "step_failed"}
    assert failed_before == {"charge", "flaky"}  # the cut is after both failed for good
    assert not whole.ok and resumed.status == "failed"
    assert resumed.error == whole.error
    assert calls == ["long"]  # neither charge nor flaky ran again, nor ship
    for steps in (resumed.steps, (await trace_store.read_run(resumed.run_id)).steps):
        by_id = {s.id: s for s in steps}
        assert by_id["charge"].status == "failed" and by_id["charge"].attempts == 1
        assert "charge refused" in (by_id["charge"].error or "")
        assert by_id["flaky"].status == "failed" and by_id["flaky"].attempts == 2
        assert by_id["ship"].status == "skipped"
        assert by_id["long"].status == "succeeded"
    tail = (await trace_store.events(resumed.run_id))[len(kept):]
    assert not [e for e in tail if e.kind == "step_started" and e.step_id != "long"]


async def test_a_maps_failed_item_is_not_run_again(trace_store: TraceStore) -> None:
    whole, resumed, calls, kept = await _cut_and_resume(ITEMS, trace_store, "m[2]")
    assert any(e.kind == "step_failed" and e.step_id == "m[1]" for e in kept)
    assert not whole.ok and resumed.status == "failed" and resumed.error == whole.error
    assert "charge 2" not in calls and "charge 3" in calls  # m[2] was in flight
    assert not [c for c in calls if c.startswith("after")]
