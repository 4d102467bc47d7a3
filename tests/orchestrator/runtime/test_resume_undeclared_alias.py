"""A trace written before Ponder refused an undeclared model alias: its workflow, without
`models:`, had a step name `model: fast`, which ran on the bundled model. Its recorded
workflow no longer compiled (`unknown model 'fast'`), so the run could be neither
resumed nor replayed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.runtime.durable import replay, resume
from orchestrator.runtime.engine import compile_graph, execute
from orchestrator.runtime.registry import Registry
from orchestrator.spec.models import WorkflowSpec
from orchestrator.store import MemoryStore, StoreHook

pytestmark = pytest.mark.anyio

WORKFLOW = """\
name: w
steps:
  - {id: a, kind: llm, prompt: hi, model: default, max_tokens: 8}
  - {id: b, kind: tool, tool: calc, args: {expression: "1+1"}, after: [a]}
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _old_trace(text: str = WORKFLOW, step: int = 0, field: str = "model",
                     alias: str = "fast") -> list[Any]:
    """A run's events, its recorded workflow's step number ``step`` naming the undeclared
    ``alias`` in ``field`` (by default: step `a`'s model is `fast`)."""
    registry = Registry.default()
    graph = compile_graph(WorkflowSpec.model_validate(yaml.safe_load(text)),
                          registry=registry)
    store = MemoryStore()
    result = await execute(graph, {}, registry=registry, hooks=[StoreHook(store)],
                           backend="simulated")
    assert result.ok, result.error
    events = list(await store.events(result.run_id))
    spec = dict(events[0].spec)
    spec["steps"] = [dict(s) for s in spec["steps"]]
    spec["steps"][step][field] = alias
    events[0] = events[0].model_copy(update={"spec": spec})
    return events


async def test_an_old_trace_with_an_undeclared_alias_replays() -> None:
    result = await replay(await _old_trace(), from_step="a", backend="simulated")
    assert result.ok, result.error


async def test_an_old_trace_with_an_undeclared_alias_resumes() -> None:
    events = await _old_trace()
    # cut after `a` succeeded: the process died before `b` ran
    cut = next(i for i, e in enumerate(events)
               if e.kind == "step_succeeded" and e.step_id == "a")
    result = await resume(events[:cut + 1], backend="simulated")
    assert result.ok, result.error


async def test_an_old_run_replays_from_its_recorded_file(tmp_path: Path) -> None:
    # its file, still as it ran, read by a replay that is given no --workflow
    file = tmp_path / "w.yaml"
    file.write_text(WORKFLOW.replace("model: default", "model: fast"), encoding="utf-8")
    events = await _old_trace()
    events[0] = events[0].model_copy(update={"source": str(file)})
    result = await replay(events, from_step="a", backend="simulated")
    assert result.ok, result.error


async def test_an_old_trace_whose_plan_names_an_undeclared_joiner_model_resumes() -> None:
    # a plan step's `joiner_model` is an alias like `model` (compile checks both): the
    # recorded workflow's aliases used to be gathered from `model` and `llm` only
    text = WORKFLOW + ("  - {id: p, kind: plan, planner: static, goal: g, tools: [calc],\n"
                       "     after: [b], options: {steps: [{id: c, kind: tool, tool: calc,\n"
                       "                                    args: {expression: '3 * 4'}}]}}\n")
    events = await _old_trace(text, step=2, field="joiner_model", alias="judge")
    cut = next(i for i, e in enumerate(events)
               if e.kind == "step_succeeded" and e.step_id == "b")
    resumed = await resume(events[:cut + 1], backend="simulated")
    assert resumed.ok, resumed.error
    assert {s.id: s.status for s in resumed.steps}["p"] == "succeeded"
