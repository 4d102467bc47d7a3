"""The static planner validates each step of its plan once when it runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

import planners.static as static
from orchestrator.spec.kinds_plan import PlanStep
from planners.base import PlanAnswer, PlannedStep, PlanRequest, StepResult
from planners.errors import PlannerConfigError
from planners.tools import ToolCatalog

pytestmark = pytest.mark.anyio


class _CountingAdapter:
    """The step adapter, counting the validations of each of ``watched`` (by identity)."""

    def __init__(self, inner: Any, watched: Sequence[Any]) -> None:
        self.inner = inner
        self.watched = watched
        self.counts = [0] * len(watched)

    def validate_python(self, data: Any) -> Any:
        for i, w in enumerate(self.watched):
            if data is w:
                self.counts[i] += 1
        return self.inner.validate_python(data)


class _Session:
    step_id = "p"

    async def wait(self, ids: list[str]) -> dict[str, StepResult]:
        return {i: StepResult(i, "succeeded", i, None) for i in ids}


def _request(steps: list[dict[str, Any]]) -> PlanRequest:
    step = PlanStep(id="p", kind="plan", planner="static", goal="g",
                    options={"steps": steps})
    return PlanRequest(goal="g", step=step, tools=ToolCatalog.of([]), id_prefix="p__")


async def test_each_step_is_validated_once_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = [{"id": f"s{i}", "kind": "tool", "tool": "calc",
              "args": {"expression": "1" if i == 0 else f"${{steps.s{i - 1}.output}}"}}
             for i in range(5)]
    counter = _CountingAdapter(static._STEP_ADAPTER, steps)
    monkeypatch.setattr(static, "_STEP_ADAPTER", counter)
    items = [x async for x in static.StaticPlanner().plan(_request(steps), _Session())]
    assert [x.step.id for x in items if isinstance(x, PlannedStep)] == [
        f"p__s{i}" for i in range(5)]
    assert items[-1] == PlanAnswer("p__s4")
    assert counter.counts == [1] * 5


async def test_a_run_with_bad_steps_validates_each_once_and_says_every_problem(
        monkeypatch: pytest.MonkeyPatch) -> None:
    steps = [{"id": "a", "kind": "tool", "tool": "calc", "args": {"expression": "1"}},
             {"id": "a", "kind": "nonsense"},
             {"id": "c", "kind": "tool", "tool": "calc",
              "args": {"expression": "${steps.zzz.output}"}}]
    counter = _CountingAdapter(static._STEP_ADAPTER, steps)
    monkeypatch.setattr(static, "_STEP_ADAPTER", counter)
    with pytest.raises(PlannerConfigError) as info:
        _ = [x async for x in static.StaticPlanner().plan(_request(steps), _Session())]
    message = str(info.value)
    assert "static plan: step id 'a' is used twice" in message
    assert "static plan: options.steps[1]" in message
    assert "static plan: step 'c' refers to 'zzz', which is not an earlier step" in message
    assert counter.counts == [1, 1, 1]
