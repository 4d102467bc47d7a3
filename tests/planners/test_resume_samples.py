"""A planner call of several samples (``n > 1``) is recorded and taken on resume like a
call of one: no built-in planner asks for several, but the planner contract is open
(entry points ``ponder.planners``) and :class:`~planners.base.PlanSession` passes any
request on, so a registered planner that samples (self-consistency) must not pay for its
samples twice when its run is killed and resumed."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, ClassVar

import pytest
import yaml

from orchestrator import Workflow
from orchestrator.runtime import registry
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.runtime.durable import resume
from orchestrator.store import StoreHook, TraceStore, open_store
from planners import executor as plan_executor
from planners.base import PlanAnswer, PlanRequest, PlanSession
from planners.testing import ScriptedLLM
from tests.store.conftest import pg_server, pg_url, store_url  # noqa: F401  (each backend)

pytestmark = pytest.mark.anyio


class VotePlanner:
    """Asks for three samples in one request and answers with the most common one."""

    uses_joiner: ClassVar[bool] = False
    uses_tools: ClassVar[bool] = False

    async def plan(self, request: PlanRequest,
                   session: PlanSession) -> AsyncGenerator[PlanAnswer, None]:
        response = await session.complete(request.step.model, LLMRequest(
            messages=[{"role": "user", "content": f"Question: {request.goal}"}], n=3,
            temperature=1.0, request_id=f"{session.step_id}/vote"))
        votes = Counter(response.texts)
        yield PlanAnswer({"winner": votes.most_common(1)[0][0], "samples": response.texts})


class _EntryPoint:
    name = "vote"

    def load(self) -> type[VotePlanner]:
        return VotePlanner


@pytest.fixture(autouse=True)
def vote_planner(monkeypatch: pytest.MonkeyPatch) -> None:
    """``planner: vote`` is installed (as another package's entry point would be)."""
    installed = {**plan_executor._planner_entry_points(), "vote": _EntryPoint()}
    monkeypatch.setattr(plan_executor, "_planner_entry_points", lambda: installed)
    listed = registry._entry_points

    def entry_points(group: str) -> dict[str, Any]:
        return installed if group == "ponder.planners" else listed(group)

    monkeypatch.setattr(registry, "_entry_points", entry_points)


@pytest.fixture
async def trace_store(store_url: str) -> AsyncIterator[TraceStore]:  # noqa: F811
    async with await open_store(store_url) as opened:
        yield opened


def _workflow(llm: ScriptedLLM) -> Workflow:
    doc = {"name": "voted", "models": {"default": {"backend": "scripted"}},
           "steps": [{"id": "v", "kind": "plan", "planner": "vote", "goal": "yes or no?"}],
           "outputs": {"answer": "${steps.v.output}"}}
    wf = Workflow.from_yaml_text(yaml.safe_dump(doc))
    wf.register_backend("scripted", llm.factory)
    return wf


async def test_a_call_of_several_samples_is_taken_from_the_recording(
        trace_store: TraceStore) -> None:
    first = ScriptedLLM([("Question", ["no", "yes", "yes"])])
    whole = await _workflow(first).run(hooks=[StoreHook(trace_store)])
    assert whole.ok, whole.error
    assert len(first.calls) == 1 and first.calls[0].n == 3
    assert whole.output == {"answer": {"winner": "yes", "samples": ["no", "yes", "yes"]}}
    events = await trace_store.events(whole.run_id)
    recorded = [e for e in events if e.kind == "plan_call"]
    assert len(recorded) == 1, "the call of three samples is recorded"
    # killed once the call had completed, before the plan step ended
    cut = recorded[0].seq
    kept = [e for e in events if e.seq <= cut]
    assert not any(e.kind == "step_succeeded" and e.step_id == "v" for e in kept)
    again = ScriptedLLM([("Question", "no")])
    resumed = await resume(kept, registry=_workflow(again).registry)
    assert resumed.ok, resumed.error
    assert again.calls == []  # the samples are taken, not asked for again
    assert resumed.output == whole.output
    assert resumed.usage == whole.usage  # their tokens count once


async def test_a_call_of_one_sample_does_not_take_a_recorded_call_of_several(
        trace_store: TraceStore) -> None:
    """The same messages asked for one sample are another request than for three."""
    whole = await _workflow(ScriptedLLM([("Question", ["no", "yes", "yes"])])).run(
        hooks=[StoreHook(trace_store)])
    events = await trace_store.events(whole.run_id)
    [key] = [e.key for e in events if e.kind == "plan_call"]
    session = PlanSession(graph=_Graph(), step_id="v", run_id="r")
    one = LLMRequest(messages=[{"role": "user", "content": "Question: yes or no?"}],
                     temperature=1.0)
    assert session.request_key("default", one) != key
    assert session.request_key("default", LLMRequest(messages=one.messages, n=3,
                                                     temperature=1.0)) == key


class _Graph:
    run_id = "r"

    def record(self, *args: Any, **fields: Any) -> None:
        """Nothing kept."""
