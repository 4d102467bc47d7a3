"""The static planner: a YAML graph given as a plan goes through the same machinery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from orchestrator import Workflow
from planners.testing import ScriptedLLM

pytestmark = pytest.mark.anyio
PlanWorkflow = Callable[..., Workflow]
Recorder = Any


async def test_static_steps_are_added_under_the_plan_step(plan_workflow: PlanWorkflow,
                                                          recorder: Recorder) -> None:
    before = {"id": "base", "kind": "tool", "tool": "calc", "args": {"expression": "40"}}
    steps = [
        {"id": "a", "kind": "tool", "tool": "lookup", "args": {"city": "Paris"}},
        {"id": "b", "kind": "tool", "tool": "calc",
         "args": {"expression": "${steps.a.output} + ${steps.base.output}"}},
        {"id": "words", "kind": "llm", "prompt": "Say {{ steps.b.output }} and "
                                                 "{{ steps['a'].output }}"},
        {"id": "c", "kind": "tool", "tool": "pair", "args": {"a": "${steps.b.output}",
                                                            "b": 1}, "after": ["words"]},
    ]
    llm = ScriptedLLM([("Say 2040 and 2000", "spoken")])
    wf = plan_workflow(llm, planner="static", goal="{{ steps.base.output }}",
                       extra_steps=[before], options={"steps": steps, "output": "c"})
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == [2040, 1]
    patched = {s["id"]: (s["parent"], sorted(s["deps"])) for p in recorder.of("graph_patched")
               for s in p.steps}
    assert patched == {"p__a": ("p", []), "p__b": ("p", ["base", "p__a"]),
                       "p__words": ("p", ["p__a", "p__b"]),
                       "p__c": ("p", ["p__b", "p__words"])}
    assert recorder.first("step_succeeded", "p__words").output == "spoken"


async def test_a_reference_outside_the_plan_fails_it_readably(plan_workflow: PlanWorkflow
                                                              ) -> None:
    options = {"steps": [{"id": "a", "kind": "tool", "tool": "calc",
                          "args": {"expression": "${steps.zzz.output}"}}]}
    result = await plan_workflow(ScriptedLLM(), planner="static", options=options).run()
    assert result.status == "failed"
    assert "refers to 'zzz', which is not an earlier step" in (result.error or ""), result.error


@pytest.mark.parametrize(("options", "message"), [
    ({"steps": [{"id": "a", "kind": "tool", "tool": "calc", "args": {}},
                {"id": "a", "kind": "tool", "tool": "calc", "args": {}}]},
     "static plan: step id 'a' is used twice"),
    ({"steps": [{"id": "a", "kind": "tool", "tool": "calc", "args": {"expression": "1"}}],
      "output": "b"}, "static plan: `output: b` is not one of its steps (a)"),
    ({"steps": [{"id": "a", "kind": "nonsense"}]}, "static plan: options.steps[0]"),
    ({"steps": []}, "static plan options: steps: List should have at least 1 item"),
])
async def test_bad_static_plans_are_found_before_the_run(
        plan_workflow: PlanWorkflow, options: dict[str, Any], message: str) -> None:
    from orchestrator.errors import ValidationFailed

    llm = ScriptedLLM()
    with pytest.raises(ValidationFailed) as info:
        await plan_workflow(llm, planner="static", options=options).run()
    assert message in str(info.value)


async def test_a_failing_output_step_fails_the_plan(plan_workflow: PlanWorkflow) -> None:
    steps = [{"id": "a", "kind": "tool", "tool": "calc", "args": {"expression": "1/0"}}]
    result = await plan_workflow(ScriptedLLM(), planner="static",
                                 options={"steps": steps}).run()
    assert result.status == "failed"
    assert "static plan: step 'a' failed" in (result.error or "")


async def test_a_planned_sample_step_runs_on_a_model_of_one_slot() -> None:
    """A sample step added by a plan waits in the fan-out pool, as a compiled one does,
    not in its model's pool: there it held the model's one slot while its request, a
    child in that pool, waited for it, and the run hung."""
    import anyio
    import yaml

    sample = {"id": "s", "kind": "sample", "prompt": "Pick a word.", "n": 2}
    doc = {"name": "t", "models": {"default": {"backend": "scripted", "concurrency": 1}},
           "steps": [{"id": "p", "kind": "plan", "goal": "g", "planner": "static",
                      "options": {"steps": [sample], "output": "s"}}]}
    wf = Workflow.from_yaml_text(yaml.safe_dump(doc))
    llm = ScriptedLLM([("Pick a word", "tide")])
    wf.register_backend("scripted", llm.factory)
    with anyio.fail_after(10):
        result = await wf.run()
    assert result.ok, result.error
    assert result.output == ["tide", "tide"]


def test_validate_finds_a_reference_outside_the_plan_at_its_line() -> None:
    """It was found only when the run reached the plan step."""
    from orchestrator.graph.validate import validate_text

    text = """name: w
steps:
  - {id: base, kind: tool, tool: calc, args: {expression: "1"}}
  - id: p
    kind: plan
    planner: static
    goal: "{{ steps.base.output }}"
    options:
      steps:
        - {id: a, kind: tool, tool: calc, args: {expression: "${steps.base.output}"}}
        - {id: b, kind: tool, tool: calc, args: {expression: "${steps.a.output} + 1"}}
        - {id: c, kind: tool, tool: calc, args: {expression: "${steps.zzz.output}"},
           after: [d]}
        - {id: d, kind: tool, tool: calc, args: {expression: "2"}}
"""
    [problem] = validate_text(text, "w.yaml")
    assert problem.line == 12
    assert problem.message == ("plan 'p': step 'c' refers to 'd', 'zzz', which is not an "
                               "earlier step of the plan nor a dependency of the plan step")


async def test_a_planned_map_body_reads_an_earlier_step_of_the_plan(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    """A planned map depended on nothing its body read: it started before the step its
    body reads, and its items failed ("step 'p__first' has no output yet")."""
    steps = [
        {"id": "first", "kind": "tool", "tool": "calc", "args": {"expression": "10"}},
        {"id": "m", "kind": "map", "over": [1, 2],
         "step": {"kind": "tool", "tool": "calc",
                  "args": {"expression": "${item} + ${steps.first.output}"}}},
        {"id": "said", "kind": "map", "over": [1],
         "step": {"kind": "llm", "prompt": "{{ item }} and {{ steps.m.output }}"}},
    ]
    llm = ScriptedLLM([(r"1 and \[11, 12\]", "read")])
    wf = plan_workflow(llm, planner="static", options={"steps": steps, "output": "said"})
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == ["read"]
    patched = {s["id"]: sorted(s["deps"]) for p in recorder.of("graph_patched")
               for s in p.steps if s["id"] in ("p__m", "p__said")}
    assert patched == {"p__m": ["p__first"], "p__said": ["p__m"]}

