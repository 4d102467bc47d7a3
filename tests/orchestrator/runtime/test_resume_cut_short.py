"""A step whose answers its model stopped at ``max_tokens`` keeps that count
(``StepOutcome.cut_short``) when a resumed run, a replay or a fork takes its recorded
output instead of running it: a resumed fan-out counts its reused children's cut answers
in its ``meta.cut_short``, and a join over a recorded fan-out says, as the uninterrupted
run's did, that its answers may be cut off. (The count was only kept for steps that ran:
a taken output read as whole, 0.)"""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.runtime.durable import replay, resume
from orchestrator.store import MemoryStore, StoreHook, TraceStore

pytestmark = pytest.mark.anyio

# every sample is cut at max_tokens; the vote finds no number in any of them
CUT = """\
name: cut
models:
  default: {backend: simulated, options: {time_scale: 0, output_tokens: text,
            responses: [{match: ".", output: "a long answer that goes on and on and on"}]}}
steps:
  - {id: s, kind: sample, prompt: "Pick a word.", n: 3, requests: separate,
     concurrency: 1, max_tokens: 2}
  - {id: v, kind: join, of: s, reducer: vote, extract: "ANSWER: (\\\\d+)"}
outputs:
  v: ${steps.v.output}
"""


class _Held:
    """The scheduler of the run it is given to (``on_scheduler``)."""

    def __init__(self) -> None:
        self.scheduler: Any = None

    def __call__(self, scheduler: Any) -> None:
        self.scheduler = scheduler

    def cut_short(self, step_id: str) -> int:
        return int(self.scheduler.outcome(step_id).cut_short)


async def _whole() -> tuple[Any, list[Any]]:
    store = MemoryStore()
    held = _Held()
    whole = await Workflow.from_yaml_text(CUT).run(hooks=[StoreHook(store)], on_scheduler=held)
    assert whole.status == "failed" and "3 of them stopped at max_tokens" in str(whole.error)
    assert held.cut_short("s") == 3
    return whole, await store.events(whole.run_id)


def _upto(events: list[Any], kind: str, step_id: str) -> list[Any]:
    cut = next(e.seq for e in events if e.kind == kind and e.step_id == step_id)
    return [e for e in events if e.seq <= cut]


def _fanout_cut(events: list[Any]) -> Any:
    (done,) = [e for e in events if e.kind == "step_succeeded" and e.step_id == "s"]
    return done.meta.get("cut_short")


async def _resume_into(store: TraceStore, kept: list[Any]) -> tuple[Any, _Held, list[Any]]:
    await store.append(kept)
    held = _Held()
    result = await resume(kept, hooks=[StoreHook(store)], on_scheduler=held)
    return result, held, await store.events(result.run_id)


async def test_a_resumed_fanout_counts_its_reused_childrens_cut_answers(
        trace_store: TraceStore) -> None:
    """Cut after the first sample, resumed (it is reused), cut again after the second
    and resumed again (reusing the reused one): the fan-out records every cut answer."""
    whole, events = await _whole()
    first, held, after = await _resume_into(trace_store, _upto(events, "step_succeeded", "s[0]"))
    assert any(e.meta.get("reused_from") == "s[0]" for e in after
               if e.kind == "step_succeeded")
    assert _fanout_cut(after) == _fanout_cut(events) == [0, 1, 2]
    assert held.cut_short("s") == 3 and first.error == whole.error

    second, held, again = await _resume_into(MemoryStore(),
                                             _upto(after, "step_succeeded", "s@2[1]"))
    assert any(e.meta.get("reused_from") == "s@2[0]" for e in again
               if e.kind == "step_succeeded")
    assert _fanout_cut(again[len(after):]) == [0, 1, 2]
    assert held.cut_short("s") == 3 and second.error == whole.error


async def test_a_join_over_a_recorded_fanout_says_its_answers_were_cut(
        trace_store: TraceStore) -> None:
    """Cut once the fan-out had succeeded: the resumed join counts its cut answers."""
    whole, events = await _whole()
    resumed, held, _ = await _resume_into(trace_store, _upto(events, "step_succeeded", "s"))
    assert held.cut_short("s") == 3
    assert resumed.status == "failed" and resumed.error == whole.error


async def test_a_replay_and_a_fork_keep_the_recorded_cut_counts() -> None:
    whole, events = await _whole()
    held = _Held()
    store = MemoryStore()
    replayed = await replay(events, on_scheduler=held, hooks=[StoreHook(store)])
    assert held.cut_short("s") == 3 and replayed.status == "failed"
    assert _fanout_cut(await store.events(replayed.run_id)) == [0, 1, 2]
    held = _Held()
    fork = await replay(events, from_step="v", on_scheduler=held)
    assert held.cut_short("s") == 3
    assert fork.status == "failed" and fork.error == whole.error
