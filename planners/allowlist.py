"""The plan step's ``tools:`` allowlist, applied to whatever a planner adds.

The rule itself (what a step would run, sub-workflows included) is
:mod:`orchestrator.graph.allowlist`, which compiling a workflow applies to the steps a
planner is known to add; here its problems are plan problems, which the planner is
asked again about.
"""

from __future__ import annotations

from typing import Any

from orchestrator.graph.allowlist import Allowlist as _Rule
from orchestrator.graph.allowlist import SubworkflowLoader, registry_loader
from planners.plan import PlanProblem

__all__ = ["Allowlist", "SubworkflowLoader", "registry_loader"]


class Allowlist(_Rule):
    """The tools a plan step allows, and the check of each step its planner adds.

    :param allowed: the plan step's ``tools:`` (empty: every tool, nothing checked).
    :param base_dir: the folder sub-workflow paths are relative to.
    :param load: how a sub-workflow is found (see :func:`registry_loader`).
    """

    def problem(self, step_id: str, step: Any) -> PlanProblem | None:
        """The first way ``step`` reaches outside the allowlist, as an ``unknown_tool``
        (or ``unknown_workflow``) plan problem; None when it stays inside."""
        found = self.check(step_id, step)
        return None if found is None else PlanProblem(found.code, found.message)
