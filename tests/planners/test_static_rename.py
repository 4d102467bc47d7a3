"""The static planner renames the references between its steps in one pass, with one
pattern per plan: it built two regular expressions per step id for every step (a
200-step plan spent over 100 ms there, quadratic in its size)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

import planners.static as static
from orchestrator.spec.kinds_plan import PlanStep
from planners.base import PlannedStep, PlanRequest, StepResult
from planners.tools import ToolCatalog

pytestmark = pytest.mark.anyio


def _tool(sid: str, expression: str) -> dict[str, Any]:
    return {"id": sid, "kind": "tool", "tool": "calc", "args": {"expression": expression}}


class _Session:
    step_id = "p"

    async def wait(self, ids: Sequence[str]) -> dict[str, StepResult]:
        return {i: StepResult(i, "succeeded", 1, None) for i in ids}


async def _planned(steps: list[dict[str, Any]]) -> list[Any]:
    step = PlanStep(id="p", kind="plan", planner="static", goal="g", options={"steps": steps})
    request = PlanRequest(goal="g", step=step, tools=ToolCatalog.of([]), id_prefix="p__")
    return [x.step for x in [x async for x in static.StaticPlanner().plan(request, _Session())]
            if isinstance(x, PlannedStep)]


async def test_each_form_of_reference_is_renamed_once() -> None:
    steps = [_tool("a", "1"), _tool("p__a", "2"), _tool("a-b", "3"),
             _tool("c", "${steps.a.output} ${steps['a'].output} ${steps[\"a-b\"].output} "
                        "${steps.a-b.output} ${steps.p__a.output} xsteps.a.output "
                        "steps.ab.output")]
    last = (await _planned(steps))[-1]
    assert last.id == "p__c"
    assert last.args["expression"] == (
        "${steps['p__a'].output} ${steps['p__a'].output} ${steps['p__a-b'].output} "
        "${steps['p__a-b'].output} ${steps['p__p__a'].output} xsteps.a.output "
        "steps.ab.output")


async def test_the_pattern_is_built_once_per_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = static._patterns

    def counting(ids: dict[str, str]) -> Any:
        calls.append(len(ids))
        return real(ids)

    monkeypatch.setattr(static, "_patterns", counting)
    steps = [_tool("s0", "1"), *(_tool(f"s{i}", f"${{steps.s{i - 1}.output}} + 1")
                                 for i in range(1, 20))]
    planned = await _planned(steps)
    assert planned[-1].args["expression"] == "${steps['p__s18'].output} + 1"
    assert calls == [20]


def test_a_step_renamed_alone_builds_its_own_pattern() -> None:
    from orchestrator.spec.models import ToolStep

    step = ToolStep(id="b", kind="tool", tool="calc", args={"expression": "${steps.a.output}"})
    renamed = static.rename_step(step, {"a": "p__a", "b": "p__b"})
    assert (renamed.id, renamed.args) == ("p__b", {"expression": "${steps['p__a'].output}"})
    assert static.rename_step(step, {}).args == {"expression": "${steps.a.output}"}
