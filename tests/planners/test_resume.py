"""A run killed while a plan step is in flight, resumed: the plan ends with the answer of
an uninterrupted run, on every store backend. What it costs again is pinned too: the
plan step runs again as its next attempt, and so (a known gap, see docs/planners.md) do
the actions its interrupted attempt had finished."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml

from orchestrator import Workflow
from orchestrator.runtime.durable import resume
from orchestrator.store import StoreHook, TraceStore, open_store
from planners.testing import ScriptedLLM
from tests.store.conftest import pg_server, pg_url, store_url  # noqa: F401  (each backend)

pytestmark = pytest.mark.anyio

PLAN = """Thought: two look-ups, then a sum
1. count("Paris")
2. count("Rome")
3. calc("$1 + $2")
4. join()
<END_OF_PLAN>"""
JOINER = ("Actions and observations", "Finish($3)")


@pytest.fixture
async def trace_store(store_url: str) -> AsyncIterator[TraceStore]:  # noqa: F811
    """An opened, empty store of each backend (memory, SQLite, PostgreSQL)."""
    async with await open_store(store_url) as opened:
        yield opened


def _workflow(llm: ScriptedLLM, calls: Counter[str]) -> Workflow:
    def count(city: str) -> int:
        """A number about a city; counts its calls."""
        calls[city] += 1
        return len(city) * 100

    doc = {"name": "resumed", "models": {"default": {"backend": "scripted"}},
           "steps": [{"id": "p", "kind": "plan", "goal": "the question",
                      "tools": ["count", "calc"]}],
           "outputs": {"answer": "${steps.p.output}"}}
    wf = Workflow.from_yaml_text(yaml.safe_dump(doc))
    wf.register_backend("scripted", llm.factory)
    wf.register_tool(count, "count")
    return wf


async def _cut_mid_plan(store: TraceStore) -> tuple[list[Any], Any]:
    """The events of a run cut once actions 1 to 3 had succeeded, the joiner not yet
    asked (the plan step in flight), and the uninterrupted run's result."""
    whole = await _workflow(ScriptedLLM([JOINER, ("Question", PLAN)]), Counter()).run(
        hooks=[StoreHook(store)])
    assert whole.ok, whole.error
    events = await store.events(whole.run_id)
    cut = next(e.seq for e in events if e.kind == "step_succeeded" and e.step_id == "p__3")
    return [e for e in events if e.seq <= cut], whole


async def test_a_run_killed_mid_plan_resumes_to_the_same_answer(
        trace_store: TraceStore) -> None:
    kept, whole = await _cut_mid_plan(trace_store)
    assert not any(e.kind == "step_succeeded" and e.step_id == "p" for e in kept)
    llm = ScriptedLLM([JOINER, ("Question", PLAN)])
    resumed = await resume(kept, registry=_workflow(llm, Counter()).registry)
    assert resumed.ok, resumed.error
    assert resumed.run_id == whole.run_id and resumed.output == whole.output == {"answer": 900}
    steps = {s.id: s for s in resumed.steps}
    assert steps["p"].status == "succeeded", steps["p"]
    # the plan step's next attempt plans again, under ids of its own
    assert len(llm.prompts("Number new actions")) == 1
    assert {"p__a2_1", "p__a2_2", "p__a2_3"} <= set(steps)


async def test_a_resumed_plan_runs_its_finished_actions_again_a_known_gap(
        trace_store: TraceStore) -> None:
    """Pins a known gap (not an xfail: CI counts an xfail as a skip): a resumed plan step
    re-plans from scratch under new ids (p__a2_N), and the ExecContext gives a planner no
    way to read the actions its interrupted attempt recorded, so the look-ups that had
    finished run again. When resume serves them, this fails: assert ``calls`` is empty."""
    kept, _ = await _cut_mid_plan(trace_store)
    calls: Counter[str] = Counter()
    llm = ScriptedLLM([JOINER, ("Question", PLAN)])
    resumed = await resume(kept, registry=_workflow(llm, calls).registry)
    assert resumed.ok, resumed.error
    assert calls == Counter({"Paris": 1, "Rome": 1})
