"""`top_p` (nucleus sampling) on every step kind that samples: absent means the backend's
default, and a value outside (0, 1] is a problem at its line, as a bad `temperature` is."""

from __future__ import annotations

import pytest

from orchestrator import Workflow
from orchestrator.errors import StepDefinitionError
from orchestrator.graph.validate import validate_text
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.spec.kinds_fanout import SampleStep, SpawnStep
from orchestrator.spec.kinds_plan import PlanStep
from orchestrator.spec.models import LLMStep, MapBody

HEAD = "name: w\nmodels:\n  default: {backend: simulated}\nsteps:\n"
STEPS = {
    "llm": "{id: s, kind: llm, prompt: hi, top_p: VALUE}",
    "sample": "{id: s, kind: sample, prompt: hi, top_p: VALUE}",
    "spawn": "{id: s, kind: spawn, messages: [a], top_p: VALUE}",
    "plan": "{id: s, kind: plan, goal: hi, top_p: VALUE}",
    "map": "{id: s, kind: map, over: [1], step: {kind: llm, prompt: hi, top_p: VALUE}}",
}
WHERE = {"map": "steps.0.step.top_p"}


def _problems(text: str) -> list[tuple[int, str]]:
    return [(p.line, p.message) for p in validate_text(text, "w.yaml")]


@pytest.mark.parametrize("kind", STEPS)
def test_each_sampling_step_takes_top_p(kind: str) -> None:
    assert _problems(HEAD + "  - " + STEPS[kind].replace("VALUE", "0.9") + "\n") == []


@pytest.mark.parametrize("model", [LLMStep, SampleStep, SpawnStep, PlanStep])
def test_top_p_is_unset_by_default(model: type) -> None:
    assert model.model_fields["top_p"].default is None
    assert LLMRequest(messages=[]).top_p is None


def test_a_map_body_passes_top_p_to_its_llm_step() -> None:
    body = MapBody.model_validate({"kind": "llm", "prompt": "hi", "top_p": 0.5})
    assert body.to_step("m[0]").top_p == 0.5
    assert MapBody.model_validate({"kind": "llm", "prompt": "hi"}).to_step("m[0]").top_p is None


@pytest.mark.parametrize("kind", STEPS)
@pytest.mark.parametrize(("value", "message"), [
    ("0", "Input should be greater than 0 (got 0)"),
    ("1.5", "Input should be less than or equal to 1 (got 1.5)"),
    ("-0.1", "Input should be greater than 0 (got -0.1)"),
    ("x", "Input should be a valid number, unable to parse string as a number (got 'x')"),
    ("'0.9'", "must be a number, got the string '0.9'"),
    ("true", "a number, not `true` (YAML reads true/false, yes/no and on/off as booleans)"),
])
def test_a_bad_top_p_is_a_problem_at_its_line(kind: str, value: str, message: str) -> None:
    text = HEAD + "  - " + STEPS[kind].replace("VALUE", value) + "\n"
    where = WHERE.get(kind, "steps.0.top_p")
    assert _problems(text) == [(5, f"{where}: {message}")]


def test_the_sdk_refuses_a_bad_top_p() -> None:
    with pytest.raises(StepDefinitionError, match="top_p: Input should be greater than 0"):
        Workflow("w").sample("s", prompt="hi", top_p=0)
    with pytest.raises(StepDefinitionError, match="top_p: a number, not a boolean"):
        Workflow("w").llm("a", prompt="hi", top_p=True)
