"""The planner examples run on the simulated backend with their scripted outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator import ModelConfig, Workflow

pytestmark = pytest.mark.anyio
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "planners"
Recorder = Any


def load(name: str) -> Workflow:
    wf = Workflow.from_yaml(EXAMPLES / f"{name}.yaml")
    sim = EXAMPLES / f"{name}.sim.yaml"
    config = yaml.safe_load(sim.read_text()) if sim.exists() else {"backend": "simulated"}
    wf.spec.models["default"] = ModelConfig.model_validate(config)
    return wf


async def test_parallel_qa(recorder: Recorder) -> None:
    result = await load("parallel_qa").run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == {"answer": "8728859"}
    outputs = {e.step_id: e.output for e in recorder.of("step_succeeded")}
    assert [outputs[f"answer__{i}"] for i in (1, 2, 3, 4)] == [2102650, 2748109, 3878100,
                                                               8728859]
    # the three look-ups are independent: the sum is the only step with dependencies
    deps = {s["id"]: s["deps"] for p in recorder.of("graph_patched") for s in p.steps}
    assert deps == {"answer__1": [], "answer__2": [], "answer__3": [],
                    "answer__4": ["answer__1", "answer__2", "answer__3"]}
    # the first look-up started before the planner's stream ended (streaming dispatch)
    assert_dispatched_while_streaming(recorder)


def assert_dispatched_while_streaming(recorder: Recorder) -> None:
    plan_call = recorder.first("step_succeeded", "answer").meta["llm_outputs"][0]
    assert plan_call["request_id"].endswith("/plan1.1")
    first_start = recorder.first("step_started", "answer__1").ts
    assert first_start < plan_call["ended"], (first_start, plan_call)


async def test_the_streaming_check_fails_without_streaming_dispatch(recorder: Recorder
                                                                   ) -> None:
    wf = load("parallel_qa")
    (step,) = wf.spec.steps
    step.options["stream_dispatch"] = False  # type: ignore[union-attr]
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    with pytest.raises(AssertionError):
        assert_dispatched_while_streaming(recorder)


async def test_direct_answer_needs_no_joiner_when_every_action_succeeds(recorder: Recorder
                                                                       ) -> None:
    result = await load("direct_answer").run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == {"answer": 8728859}  # calc's result as it is: a number
    assert recorder.first("step_succeeded", "answer").meta["llm_calls"] == 1  # no joiner
    decisions = recorder.of("plan_decision")
    assert [(d.action, d.answer) for d in decisions] == [("finish", 8728859)]


async def test_direct_answer_asks_the_joiner_when_an_action_fails(recorder: Recorder) -> None:
    result = await load("direct_answer").run(
        {"question": "What is the population of Paris plus the population of Oslo?"},
        hooks=[recorder])
    assert result.ok, result.error
    assert result.output == {"answer": "unknown: Oslo is not in the corpus"}
    assert [e.step_id for e in recorder.of("step_failed")] == ["answer__2"]
    assert recorder.first("step_succeeded", "answer").meta["llm_calls"] == 2  # plan, joiner


async def test_replan(recorder: Recorder) -> None:
    result = await load("replan").run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == {"answer": "1326275"}
    assert [d.action for d in recorder.of("plan_decision")] == ["replan", "finish"]
    calc = recorder.first("step_started", "answer__3")
    assert calc.input["args"] == {"expression": "3332035 - 2005760"}


async def test_agot_with_a_nested_graph(recorder: Recorder) -> None:
    result = await load("agot").run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output["answer"].startswith("No. The journey takes 205 minutes")
    parents = {s["id"]: s["parent"] for p in recorder.of("graph_patched") for s in p.steps}
    assert parents == {"solve__t1": "solve", "solve__t2": "solve", "solve__t3": "solve",
                       "solve__t1__t1": "solve__t1", "solve__t1__t2": "solve__t1"}
    outputs = {e.step_id: e.output for e in recorder.of("step_succeeded")}
    assert outputs["solve__t1"] == outputs["solve__t1__t2"] == "205 minutes"
    # the simple thought t2 finished while t1's nested graph was still running
    assert (recorder.first("step_succeeded", "solve__t2").seq
            < recorder.first("step_succeeded", "solve__t1").seq)


async def test_static(recorder: Recorder) -> None:
    result = await load("static").run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == {"density": 19949}
