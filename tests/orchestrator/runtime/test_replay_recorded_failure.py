"""An exact replay (no `from_step`) of a run that failed ends as the recording did: the
step that failed fails again with its recorded error (no tool or model is called), and
the replayed run's status and error are the recorded ones. It said "has no recorded
result to replay (it did not succeed in the recorded run)" instead. On every store
backend: the recorded error is read back from the store."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.runtime.durable import replay
from orchestrator.store import StoreHook, TraceStore

pytestmark = pytest.mark.anyio

FAILING = """\
name: failing
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "1 + 1"}}
  - {id: b, kind: tool, tool: boom, args: {x: "${steps.a.output}"}}
  - {id: c, kind: tool, tool: calc, args: {expression: "2 + 2"}}
  - {id: d, kind: tool, tool: calc, args: {expression: "${steps.b.output} + 1"}}
  - id: m
    kind: map
    over: [1, 0, 2]
    step: {kind: tool, tool: boom_at_zero, args: {n: "${item}"}}
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _workflow(calls: list[str]) -> Workflow:
    def boom(x: int) -> int:
        calls.append(f"boom {x}")
        raise ValueError(f"kaboom {x}")

    def boom_at_zero(n: int) -> float:
        calls.append(f"boom_at_zero {n}")
        return 1 / n

    wf = Workflow.from_yaml_text(FAILING)
    wf.register_tool(boom)
    wf.register_tool(boom_at_zero)
    return wf


def _steps(result: Any) -> dict[str, tuple[str, str | None, Any]]:
    return {s.id: (s.status, s.error, s.output) for s in result.steps}


async def test_a_replay_fails_as_the_recorded_run_did(trace_store: TraceStore) -> None:
    calls: list[str] = []
    ran = await _workflow(calls).run(hooks=[StoreHook(trace_store)])
    assert ran.status == "failed"
    recorded = _steps(ran)
    assert recorded["b"][:2] == ("failed", "tool 'boom' raised ValueError: kaboom 2")
    assert recorded["m"][0] == "failed" and recorded["m[1]"][0] == "failed"
    calls.clear()

    again = await replay(await trace_store.events(ran.run_id),
                         registry=_workflow(calls).registry, hooks=[StoreHook(trace_store)])
    assert not calls  # nothing ran again
    assert (again.status, again.error) == (ran.status, ran.error)
    assert again.error == "step 'b' failed: tool 'boom' raised ValueError: kaboom 2"
    assert _steps(again) == recorded
    assert again.run_id != ran.run_id
    stored = [r for r in await trace_store.list_runs() if r.id == again.run_id]
    assert [(r.status, r.error) for r in stored] == [(ran.status, ran.error)]


async def test_a_replayed_failure_keeps_its_recorded_error_type(
        trace_store: TraceStore) -> None:
    """The replay's ``step_failed`` events name the recorded error's type (ToolError),
    as the recording's do; they named the replay's own RecordedFailure."""
    calls: list[str] = []
    ran = await _workflow(calls).run(hooks=[StoreHook(trace_store)])
    again = await replay(await trace_store.events(ran.run_id),
                         registry=_workflow(calls).registry, hooks=[StoreHook(trace_store)])

    async def types(run_id: str) -> dict[str, str]:
        return {e.step_id: e.error_type for e in await trace_store.events(run_id)
                if e.kind == "step_failed"}

    recorded = await types(ran.run_id)
    assert recorded["b"] == "ToolError" and recorded["m[1]"] == "ToolError"
    assert await types(again.run_id) == recorded
