"""`replay`'s arguments are checked by `replay` itself, before anything is recorded, not
only by `ponder replay`: ``set_outputs`` or ``inputs`` without ``from_step`` (a replay
without it serves every step from the recording: they were ignored, or recorded as the
replay's inputs and read by nothing), and ``inputs`` the workflow does not take (a
workflow without `inputs:` takes none: they were taken and ignored). On every store
backend. So is a ``backend`` that is not installed, for `resume` too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.errors import ConfigError, PonderError, SpecError
from orchestrator.runtime.durable import replay, resume
from orchestrator.store import MemoryStore, StoreHook, TraceStore

pytestmark = pytest.mark.anyio

NO_INPUTS = """\
name: w
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "6 * 7"}}
  - {id: b, kind: tool, tool: calc, args: {expression: "${steps.a.output} + 1"}}
outputs:
  b: ${steps.b.output}
"""


async def _recorded(tmp_path: Path, store: TraceStore) -> list[Any]:
    wf_file = tmp_path / "w.yaml"
    wf_file.write_text(NO_INPUTS)
    done = await Workflow.from_yaml(wf_file).run(hooks=[StoreHook(store)])
    assert done.ok, done.error
    return list(await store.events(done.run_id))


@pytest.mark.parametrize("given", [{"set_outputs": {"a": 1}}, {"inputs": {"zz": 1}}])
async def test_what_needs_from_step_is_refused_without_it(
        tmp_path: Path, trace_store: TraceStore, given: dict[str, Any]) -> None:
    events = await _recorded(tmp_path, trace_store)
    name = next(iter(given))
    with pytest.raises(PonderError, match=f"^replay: {name} given without from_step, the "
                       "step to re-execute from"):
        await replay(events, hooks=[StoreHook(trace_store)], **given)
    assert len(await trace_store.list_runs()) == 1  # nothing recorded


async def test_an_input_the_workflow_does_not_take_is_refused(
        tmp_path: Path, trace_store: TraceStore) -> None:
    events = await _recorded(tmp_path, trace_store)
    with pytest.raises(SpecError) as info:
        await replay(events, hooks=[StoreHook(trace_store)], from_step="a",
                     inputs={"zz": 1})
    assert str(info.value) == "unknown input 'zz' (the workflow declares no inputs)"
    assert len(await trace_store.list_runs()) == 1
    forked = await replay(events, hooks=[StoreHook(trace_store)], from_step="a",
                          set_outputs={"a": 1})
    assert forked.ok and forked.output == {"b": 2}


WITH_INPUT = """\
name: w
inputs:
  n: {type: integer, default: 2}
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "${inputs.n} * 7"}}
  - {id: b, kind: tool, tool: calc, args: {expression: "${steps.a.output} + 1"}}
outputs:
  b: ${steps.b.output}
"""


async def test_an_input_given_as_text_is_compared_as_the_workflow_takes_it(
        tmp_path: Path, trace_store: TraceStore) -> None:
    """`--input n=2` gives the text "2": the recorded 2 was taken as changed, and each
    step that reads `n` ran again for real (an LLM step: paid again) in a fork from a
    step after it."""
    wf_file = tmp_path / "w.yaml"
    wf_file.write_text(WITH_INPUT)
    done = await Workflow.from_yaml(wf_file).run(hooks=[StoreHook(trace_store)])
    events = list(await trace_store.events(done.run_id))

    async def fork(n: str) -> dict[str, Any]:
        forked = await replay(events, hooks=[StoreHook(trace_store)], from_step="b",
                              inputs={"n": n})
        assert forked.ok, forked.error
        succeeded = {e.step_id: e.meta for e in await trace_store.events(forked.run_id)
                     if e.kind == "step_succeeded"}
        return {"output": forked.output, "a served": "replayed_from" in succeeded["a"]}

    assert await fork("2") == {"output": {"b": 15}, "a served": True}
    assert await fork("3") == {"output": {"b": 22}, "a served": False}


async def test_a_backend_that_is_not_installed_is_refused_before_anything_is_recorded(
        tmp_path: Path, trace_store: TraceStore) -> None:
    """As `Workflow.run` refuses it; a fork was recorded, and failed at its first model
    step ("unknown LLM backend"); a resume appended a failed execution to the run."""
    events = await _recorded(tmp_path, trace_store)
    cut = [e for e in events if e.kind != "run_finished" and getattr(e, "step_id", "") != "b"]
    other = MemoryStore()
    await other.append(cut)
    message = r"^backend='simulatd': unknown LLM backend; installed: "
    with pytest.raises(ConfigError, match=message):
        await replay(events, from_step="b", backend="simulatd",
                     hooks=[StoreHook(trace_store)])
    assert len(await trace_store.list_runs()) == 1
    with pytest.raises(ConfigError, match=message):
        await resume(cut, backend="simulatd", hooks=[StoreHook(other)])
    assert len(await other.events(cut[0].run_id)) == len(cut)


async def test_hooks_are_taken_as_workflow_run_takes_them(
        tmp_path: Path, trace_store: TraceStore) -> None:
    """A plain function is a hook (it raised TypeError in the middle of the run); a value
    that is not callable is refused before anything is recorded."""
    events = await _recorded(tmp_path, trace_store)
    seen: list[Any] = []
    again = await replay(events, hooks=[StoreHook(trace_store), seen.extend])
    assert again.ok and {e.kind for e in seen} >= {"run_started", "run_finished"}

    cut = [e for e in events if e.kind != "run_finished" and getattr(e, "step_id", "") != "b"]
    other = MemoryStore()
    await other.append(cut)
    seen.clear()
    resumed = await resume(cut, hooks=[StoreHook(other), seen.extend])
    assert resumed.ok and seen[-1].kind == "run_finished"

    runs = len(await trace_store.list_runs())
    with pytest.raises(ConfigError, match=r"^hooks: a hook must be a function"):
        await replay(events, hooks=[StoreHook(trace_store), "nope"])
    assert len(await trace_store.list_runs()) == runs
