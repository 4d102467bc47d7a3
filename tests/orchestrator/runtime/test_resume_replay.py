"""A replay (`ponder replay RUN`, no `--from`) that stopped goes on, when resumed, serving
every step from the trace of the run it replays: no tool or model runs. It called them
for real (a map of 3,000 tool items ran ~2,800 of them again) and recorded their fresh
outputs as the replay's. Checked on every store backend; a replay whose recorded run is
gone is refused before anything is recorded."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.errors import PonderError
from orchestrator.runtime.durable import recorded_children, replay, resume
from orchestrator.store import MemoryStore, StoreHook, TraceStore

pytestmark = pytest.mark.anyio

FLOW = """\
name: counted
models:
  default: {backend: simulated, options: {time_scale: 0, seed: 3}}
steps:
  - {id: first, kind: tool, tool: count, args: {x: 0}}
  - id: m
    kind: map
    over: [1, 2, 3, 4, 5, 6]
    step: {kind: tool, tool: count, args: {x: "${item}"}}
  - {id: ask, kind: llm, prompt: "Say {{ steps.m.output }}", max_tokens: 8}
  - {id: last, kind: tool, tool: count, args: {x: 99}, after: [ask]}
"""


def _workflow(calls: list[int]) -> Workflow:
    wf = Workflow.from_yaml_text(FLOW)

    def count(x: int) -> int:
        calls.append(x)
        return x * 10 + len(calls)  # differs on a second call: a fresh output shows

    wf.register_tool(count)
    return wf


async def _cut_replay(store: TraceStore, keep: int) -> tuple[Any, list[Any], str]:
    """A run recorded in ``store``, and the first ``keep`` events of its replay stored
    there as a replay killed at that point leaves them."""
    calls: list[int] = []
    wf = _workflow(calls)
    whole = await wf.run(hooks=[StoreHook(store)])
    assert whole.ok, whole.error
    recorder = MemoryStore()
    replayed = await replay(await store.events(whole.run_id), registry=wf.registry,
                            hooks=[StoreHook(recorder)])
    assert replayed.ok and replayed.output == whole.output
    kept = list(await recorder.events(replayed.run_id))[:keep]
    await store.append(kept)
    return whole, kept, replayed.run_id


@pytest.mark.parametrize("keep", [3, 8, 14])
async def test_a_resumed_replay_calls_no_tool_or_model(trace_store: TraceStore,
                                                        keep: int) -> None:
    whole, kept, replay_id = await _cut_replay(trace_store, keep)
    calls: list[int] = []
    wf = _workflow(calls)
    resumed = await resume(kept, registry=wf.registry, hooks=[StoreHook(trace_store)],
                           children=recorded_children(trace_store))
    assert resumed.run_id == replay_id
    assert resumed.ok and resumed.output == whole.output, resumed.error
    assert calls == []
    stored = await trace_store.read_run(replay_id)
    assert stored.status == "succeeded" and stored.parent_run_id == whole.run_id
    # every step that ran in the resumed part was served from the recorded run (the
    # llm step too: the simulated model would have answered the same)
    tail = (await trace_store.events(replay_id))[len(kept):]
    served = [e for e in tail if e.kind == "step_succeeded" and e.step_id != "m"]
    assert served and all(e.meta.get("replayed_from") == whole.run_id for e in served)


async def test_a_replay_whose_run_is_gone_is_refused(trace_store: TraceStore) -> None:
    whole, kept, replay_id = await _cut_replay(trace_store, 8)
    await trace_store.delete_runs([whole.run_id])
    before = len(await trace_store.events(replay_id))
    with pytest.raises(PonderError, match=f"run {replay_id} replays run {whole.run_id}, "
                       "which is no longer in the trace store"):
        await resume(kept, registry=_workflow([]).registry, hooks=[StoreHook(trace_store)],
                     children=recorded_children(trace_store))
    assert len(await trace_store.events(replay_id)) == before


async def test_without_the_store_it_says_what_it_needs(trace_store: TraceStore) -> None:
    _, kept, _ = await _cut_replay(trace_store, 8)
    with pytest.raises(PonderError, match=r"children=recorded_children\(store\)"):
        await resume(kept, registry=_workflow([]).registry)
