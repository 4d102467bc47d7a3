"""A run's workflow is recorded in its ``run_started``; a resume, a replay and a fork
rebuild it from that record. The record left out every field equal to its default, also
one the workflow wrote out, and whether a field was written is meaning of its own:

- a static plan is bounded only by a ``max_plan_steps`` set on its step: written as 32
  (the default), a plan of 40 steps failed its step on the first start and ran after a
  resume;
- an input with ``default: null`` is optional: after the round trip it was required, and
  a run that was not given it could be neither resumed nor replayed ("input 'x' must be
  string, got None"); ``required: false`` was kept, but the recorded ``None`` the run took
  was refused all the same.

Each is checked on every store backend, reading the run back from the store."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.runtime.durable import replay, resume
from orchestrator.spec.loader import dump_yaml, load_yaml, spec_to_data
from orchestrator.spec.models import WorkflowSpec
from orchestrator.store import StoreHook, TraceStore, open_store

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _static_plan(n_steps: int, limit: str) -> str:
    steps = "\n".join(f'        - {{id: s{i}, kind: tool, tool: calc, args: {{expression: "{i}+1"}}}}'
                      for i in range(n_steps))
    return f"""\
name: plan
steps:
  - {{id: a, kind: tool, tool: calc, args: {{expression: "1 + 1"}}}}
  - id: p
    kind: plan
    planner: static
    goal: sums
    after: [a]
{limit}    options:
      steps:
{steps}
"""


def _optional_input(declaration: str) -> str:
    return f"""\
name: opt
inputs:
  x: {declaration}
steps:
  - {{id: a, kind: tool, tool: calc, args: {{expression: "1 + 1"}}}}
  - {{id: b, kind: tool, tool: calc, args: {{expression: "${{steps.a.output}} + 1"}}}}
outputs:
  b: ${{steps.b.output}}
  x: ${{inputs.x}}
"""


async def _recorded_cut(store: TraceStore, flow: str) -> list[Any]:
    """A run of ``flow`` whose trace ends where step `a` succeeded (its process killed
    then), as ``store`` holds it and gives it back."""
    scratch = await open_store("memory://")
    async with scratch:
        done = await Workflow.from_yaml_text(flow).run(hooks=[StoreHook(scratch)])
        events = list(await scratch.events(done.run_id))
    cut = next(i for i, e in enumerate(events)
               if e.kind == "step_succeeded" and e.step_id == "a")
    await store.append(events[:cut + 1])
    return list(await store.events(done.run_id))


async def test_a_static_plan_over_a_written_default_limit_fails_after_resume_too(
        trace_store: TraceStore) -> None:
    flow = _static_plan(40, "    max_plan_steps: 32\n")
    first = await Workflow.from_yaml_text(flow).run()
    assert not first.ok and "more than max_plan_steps: 32" in (first.error or "")
    kept = await _recorded_cut(trace_store, flow)
    assert kept[0].spec["steps"][1]["max_plan_steps"] == 32
    resumed = await resume(kept, hooks=[StoreHook(trace_store)])
    assert not resumed.ok
    assert "40 steps, more than max_plan_steps: 32" in (resumed.error or "")
    assert not any(e.kind == "step_succeeded" and e.step_id.startswith("p")
                   for e in (await trace_store.events(resumed.run_id))[len(kept):])


async def test_a_static_plan_without_a_limit_runs_whole_after_resume(
        trace_store: TraceStore) -> None:
    flow = _static_plan(40, "")
    assert (await Workflow.from_yaml_text(flow).run()).ok
    kept = await _recorded_cut(trace_store, flow)
    assert "max_plan_steps" not in kept[0].spec["steps"][1]
    resumed = await resume(kept, hooks=[StoreHook(trace_store)])
    assert resumed.ok, resumed.error


@pytest.mark.parametrize("declaration", ["{type: string, default: null}",
                                         "{type: string, required: false}",
                                         "{type: object, default: null}"])
async def test_a_run_not_given_an_optional_input_resumes_and_replays(
        trace_store: TraceStore, declaration: str) -> None:
    flow = _optional_input(declaration)
    first = await Workflow.from_yaml_text(flow).run()
    assert first.ok and first.output == {"b": 3, "x": None}, first.error
    kept = await _recorded_cut(trace_store, flow)
    assert kept[0].inputs == {"x": None}
    resumed = await resume(kept, hooks=[StoreHook(trace_store)])
    assert resumed.ok and resumed.output == first.output, resumed.error
    whole = await trace_store.events(resumed.run_id)
    again = await replay(whole, hooks=[StoreHook(trace_store)])
    assert again.ok and again.output == first.output, again.error
    forked = await replay(whole, from_step="b", hooks=[StoreHook(trace_store)])
    assert forked.ok and forked.output == first.output, forked.error


def _load(text: str) -> WorkflowSpec:
    return load_yaml("plan.yaml", text=text)[0]


def test_the_record_keeps_the_defaults_a_workflow_wrote_and_only_those() -> None:
    spec = _load(_static_plan(2, "    max_plan_steps: 32\n")
                          .replace("name: plan\n", "name: plan\ninputs:\n  x: {default: null}\n"
                                   "  y: {type: integer}\n"))
    data = spec_to_data(spec)
    assert data["inputs"] == {"x": {"default": None}, "y": {"type": "integer"}}
    assert data["steps"][1]["max_plan_steps"] == 32
    assert "max_plan_steps" not in data["steps"][0] and "retry" not in data["steps"][1]
    back = _load(dump_yaml(spec))
    assert back == spec
    assert back.inputs["x"].model_fields_set == spec.inputs["x"].model_fields_set
    assert not back.inputs["x"].is_required and back.inputs["y"].is_required
    assert back.steps[1].model_fields_set == spec.steps[1].model_fields_set


def test_an_sdk_workflow_records_only_what_it_was_given() -> None:
    # the constructor set its defaults (an empty description, inputs and models), which
    # the record, keeping what is set, would then write out
    wf = Workflow("t")
    wf.llm("a", "hi")
    assert spec_to_data(wf.spec) == {"name": "t", "steps": [
        {"id": "a", "prompt": "hi", "kind": "llm"}]}
    given = Workflow("t", description="d", inputs={"x": {"default": None}})
    assert spec_to_data(given.spec) == {"name": "t", "description": "d",
                                        "inputs": {"x": {"default": None}}}
