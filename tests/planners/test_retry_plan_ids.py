"""A plan step retried in the same process (its ``retry:`` policy) gives its steps ids
that no earlier attempt of it gave: those stay in the live graph. A static plan's step
``a2_b`` is ``s__a2_b`` in attempt 1, which attempt 2's prefix ``s__a2_`` gives its step
``b`` too: the scheduler refused the second ``s__a2_b`` and the run crashed."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, ClassVar

import anyio
import pytest
import yaml

from orchestrator import Workflow
from orchestrator.runtime import registry
from orchestrator.runtime.durable import resume
from orchestrator.store import StoreHook, TraceStore, open_store
from planners import executor as plan_executor
from planners.base import PlanAnswer, PlannedStep, PlanRequest, PlanSession
from planners.testing import ScriptedLLM
from tests.planners.test_resume_plan_ids import PLAN as COLLIDING_PLAN
from tests.store.conftest import pg_server, pg_url, store_url  # noqa: F401  (each backend)

pytestmark = pytest.mark.anyio

RETRY = {"max_attempts": 2, "initial_backoff_s": 0, "jitter": 0}
#: the resume test's plan (step ``a2_b`` reads like attempt 2's step ``b``), retried
PLAN = {**COLLIDING_PLAN, "timeout_s": 0.5, "retry": RETRY}


@pytest.fixture
async def trace_store(store_url: str) -> AsyncIterator[TraceStore]:  # noqa: F811
    async with await open_store(store_url) as opened:
        yield opened


def _workflow(plan: dict[str, Any], calls: Counter[str]) -> Workflow:
    """``plan`` over a tool ``count`` (counts its calls by city) whose first call of
    Rome outlasts the plan step's timeout."""
    async def count(city: str) -> int:
        """A number about a city; counts its calls."""
        calls[city] += 1
        if city == "Rome" and calls[city] == 1:
            await anyio.sleep(1.5)
        return len(city) * 100

    doc = {"name": "retried", "models": {"default": {"backend": "scripted"}},
           "steps": [plan], "outputs": {"answer": f"${{steps.{plan['id']}.output}}"}}
    wf = Workflow.from_yaml_text(yaml.safe_dump(doc))
    wf.register_backend("scripted", ScriptedLLM([]).factory)
    wf.register_tool(count, "count")
    return wf


async def test_a_static_plan_retried_live_gives_its_steps_ids_of_their_own() -> None:
    calls: Counter[str] = Counter()
    result = await _workflow(PLAN, calls).run()
    assert result.ok, result.error
    assert result.output == {"answer": 100}
    steps = {s.id: s for s in result.steps}
    assert steps["s"].attempts == 2
    # attempt 1's steps keep their ids; attempt 2's prefix took one more `_`
    assert steps["s__a2_b"].status == "succeeded"
    assert {"s__a2__a2_b", "s__a2__b", "s__a2__total"} <= steps.keys()
    assert steps["s__a2__total"].output == 100


class _FixedIds:
    """A planner that names its step without the attempt's prefix (the same id in every
    attempt)."""

    uses_joiner: ClassVar[bool] = False
    uses_tools: ClassVar[bool] = False

    async def plan(self, request: PlanRequest, session: PlanSession
                   ) -> AsyncGenerator[PlannedStep | PlanAnswer, None]:
        from orchestrator.spec.models import ToolStep

        step = ToolStep(id="f__rome", kind="tool", tool="count", args={"city": "Rome"})
        yield PlannedStep(step, "rome")
        done = await session.wait([step.id])
        yield PlanAnswer(done[step.id].output)


class _EntryPoint:
    name = "fixed"

    def load(self) -> type[_FixedIds]:
        return _FixedIds


async def test_a_step_an_earlier_live_attempt_added_is_the_planners_mistake(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A planner that yields, in a retry, a step id its first attempt added gets that
    step rejected as a plan problem (``bad_id``), which fails the step with a message
    naming the id: the scheduler never sees the duplicate."""
    installed = {**plan_executor._planner_entry_points(), "fixed": _EntryPoint()}
    monkeypatch.setattr(plan_executor, "_planner_entry_points", lambda: installed)
    listed = registry._entry_points
    monkeypatch.setattr(registry, "_entry_points", lambda group: installed
                        if group == "ponder.planners" else listed(group))
    plan = {"id": "f", "kind": "plan", "planner": "fixed", "goal": "g", "timeout_s": 0.5,
            "retry": RETRY, "max_plan_repairs": 0}
    result = await _workflow(plan, Counter()).run()
    assert not result.ok
    assert "step id 'f__rome' is already in the graph" in (result.error or "")


async def test_a_retried_plan_cut_in_its_retry_resumes_from_the_retrys_steps(
        trace_store: TraceStore) -> None:
    """Resumed, the next attempt finds the ids the live retry gave (its prefix took one
    more `_`) and takes their outputs."""
    whole = await _workflow(PLAN, Counter()).run(hooks=[StoreHook(trace_store)])
    assert whole.ok, whole.error
    events = await trace_store.events(whole.run_id)
    cut = next(e.seq for e in events
               if e.kind == "step_succeeded" and e.step_id == "s__a2__b")
    calls: Counter[str] = Counter()
    resumed = await resume([e for e in events if e.seq <= cut],
                           registry=_workflow(PLAN, calls).registry)
    assert resumed.ok, resumed.error
    assert resumed.output == {"answer": 100} and calls == Counter()
    reused = {s.id: s.meta.get("reused_from") for s in resumed.steps
              if s.id.startswith("s__a3_")}
    assert reused == {"s__a3_a2_b": "s__a2__a2_b", "s__a3_b": "s__a2__b",
                      "s__a3_total": None}
