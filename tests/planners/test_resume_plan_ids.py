"""A resumed plan step gives its steps ids that no recorded attempt of it gave: the
attempt prefixes overlap (``s__`` + a static step ``a2_b`` is ``s__a2_b``, attempt 2's
prefix ``s__a2_`` + step ``b`` too), and a recorded id keeps its recorded output, so the
resumed attempt's ``b`` took the output of the cut attempt's ``a2_b``: a wrong answer."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from orchestrator.runtime.durable import resume
from orchestrator.store import StoreHook, TraceStore, open_store
from planners.testing import ScriptedLLM
from tests.planners.test_resume import _workflow
from tests.store.conftest import pg_server, pg_url, store_url  # noqa: F401  (each backend)

pytestmark = pytest.mark.anyio

#: a static plan whose step ``a2_b`` reads like attempt 2's step ``b``
PLAN = {"id": "s", "kind": "plan", "planner": "static", "goal": "difference",
        "options": {"output": "total", "steps": [
            {"id": "a2_b", "kind": "tool", "tool": "count", "args": {"city": "Paris"}},
            {"id": "b", "kind": "tool", "tool": "count", "args": {"city": "Rome"},
             "after": ["a2_b"]},
            {"id": "total", "kind": "tool", "tool": "calc",
             "args": {"expression": "${steps.a2_b.output} - ${steps.b.output}"}}]}}


@pytest.fixture
async def trace_store(store_url: str) -> AsyncIterator[TraceStore]:  # noqa: F811
    async with await open_store(store_url) as opened:
        yield opened


async def test_a_resumed_plan_step_does_not_take_another_steps_output_by_its_id(
        trace_store: TraceStore) -> None:
    whole = await _workflow(ScriptedLLM([]), Counter(), PLAN).run(
        hooks=[StoreHook(trace_store)])
    assert whole.ok and whole.output == {"answer": 100}, whole.error
    events = await trace_store.events(whole.run_id)
    cut = next(e.seq for e in events if e.kind == "step_succeeded" and e.step_id == "s__a2_b")
    calls: Counter[str] = Counter()
    added: list[Any] = []

    async def collect(batch: Any) -> None:
        added.extend(batch)

    kept = [e for e in events if e.seq <= cut]
    resumed = await resume(kept, registry=_workflow(ScriptedLLM([]), calls, PLAN).registry,
                           hooks=[collect])
    assert resumed.ok, resumed.error
    assert resumed.output == whole.output == {"answer": 100}
    assert calls == Counter({"Rome": 1})  # a2_b takes its recorded output, b runs
    steps = {s.id: s for s in resumed.steps}
    assert steps["s__a2__a2_b"].meta.get("reused_from") == "s__a2_b"
    assert "reused_from" not in steps["s__a2__b"].meta

    # cut again once the second attempt's b had succeeded: the third attempt takes both,
    # from the ids the second attempt gave them
    cut = next(e.seq for e in added if e.kind == "step_succeeded" and e.step_id == "s__a2__b")
    again: Counter[str] = Counter()
    third = await resume([*kept, *(e for e in added if e.seq <= cut)],
                         registry=_workflow(ScriptedLLM([]), again, PLAN).registry)
    assert third.ok, third.error
    assert third.output == {"answer": 100} and again == Counter()
    reused = {s.id: s.meta.get("reused_from") for s in third.steps if s.id.startswith("s__a3_")}
    assert reused == {"s__a3_a2_b": "s__a2__a2_b", "s__a3_b": "s__a2__b",
                      "s__a3_total": None}
