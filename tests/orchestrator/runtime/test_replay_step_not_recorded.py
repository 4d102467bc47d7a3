"""A replay (no ``from_step``) of a step the recording has no event of says that the
workflow changed (or is another one); it said "it did not succeed in the recorded run",
as of a step that ran and failed, which sent the user looking for a failure that never
happened. A step that ran and did not end (the run stopped in it) keeps that message."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import Workflow
from orchestrator.runtime.durable import replay
from orchestrator.store import MemoryStore, StoreHook

pytestmark = pytest.mark.anyio

FLOW = """\
name: w
steps:
  - {{id: {step}, kind: tool, tool: calc, args: {{expression: "1 + 1"}}}}
outputs:
  out: ${{steps.{step}.output}}
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_step_the_recording_never_had(tmp_path: Path) -> None:
    recorded, other = tmp_path / "w.yaml", tmp_path / "other.yaml"
    recorded.write_text(FLOW.format(step="a"))
    other.write_text(FLOW.format(step="z"))
    store = MemoryStore()
    done = await Workflow.from_yaml(recorded).run(hooks=[StoreHook(store)])
    again = await replay(await store.events(done.run_id), workflow_file=other)
    assert again.status == "failed"
    (z,) = again.steps
    assert z.error is not None and z.error.endswith(
        "has no recorded result to replay (the recorded run of 'w' has no event of it: the "
        "workflow changed since it was recorded, or is another one)")


async def test_a_step_that_did_not_succeed(tmp_path: Path) -> None:
    """A step in flight when the recorded run stopped (a step that failed fails again with
    its recorded error: see test_replay_recorded_failure)."""
    recorded = tmp_path / "w.yaml"
    recorded.write_text(FLOW.format(step="a"))
    store = MemoryStore()
    done = await Workflow.from_yaml(recorded).run(hooks=[StoreHook(store)])
    events = await store.events(done.run_id)
    cut = next(i for i, e in enumerate(events) if e.kind == "step_started")
    again = await replay(events[:cut + 1])
    (a,) = again.steps
    assert a.error is not None and a.error.endswith(
        "has no recorded result to replay (it did not succeed in the recorded run)")
