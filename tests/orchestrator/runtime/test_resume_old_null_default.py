"""A run recorded by a Ponder older than the record that keeps written defaults: its
workflow's optional input with ``default: null`` was recorded without the default (as
``x: {}``), so the recorded workflow reads it as required, while the run's recorded
inputs hold the ``null`` it took. Such a run resumes, replays and forks as it ran, on
every store backend. (It could not: "input 'x' must be string, got None".)"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.runtime.durable import replay, resume
from orchestrator.store import StoreHook, TraceStore, open_store

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _flow(declaration: str) -> str:
    return f"""\
name: opt
inputs:
  x: {declaration}
  y: {{type: integer, default: 2}}
steps:
  - {{id: a, kind: tool, tool: calc, args: {{expression: "1 + 1"}}}}
  - {{id: b, kind: tool, tool: calc, args: {{expression: "${{steps.a.output}} + 1"}}}}
outputs:
  b: ${{steps.b.output}}
  x: ${{inputs.x}}
"""


def _as_old_ponder_recorded(events: list[Any]) -> list[Any]:
    """The events as an older Ponder wrote them: every default left out of the recorded
    workflow, ``default: null`` too."""
    first = events[0]
    spec = copy.deepcopy(first.spec)
    for decl in spec["inputs"].values():
        if decl.get("default", 0) is None:
            del decl["default"]
        if decl.get("type") == "string":
            del decl["type"]
    return [first.model_copy(update={"spec": spec}), *events[1:]]


async def _old_cut(store: TraceStore, flow: str) -> tuple[Any, list[Any]]:
    scratch = await open_store("memory://")
    async with scratch:
        done = await Workflow.from_yaml_text(flow).run(hooks=[StoreHook(scratch)])
        events = list(await scratch.events(done.run_id))
    cut = next(i for i, e in enumerate(events)
               if e.kind == "step_succeeded" and e.step_id == "a")
    old = _as_old_ponder_recorded(events[:cut + 1])
    assert old[0].inputs == {"x": None, "y": 2}
    assert old[0].spec["inputs"]["x"] in ({}, {"type": "object"})
    await store.append(old)
    return done, list(await store.events(done.run_id))


@pytest.mark.parametrize("declaration", ["{type: string, default: null}",
                                         "{type: object, default: null}"])
async def test_an_old_record_of_an_input_defaulting_to_null_resumes(
        trace_store: TraceStore, declaration: str) -> None:
    flow = _flow(declaration)
    first, kept = await _old_cut(trace_store, flow)
    assert first.ok and first.output == {"b": 3, "x": None}
    resumed = await resume(kept, hooks=[StoreHook(trace_store)])
    assert resumed.ok and resumed.output == first.output, resumed.error
    whole = await trace_store.events(resumed.run_id)
    again = await replay(whole, hooks=[StoreHook(trace_store)])
    assert again.ok and again.output == first.output, again.error
    forked = await replay(whole, from_step="b", hooks=[StoreHook(trace_store)])
    assert forked.ok and forked.output == first.output, forked.error
