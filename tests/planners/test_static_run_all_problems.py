"""A static plan that was never validated (an SDK run of a step built in code) is
refused at run time with every problem of its steps, in the words of ``ponder
validate``, before any step is added: the run used to stop at the first invalid step,
id used twice or bad reference, after adding the steps above it."""

from __future__ import annotations

from typing import Any, cast

import pytest

from orchestrator.spec.kinds_plan import PlanStep
from planners.base import PlannedStep, PlanRequest, PlanSession
from planners.errors import PlannerConfigError
from planners.static import StaticPlanner
from planners.tools import ToolCatalog


class _UnusedSession:
    """A session the refused plan must not reach."""

    async def wait(self, step_ids: list[str]) -> Any:
        raise AssertionError(f"the plan waited on {step_ids}")


async def _run(options: dict[str, Any]) -> tuple[list[str], str]:
    request = PlanRequest(goal="g", step=PlanStep(id="p", goal="g", planner="static",
                                                  options=options),
                          tools=ToolCatalog.of([]), id_prefix="p__")
    added: list[str] = []
    with pytest.raises(PlannerConfigError) as info:
        async for event in StaticPlanner().plan(request, cast(PlanSession, _UnusedSession())):
            if isinstance(event, PlannedStep):
                added.append(event.label)
    return added, str(info.value)


@pytest.mark.anyio
async def test_every_problem_is_refused_at_once_before_any_step_is_added() -> None:
    calc = {"kind": "tool", "tool": "calc"}
    options = {"output": "nope", "steps": [
        {"id": "a", **calc, "args": {"expression": "1"}},
        {"id": "b", **calc, "args": {"expression": "${steps.zzz.output}"}},
        {"id": "a", **calc, "args": {"expression": "2"}},
        {"id": "c", "kind": "nonsense"},
        {"id": "d", **calc, "args": {"expression": "${steps.c.output} ${steps.e.output}"}},
        {"id": "e", **calc, "args": {"expression": "3"}},
    ]}
    added, message = await _run(options)
    assert added == []
    expected = [
        "static plan: step id 'a' is used twice",
        "static plan: options.steps[3]: (step): ",
        "static plan: `output: nope` is not one of its steps (a, b, c, d, e)",
        # an invalid step counts as earlier: reading 'c' is not a second problem
        "static plan: step 'b' refers to 'zzz', which is not an earlier step",
        "static plan: step 'd' refers to 'e', which is not an earlier step",
    ]
    parts = message.split("; ")
    assert len(parts) == len(expected), message
    for part, start in zip(parts, expected, strict=True):
        assert part.startswith(start), message


@pytest.mark.anyio
async def test_bad_references_are_all_refused_before_any_step_is_added() -> None:
    calc = {"kind": "tool", "tool": "calc"}
    options = {"steps": [{"id": "a", **calc, "args": {"expression": "1"}},
                         {"id": "b", **calc, "args": {"expression": "${steps.x.output}"}},
                         {"id": "c", **calc, "args": {"expression": "${steps.y.output}"}}]}
    added, message = await _run(options)
    assert added == []
    assert message == (
        "static plan: step 'b' refers to 'x', which is not an earlier step of the plan nor "
        "a dependency of the plan step; static plan: step 'c' refers to 'y', which is not "
        "an earlier step of the plan nor a dependency of the plan step")


@pytest.mark.anyio
async def test_the_messages_are_validates() -> None:
    options = {"output": "z", "steps": [{"id": "a", "kind": "nonsense"},
                                        {"id": "a", "kind": "tool", "tool": "calc"}]}
    _, message = await _run(options)
    assert message.split("; ") == [m for _, m in StaticPlanner.option_problems(options)]
