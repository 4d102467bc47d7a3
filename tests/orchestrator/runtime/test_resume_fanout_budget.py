"""A fan-out in flight when its run stopped runs again on resume (attempt 2, children
``s@2[i]``), and a child whose sample of the attempt before had succeeded takes that
output (``meta.reused_from``) instead of asking again. It also counts what that sample
spent: the fan-out's tokens and its ``budget_tokens`` decisions are the uninterrupted
run's, and the run's total counts those tokens once, on every store backend (the
second resume reads ``reused_from`` back from the store)."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.runtime.durable import resume
from orchestrator.store import MemoryStore, StoreHook, TraceStore

pytestmark = pytest.mark.anyio

# each sample spends 11 tokens (3 of prompt, 8 of completion) and reserves about 11: the
# budget lets 4 of the 6 start, one at a time
BUDGETED = """\
name: budgeted
models:
  default: {backend: simulated, options: {time_scale: 0, output_tokens: text}}
steps:
  - {id: s, kind: sample, prompt: "Pick a word.", n: 6, requests: separate,
     concurrency: 1, max_tokens: 8, budget_tokens: 50}
  - {id: v, kind: join, of: s, reducer: concat}
outputs:
  v: ${steps.v.output}
"""

# the same, a spawn's children (one message each)
SPAWNED = """\
name: spawned
models:
  default: {backend: simulated, options: {time_scale: 0, output_tokens: text}}
steps:
  - {id: s, kind: spawn, messages: [one, two, three, four, five, six],
     prompt: "Say {{ message }}.", concurrency: 1, max_tokens: 8, budget_tokens: 50}
  - {id: v, kind: join, of: s, reducer: concat}
outputs:
  v: ${steps.v.output}
"""

#: what the fan-out's step records of what it did and spent
_FANOUT_KEYS = ("tokens", "stopped", "statuses", "started", "requests", "budget_tokens")


def _fanout(events: list[Any]) -> dict[str, Any]:
    (done,) = [e for e in events if e.kind == "step_succeeded" and e.step_id == "s"]
    return {k: done.meta.get(k) for k in _FANOUT_KEYS}


def _asked(events: list[Any]) -> int:
    """Samples the model was asked for (children that succeeded without reusing one)."""
    return sum(e.kind == "step_succeeded" and e.step_id.startswith("s") and "[" in e.step_id
               and "reused_from" not in e.meta for e in events)


async def _whole(text: str = BUDGETED) -> tuple[Any, list[Any]]:
    store = MemoryStore()
    whole = await Workflow.from_yaml_text(text).run(hooks=[StoreHook(store)])
    assert whole.ok, whole.error
    events = await store.events(whole.run_id)
    assert _fanout(events)["stopped"] == "budget"
    assert _fanout(events)["statuses"] == {"succeeded": 4, "not_started": 2}
    return whole, events


async def _resume_into(store: TraceStore, kept: list[Any]) -> tuple[Any, list[Any]]:
    await store.append(kept)
    result = await resume(kept, hooks=[StoreHook(store)])
    return result, await store.events(result.run_id)


def _cut_after(events: list[Any], step_id: str) -> list[Any]:
    cut = next(e.seq for e in events if e.kind == "step_succeeded" and e.step_id == step_id)
    return [e for e in events if e.seq <= cut]


@pytest.mark.parametrize("text", [BUDGETED, SPAWNED], ids=["sample", "spawn"])
async def test_a_resumed_fanout_counts_its_reused_children_towards_its_budget(
        text: str) -> None:
    """Cut anywhere before the fan-out ended: the resumed one spends, stops and records
    what the uninterrupted one did, and asks no more samples in all."""
    whole, events = await _whole(text)
    end = next(i for i, e in enumerate(events)
               if e.kind == "step_succeeded" and e.step_id == "s")
    reusing = 0
    for n in range(1, end):
        kept = events[:n]
        where = f"cut after {kept[-1].kind} {getattr(kept[-1], 'step_id', '')}"
        result, after = await _resume_into(MemoryStore(), kept)
        assert result.ok and result.output == whole.output, f"{where}: {result.error}"
        assert _fanout(after) == _fanout(events), where
        assert result.usage == whole.usage, where
        assert _asked(after) == _asked(events) == 4, where
        reusing += any("reused_from" in e.meta for e in after[n:]
                       if e.kind == "step_succeeded")
    assert reusing  # some cuts resumed a fan-out that reused samples


async def test_a_fanout_resumed_twice_counts_what_its_first_attempt_spent(
        trace_store: TraceStore) -> None:
    """Cut after two samples, resumed (they are reused), cut again after the third and
    resumed again: the third attempt reuses the second's children, which reused the
    first's; each counts what the sample it took had spent, once."""
    whole, events = await _whole()
    first, after = await _resume_into(trace_store, _cut_after(events, "s[1]"))
    assert first.ok and first.output == whole.output, first.error
    assert _fanout(after) == _fanout(events)
    reused = {e.step_id: e.meta["reused_from"] for e in after
              if e.kind == "step_succeeded" and "reused_from" in e.meta}
    assert reused == {"s@2[0]": "s[0]", "s@2[1]": "s[1]"}
    assert first.usage == whole.usage

    second, again = await _resume_into(MemoryStore(), _cut_after(after, "s@2[2]"))
    assert second.ok and second.output == whole.output, second.error
    assert _fanout(again) == _fanout(events)
    assert second.usage == whole.usage
    assert {e.step_id: e.meta["reused_from"] for e in again
            if e.kind == "step_succeeded" and e.step_id.startswith("s@3")
            and "reused_from" in e.meta} == {"s@3[0]": "s@2[0]", "s@3[1]": "s@2[1]",
                                             "s@3[2]": "s@2[2]"}
    assert _asked(again) == 4
