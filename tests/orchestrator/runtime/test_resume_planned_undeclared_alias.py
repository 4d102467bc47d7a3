"""A run recorded before a planned step's undeclared model alias became a plan error
(``unknown_model``): its workflow, without ``models:``, had a plan step whose planner added
a step naming ``model: gpt5``, which ran on the bundled model. Resumed or forked, its plan
step planned that step again and had it refused, so the run failed where it had succeeded.
It now runs as it did: the aliases such a run named are declared as served then."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from orchestrator import Workflow
from orchestrator.runtime.durable import recording_from_events, replay, replayed_workflow, resume
from orchestrator.spec.models import ModelConfig
from orchestrator.store import MemoryStore, StoreHook

pytestmark = pytest.mark.anyio

PLANNED = {"id": "a", "kind": "llm", "prompt": "hi", "model": "gpt5", "max_tokens": 8}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _doc(models: dict[str, Any]) -> dict[str, Any]:
    return {"name": "w", "models": models, "steps": [
        {"id": "p", "kind": "plan", "planner": "static", "goal": "g", "max_plan_repairs": 0,
         "options": {"steps": [PLANNED, {"id": "b", "kind": "tool", "tool": "calc",
                                         "args": {"expression": "1+1"}}]}}]}


async def _old_trace(recorded_models: dict[str, Any] | None = None) -> tuple[Any, list[Any]]:
    """A whole run (gpt5 served on the simulated backend) and its events, its recorded
    workflow declaring ``recorded_models`` (default: none, as the old run's did)."""
    store = MemoryStore()
    whole = await Workflow.from_yaml_text(yaml.safe_dump(_doc({"gpt5": {}}))).run(
        backend="simulated", hooks=[StoreHook(store)])
    assert whole.ok, whole.error
    events = list(await store.events(whole.run_id))
    spec = {k: v for k, v in events[0].spec.items() if k != "models"}
    if recorded_models:
        spec["models"] = recorded_models
    events[0] = events[0].model_copy(update={"spec": spec})
    return whole, events


async def test_it_resumes_cut_anywhere_as_it_ran() -> None:
    whole, events = await _old_trace()
    end = next(i for i, e in enumerate(events) if e.kind == "run_finished")
    for n in range(1, end):
        where = f"cut after {events[n - 1].kind} {getattr(events[n - 1], 'step_id', '')}"
        store = MemoryStore()
        await store.append(events[:n])
        resumed = await resume(events[:n], hooks=[StoreHook(store)])
        assert resumed.ok and resumed.output == whole.output, f"{where}: {resumed.error}"
        started = (await store.events(resumed.run_id))[n]
        assert started.kind == "run_started"
        assert started.spec["models"] == {"gpt5": ModelConfig().model_dump(
            mode="json", exclude_defaults=True)}, where


async def test_it_forks_from_its_plan_step() -> None:
    whole, events = await _old_trace()
    fork = await replay(events, from_step="p")
    assert fork.ok and fork.output == whole.output, fork.error


async def test_an_alias_only_its_planned_steps_named_is_declared() -> None:
    # its planner's answer (an LLM's text) is not in the workflow: the recorded steps it
    # added are where the alias is found
    _, events = await _old_trace()
    spec = yaml.safe_load(yaml.safe_dump(events[0].spec))
    spec["steps"][0]["options"]["steps"][0]["model"] = "default"
    events[0] = events[0].model_copy(update={"spec": spec})
    graph = replayed_workflow(recording_from_events(events))
    assert set(graph.spec.models) == {"gpt5"}


async def test_with_models_an_undeclared_planned_alias_is_still_a_plan_error() -> None:
    # it failed when it ran too (an unknown alias of a declared models:): resumed, the
    # plan step says why, naming the alias and the models it may name
    _, events = await _old_trace({"small": {"backend": "simulated"}})
    cut = next(i for i, e in enumerate(events) if e.kind == "step_started")
    resumed = await resume(events[:cut + 1], backend="simulated")
    assert resumed.status == "failed"
    assert "names unknown model 'gpt5'; known models: default, small" in str(resumed.error)
