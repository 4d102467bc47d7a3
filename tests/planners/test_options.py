"""A plan step's ``options:`` are checked by its planner when the workflow is compiled:
`ponder validate` and a run report every problem at its line before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import ValidationFailed
from orchestrator.graph.validate import validate_file
from orchestrator.runtime.registry import Registry
from orchestrator.sdk import Workflow
from planners.agot import AGoTOptions, AGoTPlanner
from planners.llmcompiler import LLMCompilerOptions, LLMCompilerPlanner
from planners.static import StaticPlanner

BAD = """\
name: badplan
steps:
  - id: p
    kind: plan
    planner: llmcompiler
    goal: hi
    options:
      stream: true
      direct_answer: maybe
  - id: g
    kind: plan
    planner: agot
    goal: hi
    options: {max_depth: 9}
  - id: s
    kind: plan
    planner: static
    goal: hi
    options:
      steps:
        - {id: a, kind: tool, tool: calc, args: {expression: "1"}}
        - {id: a, kind: tool, tool: calc}
        - {kind: llm}
  - id: t
    kind: plan
    planner: static
    goal: hi
    options:
      steps: [{id: a, kind: tool, tool: calc, args: {expression: "1"}}]
      output: z
"""


def test_every_problem_of_every_planners_options_is_located(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(BAD)
    found = [(p.line, p.column, p.message) for p in validate_file(file)]
    assert found == [
        (8, 7, "llmcompiler options: unknown option 'stream' (known: stream_dispatch, "
               "examples, direct_answer)"),
        (9, 7, "llmcompiler options: direct_answer: Input should be a valid boolean, "
               "unable to interpret input (got 'maybe')"),
        (14, 15, "agot options: max_depth: Input should be less than or equal to 4 (got 9)"),
        (22, 11, "tool 'calc' needs argument 'expression'"),  # hidden by the id once
        (22, 12, "static plan: step id 'a' is used twice"),
        (23, 11, "static plan: options.steps[2]: id: Field required"),
        (23, 11, "static plan: options.steps[2]: prompt: Field required"),
        (30, 7, "static plan: `output: z` is not one of its steps (a)"),
    ]


def test_a_run_of_such_a_workflow_does_not_start(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(BAD)
    with pytest.raises(ValidationFailed) as info:
        Workflow.from_yaml(file).run_sync(backend="simulated")
    assert "agot options: max_depth" in str(info.value)


@pytest.mark.parametrize(("planner", "options"), [
    (LLMCompilerPlanner, {"stream_dispatch": False, "direct_answer": True, "examples": "x"}),
    (AGoTPlanner, {"max_depth": 2, "max_layers": 4, "max_nodes_per_layer": 5,
                   "max_thought_chars": 300}),
    (StaticPlanner, {"steps": [{"id": "a", "kind": "tool", "tool": "calc",
                                "args": {"expression": "1"}}], "output": "a"}),
])
def test_good_options_have_no_problems(planner: type, options: dict[str, object]) -> None:
    assert planner.option_problems(options) == []  # type: ignore[attr-defined]


def test_the_registry_asks_the_named_planner() -> None:
    reg = Registry.default()
    assert reg.planner_option_problems("nonesuch", {"x": 1}) == []
    assert reg.planner_option_problems("agot", {"max_depth": 9}) != []
    assert reg.planner_option_problems("agot", {"max_thought_chars": 5}) == [
        (("max_thought_chars",), "agot options: max_thought_chars: Input should be greater "
                                 "than or equal to 20 (got 5)")]


def test_a_planner_call_is_bounded_unless_the_workflow_says_otherwise() -> None:
    from orchestrator.spec.kinds_plan import PlanStep

    assert PlanStep(id="p", goal="g").plan_timeout_s == 600
    assert PlanStep(id="p", goal="g", plan_timeout_s=None).plan_timeout_s is None
    with pytest.raises(ValueError, match="greater than 0"):
        PlanStep(id="p", goal="g", plan_timeout_s=0)


@pytest.mark.parametrize(("name", "parsed", "options"), [
    ("llmcompiler", LLMCompilerOptions, {"stream": True, "direct_answer": "maybe"}),
    ("agot", AGoTOptions, {"max_depth": 9, "colour": "red"}),
])
def test_a_run_refuses_options_in_the_words_of_validate(
        name: str, parsed: type, options: dict[str, object], tmp_path: Path) -> None:
    """A run that was never validated (an SDK run of a step built in code) names every
    problem, each as ``ponder validate`` words it."""
    from planners.errors import PlannerConfigError

    file = tmp_path / "wf.yaml"
    file.write_text(f"name: w\nsteps:\n  - id: p\n    kind: plan\n    planner: {name}\n"
                    f"    goal: hi\n    options: {json.dumps(options)}\n")
    validated = [p.message for p in validate_file(file)]
    assert len(validated) == 2
    with pytest.raises(PlannerConfigError) as info:
        parsed.parse(options)  # type: ignore[attr-defined]
    assert sorted(str(info.value).split("; ")) == sorted(validated)
