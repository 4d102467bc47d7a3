"""Planners: steps that write more of the graph at run time.

- :class:`LLMCompilerPlanner` (``planner: llmcompiler``): a numbered plan of tool calls
  with ``$N`` references, dispatched while it streams; a joiner finishes or replans.
- :class:`AGoTPlanner` (``planner: agot``): Adaptive Graph of Thoughts.
- :class:`StaticPlanner` (``planner: static``): a YAML graph given as a plan.

The contract is :class:`Planner` (see :mod:`planners.base`); :class:`PlanExecutor`
runs ``plan`` steps with the planner they name (entry points ``ponder.planners``).
"""

from planners.agot import AGoTOptions, AGoTPlanner
from planners.base import (
    ActionRecord,
    PlanAnswer,
    PlannedStep,
    Planner,
    PlanRequest,
    PlanSession,
    StepResult,
)
from planners.errors import PlanFailed, PlannerConfigError
from planners.executor import PlanExecutor, load_planner
from planners.joiner import Decision, parse_decision
from planners.llmcompiler import LLMCompilerOptions, LLMCompilerPlanner, parse_plan
from planners.plan import Action, ParsedPlan, PlanProblem, PlanRef
from planners.static import StaticOptions, StaticPlanner
from planners.tools import ToolCatalog, ToolInfo

__all__ = [
    "AGoTOptions",
    "AGoTPlanner",
    "Action",
    "ActionRecord",
    "Decision",
    "LLMCompilerOptions",
    "LLMCompilerPlanner",
    "ParsedPlan",
    "PlanAnswer",
    "PlanExecutor",
    "PlanFailed",
    "PlanProblem",
    "PlanRef",
    "PlanRequest",
    "PlanSession",
    "PlannedStep",
    "Planner",
    "PlannerConfigError",
    "StaticOptions",
    "StaticPlanner",
    "StepResult",
    "ToolCatalog",
    "ToolInfo",
    "load_planner",
    "parse_decision",
    "parse_plan",
]
