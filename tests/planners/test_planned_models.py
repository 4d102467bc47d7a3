"""A step a planner adds names only the model aliases a workflow's own steps may (see
tests/orchestrator/graph/test_undeclared_model.py): one the workflow does not declare is
the planner's mistake, a recorded plan error naming it, not a run on the bundled model."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter

from orchestrator import Workflow
from orchestrator.spec.models import Step
from orchestrator.store import StoreHook, TraceStore, open_store
from planners.executor import step_model_aliases
from tests.store.conftest import pg_server, pg_url, store_url  # noqa: F401  (each backend)

pytestmark = pytest.mark.anyio

_STEP: TypeAdapter[Any] = TypeAdapter(Step)


class _Events:
    def __init__(self) -> None:
        self.events: list[Any] = []

    async def __call__(self, batch: Any) -> None:
        self.events.extend(batch)

    def of(self, kind: str) -> list[Any]:
        return [e for e in self.events if e.kind == kind]


def _static_plan(planned: dict[str, Any], models: dict[str, Any] | None = None) -> Workflow:
    doc: dict[str, Any] = {"name": "w", "steps": [
        {"id": "p", "kind": "plan", "planner": "static", "goal": "g", "max_plan_repairs": 0,
         "options": {"steps": [planned]}}]}
    if models is not None:
        doc["models"] = models
    return Workflow.from_yaml_text(yaml.safe_dump(doc))


async def test_an_undeclared_alias_without_models_is_a_plan_error() -> None:
    events = _Events()
    wf = _static_plan({"id": "a", "kind": "llm", "prompt": "hi", "model": "gpt5"})
    result = await wf.run(backend="simulated", hooks=[events])
    assert result.status == "failed"
    assert "step 'p__a' names unknown model 'gpt5'" in (result.error or ""), result.error
    assert "--model gpt5=FILE" in (result.error or "")
    assert "Traceback" not in (result.error or "")
    [error] = events.of("plan_error")
    assert (error.step_id, error.code, error.will_retry) == ("p", "unknown_model", False)
    assert "unknown model 'gpt5'" in error.error
    # it never reached the graph, so it never ran on the bundled (here simulated) model
    assert not [e for e in events.of("step_started") if e.step_id == "p__a"]
    assert not events.of("graph_patched")


async def test_the_plan_error_is_recorded_on_every_store_backend(store_url: str  # noqa: F811
                                                                 ) -> None:
    wf = _static_plan({"id": "a", "kind": "llm", "prompt": "hi", "model": "gpt5"})
    async with await open_store(store_url) as store:
        result = await wf.run(backend="simulated", hooks=[StoreHook(store)])
        assert result.status == "failed"
        recorded = await _events(store, result.run_id)
    [error] = [e for e in recorded if e.kind == "plan_error"]
    assert (error.step_id, error.code) == ("p", "unknown_model")
    assert "names unknown model 'gpt5'" in error.error
    assert not [e for e in recorded if getattr(e, "step_id", None) == "p__a"]


async def _events(store: TraceStore, run_id: str) -> list[Any]:
    return [getattr(e, "event", e) for e in await store.events(run_id)]


async def test_an_undeclared_alias_with_models_names_the_declared_ones() -> None:
    events = _Events()
    wf = _static_plan({"id": "a", "kind": "llm", "prompt": "hi", "model": "gpt5"},
                      models={"small": {"backend": "simulated"}})
    result = await wf.run(hooks=[events])
    assert result.status == "failed"
    [error] = events.of("plan_error")
    assert error.code == "unknown_model"
    assert error.error == ("step 'p__a' names unknown model 'gpt5'; known models: "
                           "default, small")


@pytest.mark.parametrize("planned", [
    {"id": "a", "kind": "llm", "prompt": "hi", "model": "gpt5"},
    {"id": "a", "kind": "llm", "prompt": "hi"},
    {"id": "a", "kind": "llm", "prompt": "hi", "model": "default"},
])
async def test_a_declared_alias_or_default_runs(planned: dict[str, Any]) -> None:
    wf = _static_plan(planned, models={"gpt5": {"backend": "simulated"},
                                       "default": {"backend": "simulated"}})
    result = await wf.run()
    assert result.ok, result.error


async def test_default_runs_without_models() -> None:
    wf = _static_plan({"id": "a", "kind": "llm", "prompt": "hi", "model": "default"})
    result = await wf.run(backend="simulated")
    assert result.ok, result.error


async def test_a_map_body_alias_is_checked_too() -> None:
    events = _Events()
    wf = _static_plan({"id": "m", "kind": "map", "over": [1, 2],
                       "step": {"kind": "llm", "prompt": "x {{ item }}", "model": "judge"}})
    result = await wf.run(backend="simulated", hooks=[events])
    assert result.status == "failed"
    [error] = events.of("plan_error")
    assert error.error.startswith("step 'p__m' names unknown model 'judge' (its step.model);")


@pytest.mark.parametrize(("step", "aliases"), [
    ({"id": "a", "kind": "llm", "prompt": "x", "model": "m1"}, [("model", "m1")]),
    ({"id": "a", "kind": "plan", "goal": "g", "model": "m1", "joiner_model": "m2"},
     [("model", "m1"), ("joiner_model", "m2")]),
    ({"id": "a", "kind": "map", "over": [1], "step": {"kind": "llm", "prompt": "x",
                                                      "model": "m3"}}, [("step.model", "m3")]),
    ({"id": "a", "kind": "join", "of": "f", "reducer": "best_of_n",
      "scorer": {"llm": "judge"}}, [("scorer.llm", "judge")]),
    # a tool's argument called `model` is no alias
    ({"id": "a", "kind": "tool", "tool": "calc", "args": {"model": "x"}}, []),
])
def test_step_model_aliases(step: dict[str, Any], aliases: list[tuple[str, str]]) -> None:
    assert step_model_aliases(_STEP.validate_python(step)) == aliases
