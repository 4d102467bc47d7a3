"""A resumed run that ends shows no step still open: a step the stopped execution left in
flight (or added, not started) that the resumed one does not run again under its id -- a
plan's action whose plan ran again, a fan-out's sample whose fan-out did -- is recorded as
cancelled (``superseded``) before ``run_finished``, the same in ``RunResult.steps``, in
``ponder show`` and the viewer (the store's fold), on every store backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator import Workflow
from orchestrator.runtime.durable import resume
from orchestrator.store import MemoryStore, StoreHook, TraceStore
from tests.planners.test_resume import _agot, _thoughts

pytestmark = pytest.mark.anyio

OPEN = {"pending", "scheduled", "running", "retrying"}


def _open_steps(steps: Sequence[Any]) -> dict[str, str]:
    return {s.id: s.status for s in steps if s.status in OPEN}


async def _resume_into(store: TraceStore, kept: list[Any], registry: Any = None) -> Any:
    await store.append(kept)
    return await resume(kept, registry=registry, hooks=[StoreHook(store)])


async def test_a_thought_in_flight_whose_plan_ran_again_reads_as_superseded(
        trace_store: TraceStore) -> None:
    """AGoT cut while its thought `g__t2` ran: the resumed plan goes on as `g__a2_t2`;
    the old `g__t2` reads cancelled (superseded), with what its cut attempt paid."""
    recorder = MemoryStore()
    whole = await _agot(_thoughts()).run(hooks=[StoreHook(recorder)])
    events = await recorder.events(whole.run_id)
    cut = next(e.seq for e in events if e.kind == "plan_call" and e.step_id == "g__t2")
    kept = [e for e in events if e.seq <= cut]
    paid = [e.usage for e in kept if e.kind == "plan_call" and e.step_id == "g__t2"]
    resumed = await _resume_into(trace_store, kept, _agot(_thoughts()).registry)
    assert resumed.ok and resumed.output == whole.output, resumed.error
    shown = await trace_store.read_run(resumed.run_id)  # what ponder show and the viewer fold
    for steps in (resumed.steps, shown.steps):
        assert _open_steps(steps) == {}
        old = {s.id: s for s in steps}["g__t2"]
        assert old.status == "cancelled"
        assert old.error == "superseded: 'g' ran again after the run was resumed"
        # the tokens its cut attempt paid show on it (the run's total had them already)
        assert (old.prompt_tokens, old.completion_tokens) == (
            sum(u.prompt_tokens for u in paid), sum(u.completion_tokens for u in paid)) != (0, 0)
    assert resumed.usage == whole.usage
    assert (shown.prompt_tokens, shown.completion_tokens) == (
        whole.usage.prompt_tokens, whole.usage.completion_tokens)


STATIC = """\
name: static
steps:
  - id: s
    kind: plan
    planner: static
    goal: sum
    options:
      output: total
      steps:
        - {id: a, kind: tool, tool: calc, args: {expression: "1 + 2"}}
        - {id: b, kind: tool, tool: calc, args: {expression: "3 + 4"}}
        - {id: total, kind: tool, tool: calc, args: {expression: "${steps.a.output} + ${steps.b.output}"}}
outputs:
  total: ${steps.s.output}
"""
SAMPLED = """\
name: sampled
models:
  default: {backend: simulated, options: {time_scale: 0, output_tokens: text}}
steps:
  - {id: s, kind: sample, prompt: "Pick a word.", n: 3, requests: separate, concurrency: 1}
  - {id: v, kind: join, of: s, reducer: concat}
outputs:
  v: ${steps.v.output}
"""


@pytest.mark.parametrize("text", [STATIC, SAMPLED], ids=["static-plan", "sample"])
async def test_a_run_cut_anywhere_and_resumed_ends_with_no_step_open(
        tmp_path: Path, text: str) -> None:
    wf_file = tmp_path / "wf.yaml"
    wf_file.write_text(text)
    recorder = MemoryStore()
    whole = await Workflow.from_yaml(wf_file).run(hooks=[StoreHook(recorder)])
    assert whole.ok, whole.error
    events = await recorder.events(whole.run_id)
    superseded = 0
    for n in range(1, len(events) - 1):
        store = MemoryStore()
        resumed = await _resume_into(store, events[:n])
        where = f"cut after {events[n - 1].kind} {getattr(events[n - 1], 'step_id', '')}"
        assert resumed.ok and resumed.output == whole.output, where
        shown = await store.read_run(resumed.run_id)
        assert _open_steps(resumed.steps) == {} == _open_steps(shown.steps), where
        superseded += sum(1 for s in shown.steps if (s.error or "").startswith("superseded"))
    assert superseded, "no cut left a step to supersede: the test checks nothing"


async def test_a_resumed_run_cancelled_again_records_the_old_steps_as_cancelled(
        ) -> None:
    """Cancelled before the plan ran again, the old thought is cancelled with the run (a
    later resume still goes on from it)."""
    recorder = MemoryStore()
    whole = await _agot(_thoughts()).run(hooks=[StoreHook(recorder)])
    events = await recorder.events(whole.run_id)
    cut = next(e.seq for e in events if e.kind == "step_started" and e.step_id == "g__t2")
    kept = [e for e in events if e.seq <= cut]
    added: list[Any] = []
    with anyio.CancelScope() as scope:
        async def stop_at_once(batch: Sequence[Any]) -> None:
            added.extend(batch)
            scope.cancel()

        await resume(kept, registry=_agot(_thoughts()).registry, hooks=[stop_at_once])
    assert added[-1].kind == "run_finished" and added[-1].status == "cancelled"
    cancelled = {e.step_id: e.reason for e in added if e.kind == "step_cancelled"}
    assert cancelled.get("g__t2") == "run cancelled"
    again = await resume([*kept, *added], registry=_agot(_thoughts()).registry)
    assert again.ok and again.output == whole.output, again.error
    assert again.usage == whole.usage
    assert _open_steps(again.steps) == {}
