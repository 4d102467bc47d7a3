"""`max_plan_steps` and static plans: its default (32) bounds what an LLM writes, and
does not break a long plan the workflow's author wrote; set on the plan step, it
bounds the static plan too (it was ignored), failing the step before any step runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.graph.validate import validate_file
from orchestrator.runtime.events import StepStarted
from orchestrator.store import StoreHook, open_store
from planners.testing import ScriptedLLM

pytestmark = pytest.mark.anyio
PlanWorkflow = Callable[..., Workflow]


def _steps(n: int) -> list[dict[str, Any]]:
    return [{"id": f"s{i}", "kind": "tool", "tool": "calc", "args": {"expression": str(i)}}
            for i in range(n)]


async def test_the_default_does_not_bound_a_long_static_plan(plan_workflow: PlanWorkflow
                                                             ) -> None:
    result = await plan_workflow(ScriptedLLM(), planner="static",
                                 options={"steps": _steps(40)}).run()
    assert result.ok, result.error
    assert result.output == 39


async def test_a_static_plan_past_a_max_plan_steps_set_on_its_step_fails_readably(
        plan_workflow: PlanWorkflow, tmp_path: Any) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'trace.db'}")
    try:
        result = await plan_workflow(ScriptedLLM(), planner="static", max_plan_steps=3,
                                     options={"steps": _steps(4)}).run(
            hooks=[StoreHook(store)])
        assert result.status == "failed"
        assert ("static plan: 4 steps, more than max_plan_steps: 3 set on the plan step"
                in (result.error or "")), result.error
        started = [e.step_id for e in await store.events(result.run_id)
                   if isinstance(e, StepStarted)]
        assert started == ["p"]
    finally:
        await store.close()


async def test_a_static_plan_within_it_runs(plan_workflow: PlanWorkflow) -> None:
    result = await plan_workflow(ScriptedLLM(), planner="static", max_plan_steps=3,
                                 options={"steps": _steps(3)}).run()
    assert result.ok, result.error


def _plan_file(tmp_path: Path, n_steps: int, limit: str) -> Path:
    steps = "".join(f'        - {{id: s{i}, kind: tool, tool: calc, args: {{expression: "{i}"}}}}\n'
                    for i in range(n_steps))
    file = tmp_path / "plan.yaml"
    file.write_text("name: t\nsteps:\n  - id: p\n    kind: plan\n    planner: static\n"
                    f"    goal: sums\n{limit}    options:\n      steps:\n{steps}")
    return file


@pytest.mark.parametrize(("n_steps", "limit", "found"), [
    (4, "    max_plan_steps: 3\n", [(7, "plan 'p': 4 steps in `options.steps`, more than its "
                                       "max_plan_steps: 3")]),
    (40, "    max_plan_steps: 32\n", [(7, "plan 'p': 40 steps in `options.steps`, more than "
                                         "its max_plan_steps: 32")]),
    (3, "    max_plan_steps: 3\n", []),
    (40, "", []),  # the default bounds what an LLM writes only
])
def test_ponder_validate_reports_a_static_plan_past_the_limit_set_at_its_line(
        tmp_path: Path, n_steps: int, limit: str, found: list[tuple[int, str]]) -> None:
    # it was found only when the plan step ran, after the steps before it
    problems = validate_file(_plan_file(tmp_path, n_steps, limit))
    assert [(p.line, p.message) for p in problems] == found
    assert all("leave it unset" in (p.hint or "") for p in problems)
