"""Runs cut short, as a crash leaves them: a whole run of a workflow whose trace is then
kept only up to one event (the durable, `ponder resume` and `ponder show` tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator import Workflow
from orchestrator.store import MemoryStore, StoreHook

TWO = """\
name: two
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "1 + 1"}}
  - {id: b, kind: tool, tool: calc, args: {expression: "${steps.a.output} + 1"}}
outputs:
  b: ${steps.b.output}
"""
HOUR = 3600.0


async def cut_two(tmp_path: Path, kind: str, step_id: str) -> tuple[str, list[Any]]:
    """A run of TWO (written to ``tmp_path / "two.yaml"``) whose trace ends at the first
    ``kind`` event of ``step_id``: the run's id and the events kept."""
    wf_file = tmp_path / "two.yaml"
    wf_file.write_text(TWO)
    store = MemoryStore()
    done = await Workflow.from_yaml(wf_file).run(hooks=[StoreHook(store)])
    events = await store.events(done.run_id)
    cut = next(e.seq for e in events if e.kind == kind and e.step_id == step_id)
    return done.run_id, [e for e in events if e.seq <= cut]


async def cut_an_hour_ago(tmp_path: Path) -> tuple[str, list[Any]]:
    """A run of TWO whose process died while `b` ran, an hour ago: its id and events."""
    run_id, kept = await cut_two(tmp_path, "step_started", "b")
    return run_id, [e.model_copy(update={"ts": e.ts - HOUR}) for e in kept]
