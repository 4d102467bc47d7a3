"""The run page labels an AGoT graph's rejected plans by their layer ("layer 2, try 1"),
as `ponder show` does; it labelled them all "round 1, try N" (AGoT has no rounds: its
plan_error events say round 1), so the tries of different layers read as one round's.
A thought's own error (its complexity check) names no layer and keeps its round. Each on
a trace that records each plan error's layer, and on one written before it did (the
layer read from the error's text)."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
import yaml
from playwright.sync_api import expect
from viewer_server import Browser
from viewer_traces import append_all

from orchestrator import Workflow
from orchestrator.store import StoredEvent, StoreHook, open_store
from orchestrator.viewer._replay import PLAN_ERRORS, ReplayFold
from planners.testing import ScriptedLLM

pytestmark = pytest.mark.browser

KEYFRAME_CHECK = (Path(__file__).parent / "js" / "keyframe_check.js").read_text()


def _layer(*thoughts: dict[str, object]) -> str:
    return json.dumps({"thoughts": list(thoughts)})


def _agot_run(tmp: Path) -> list[StoredEvent]:
    """A two-layer AGoT run whose each layer was rejected twice before it was taken, and
    whose first thought's complexity check could not be read."""
    llm = ScriptedLLM([
        ("Layer 1 of 2", ["no JSON", "{}", _layer({"thought": "a"})]),
        ("Layer 2 of 2", [_layer({"thought": "b", "parents": [9]}), "still none",
                          _layer({"thought": "c", "parents": [1], "final": True})]),
        ("Thought: a[\\s\\S]*Is this thought complex", "perhaps"),
        ("Is this thought complex", '{"complex": false}'),
        ("Answer this thought", "an answer"),
    ])
    doc = {"name": "layers", "models": {"default": {"backend": "scripted"}},
           "steps": [{"id": "p", "kind": "plan", "goal": "the question", "planner": "agot",
                      "max_plan_repairs": 2, "options": {"max_layers": 2}}]}
    wf = Workflow.from_yaml_text(yaml.safe_dump(doc))
    wf.register_backend("scripted", llm.factory)

    async def run() -> list[StoredEvent]:
        async with await open_store(f"sqlite:///{tmp / 'trace.db'}") as store:
            result = await wf.run(hooks=[StoreHook(store)], run_id="agot-layers")
            assert result.ok, result.error
            return list(await store.events(result.run_id))

    return anyio.run(run)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> list[StoredEvent]:
    return _agot_run(tmp_path_factory.mktemp("agot"))


@pytest.fixture(params=["recorded", "before"])
def events(request: pytest.FixtureRequest, recorded: list[StoredEvent]) -> list[StoredEvent]:
    """The run's events; "before": as a trace written before plan_error had ``layer``
    (another run id, so that both can be in one store)."""
    if request.param == "recorded":
        assert [e.layer for e in recorded if e.kind == "plan_error"].count(None) == 1
        return recorded
    return [e.model_copy(update={"run_id": "agot-layers-before",
                                 **({"layer": None} if e.kind == "plan_error" else {})})
            for e in recorded]


def test_the_server_s_keyframe_keeps_each_rejected_plan_s_layer(
        events: list[StoredEvent]) -> None:
    fold = ReplayFold()
    for e in events:
        fold.add(e)
    steps = {s[0]: s for s in map(json.loads, fold.snapshot().steps)}
    assert [p[3] for p in steps["p"][PLAN_ERRORS]] == [1, 1, 2, 2]
    assert [p[3] for p in steps["p__t1"][PLAN_ERRORS]] == [None]


def test_rejected_plans_are_labelled_by_their_layer(web: Browser,
                                                    events: list[StoredEvent]) -> None:
    web.server.call(lambda: append_all(web.server.store, events))
    page = web.new_page()
    run_id = events[0].run_id
    page.goto(f"{web.server.url}/runs/{run_id}")
    page.wait_for_selector("body[data-ready]")
    page.locator('#dag g.step[data-step-id="p"]').dispatch_event("click")
    labels = page.locator('#detail [data-field="plan-errors"] .plan-error > .small')
    expect(labels).to_have_text([
        "layer 1, try 1: bad_thoughts \u2014 asked again",
        "layer 1, try 2: bad_thoughts \u2014 asked again",
        "layer 2, try 1: bad_reference \u2014 asked again",
        "layer 2, try 2: bad_thoughts \u2014 asked again",
    ])
    expect(page.locator('#gantt g[data-row="p"] path.decision.rejected title')).to_have_text([
        "layer 1: plan rejected (bad_thoughts)", "layer 1: plan rejected (bad_thoughts)",
        "layer 2: plan rejected (bad_reference)", "layer 2: plan rejected (bad_thoughts)",
    ])
    page.locator('#dag g.step[data-step-id="p__t1"]').dispatch_event("click")
    expect(labels).to_have_text(["round 1, try 1: bad_check"])
    assert page.evaluate(KEYFRAME_CHECK, run_id)["problems"] == []
