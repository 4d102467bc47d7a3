"""The public API of `planners` is what its `__init__` re-exports, pinned here."""

from __future__ import annotations

import planners


def test_all_is_pinned() -> None:
    assert sorted(planners.__all__) == [
        "AGoTOptions", "AGoTPlanner", "Action", "ActionRecord", "Decision",
        "LLMCompilerOptions", "LLMCompilerPlanner", "ParsedPlan", "PlanAnswer", "PlanExecutor",
        "PlanFailed", "PlanProblem", "PlanRef", "PlanRequest", "PlanSession", "PlannedStep",
        "Planner", "PlannerConfigError", "StaticOptions", "StaticPlanner", "StepResult",
        "ToolCatalog", "ToolInfo", "load_planner", "parse_decision", "parse_plan"]
    for name in planners.__all__:
        assert getattr(planners, name) is not None


def test_the_entry_points_load_the_planners() -> None:
    assert isinstance(planners.load_planner("llmcompiler"), planners.LLMCompilerPlanner)
    assert isinstance(planners.load_planner("agot"), planners.AGoTPlanner)
    assert isinstance(planners.load_planner("static"), planners.StaticPlanner)
