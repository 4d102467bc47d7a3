"""A run killed after its sub-workflow's run had failed, before the ``workflow`` step's
own event of that attempt was written: the child's tokens are only in the child's trace.
Resumed, the step's next attempt starts a new child; the cut attempt's ``step_cancelled``
(interrupted) counts what the failed child spent, and so does the run's total, on every
store backend. (They were left out: the run's total had only the new child's.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.runtime.durable import recorded_children, resume
from orchestrator.store import StoreHook, TraceStore
from tests.store.conftest import recorded_with_child

pytestmark = pytest.mark.anyio

# the child pays for an answer, then fails (not retryable)
FAILING = """\
name: failing
models:
  default: {backend: simulated, options: {time_scale: 0, output_tokens: text,
            responses: [{match: ".", output: "word word word word word word word word"}]}}
steps:
  - {id: c1, kind: llm, prompt: "one"}
  - {id: c2, kind: tool, tool: calc, args: {expression: "1 / 0"}, after: [c1]}
"""
MAIN = "name: main\nsteps:\n  - {id: w, kind: workflow, workflow: failing.yaml}\n"


def _pair(usage: Any) -> tuple[int, int]:
    return usage.prompt_tokens, usage.completion_tokens


async def test_a_failed_childs_tokens_count_on_the_cut_attempt(
        tmp_path: Path, trace_store: TraceStore) -> None:
    whole, recorder, _, child_id = await recorded_with_child(
        tmp_path, MAIN, {"failing.yaml": FAILING})
    assert whole.status == "failed"
    parent = await recorder.events(whole.run_id)
    child = await recorder.events(child_id)
    assert child[-1].kind == "run_finished" and child[-1].status == "failed"
    paid = _pair(child[-1].usage)
    assert paid[1] > 0
    # killed once the child had failed: the parent's last event is w's step_started
    cut = next(e.seq for e in parent if e.kind == "step_started" and e.step_id == "w")
    kept = [e for e in parent if e.seq <= cut]
    await trace_store.append(kept)
    await trace_store.append(child)

    resumed = await resume(kept, hooks=[StoreHook(trace_store)],
                           children=recorded_children(trace_store))
    assert resumed.status == "failed"
    after = (await trace_store.events(resumed.run_id))[len(kept):]
    (marker,) = [e for e in after if e.kind == "step_cancelled" and e.step_id == "w"]
    assert marker.attempt == 1 and marker.reason.startswith("interrupted")
    assert _pair(marker.usage) == paid
    (failed,) = [e for e in after if e.kind == "step_failed" and e.step_id == "w"]
    assert failed.attempt == 2 and _pair(failed.usage) == paid  # a new child, paid again
    both = (2 * paid[0], 2 * paid[1])
    assert _pair(resumed.usage) == both
    shown = await trace_store.read_run(resumed.run_id)
    for steps in (resumed.steps, shown.steps):
        w = {s.id: s for s in steps}["w"]
        assert w.attempts == 2 and (w.prompt_tokens, w.completion_tokens) == both
    assert (shown.prompt_tokens, shown.completion_tokens) == both
