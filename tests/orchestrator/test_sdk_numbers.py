"""A workflow built in Python refuses a boolean where a number belongs, as a workflow file
does: pydantic took ``max_tokens=True`` as 1 and ``temperature=False`` as 0.0, so an SDK
workflow ran with values nobody meant while the same YAML was refused."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.errors import StepDefinitionError
from orchestrator.spec.models import LLMStep


@pytest.mark.parametrize(("build", "message"), [
    (lambda wf: wf.llm("a", prompt="p", max_tokens=True),
     "llm step 'a': max_tokens: a number, not a boolean (got True)"),
    (lambda wf: wf.llm("a", prompt="p", temperature=False, seed=None),
     "llm step 'a': temperature: a number, not a boolean (got False)"),
    (lambda wf: wf.llm("a", prompt="p", retry={"max_attempts": True}),
     "llm step 'a': retry.max_attempts: a number, not a boolean (got True)"),
    (lambda wf: wf.sample("s", prompt="p", n=True),
     "sample step 's': n: a number, not a boolean (got True)"),
    (lambda wf: wf.spawn("t", ["x"], prompt="p", max_depth=True),
     "spawn step 't': max_depth: a number, not a boolean (got True)"),
    (lambda wf: wf.join("j", of="s", reducer="first_finish", first=True),
     "join step 'j': first: a number, not a boolean (got True)"),
    (lambda wf: wf.map("m", over=[1], step={"kind": "llm", "prompt": "p",
                                            "max_tokens": True}),
     "map step 'm': step.max_tokens: a number, not a boolean (got True)"),
    (lambda wf: wf.map("m", over=[1], step={"kind": "llm", "prompt": "p"},
                       concurrency=True),
     "map step 'm': concurrency: a number, not a boolean (got True)"),
    (lambda wf: wf.add({"id": "a", "kind": "llm", "prompt": "p", "budget_tokens": True}),
     "llm step 'a': budget_tokens: a number, not a boolean (got True)"),
    (lambda wf: Workflow("w", models={"m": {"backend": "simulated", "concurrency": True}}),
     "workflow 'w': models.m.concurrency: a number, not a boolean (got True)"),
])
def test_a_builder_refuses_a_boolean_where_a_number_belongs(build: Any, message: str) -> None:
    wf = Workflow("b")
    with pytest.raises(StepDefinitionError) as info:
        build(wf)
    assert str(info.value) == message
    assert wf.spec.steps == []


def test_a_step_model_refuses_a_boolean_where_a_number_belongs() -> None:
    """``wf.add(LLMStep(...))`` gets a model already validated: the model refuses it."""
    with pytest.raises(ValueError, match="max_tokens\n  a number, not a boolean"):
        LLMStep(id="a", prompt="p", max_tokens=True)


def test_numbers_are_still_taken() -> None:
    wf = Workflow("b", models={"default": {"backend": "simulated", "concurrency": 2}})
    wf.llm("a", prompt="p", max_tokens=8, temperature=1, seed=None, timeout_s=2.5)
    step = wf.spec.steps[0]
    assert isinstance(step, LLMStep)
    assert (step.max_tokens, step.temperature, step.timeout_s) == (8, 1.0, 2.5)
    assert wf.run_sync(backend="simulated").status == "succeeded"
