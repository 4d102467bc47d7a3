"""The plan step's ``tools:`` allowlist, applied to whatever a planner adds (at run
time, ``planners.allowlist``) and to the steps a planner is known to add (when the
workflow is compiled, a ``static`` plan's).

The allowlist bounds everything a plan can make happen, not only the steps it writes
itself. A step the plan adds is checked with everything it would run:

- a ``tool`` step, a ``map`` body calling a tool, a ``join``'s tool ``scorer`` or
  ``check``: the tool must be allowed;
- a nested ``plan`` step: its own ``tools:`` must name only allowed tools (an empty
  one, "any tool", is refused); its steps are then checked against it when it runs;
- a sub-workflow (a ``workflow`` step, a ``map`` body or ``spawn`` running one): the
  workflow is loaded as the run would load it (a registered name, else a path relative
  to the calling workflow's folder) and each of its steps is checked the same way,
  sub-workflows of its own included. Naming a sub-workflow does not make it trusted: a
  sub-workflow that calls other tools is refused, as is one that cannot be loaded.

An empty allowlist allows every tool: nothing is checked. Loading is the only I/O;
each sub-workflow is read once per :class:`Allowlist`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from orchestrator.errors import PonderError, ValidationFailed
from orchestrator.spec.kinds_fanout import Scorer
from orchestrator.spec.loader import find_workflow
from orchestrator.spec.models import WorkflowSpec

#: a sub-workflow reference, the folder it is relative to -> its spec and its own folder
#: (where its sub-workflows are found)
SubworkflowLoader = Callable[[str, Path], tuple[WorkflowSpec, Path]]


def registry_loader(workflows: dict[str, Any]) -> SubworkflowLoader:
    """Load sub-workflows as a run does: a registered name (``Workflow`` or spec), else a
    YAML file relative to the calling workflow's folder (not compiled: its tools are
    not imported).

    :param workflows: the registry's workflows by name.
    """

    def load(ref: str, base_dir: Path) -> tuple[WorkflowSpec, Path]:
        spec, _, base = find_workflow(ref, base_dir, workflows)
        return spec, base

    return load


@dataclass(frozen=True, slots=True)
class AllowlistProblem:
    """How a step reaches outside the allowlist.

    :param code: ``unknown_tool``, or ``unknown_workflow`` for a sub-workflow that cannot
        be loaded.
    :param message: the way in, from the step to the tool.
    """

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class _Use:
    """Something a step would run: a ``tool`` (name), a ``plan`` (its tools) or a
    ``workflow`` (its reference)."""

    kind: str
    value: Any


@dataclass
class Allowlist:
    """The tools a plan step allows, and the check of each step its planner adds.

    :param allowed: the plan step's ``tools:`` (empty: every tool, nothing checked).
    :param base_dir: the folder sub-workflow paths are relative to.
    :param load: how a sub-workflow is found (see :func:`registry_loader`).
    """

    allowed: Sequence[str]
    base_dir: Path
    load: SubworkflowLoader
    _loaded: dict[tuple[Path, str], tuple[WorkflowSpec, Path] | str] = field(
        default_factory=dict)

    def check(self, step_id: str, step: Any) -> AllowlistProblem | None:
        """The first way ``step`` (with what it nests and the sub-workflows it runs)
        reaches outside the allowlist, as an ``unknown_tool`` (or, for a sub-workflow that
        cannot be loaded, ``unknown_workflow``) problem; None when it stays inside."""
        if not self.allowed:
            return None
        return self._check(f"step {step_id!r}", step, self.base_dir, ())

    def _check(self, who: str, step: Any, base_dir: Path,
               visiting: tuple[tuple[Path, str], ...]) -> AllowlistProblem | None:
        shown = ", ".join(self.allowed)
        for use in _uses(step):
            if use.kind == "tool" and use.value not in self.allowed:
                return AllowlistProblem("unknown_tool", f"{who} calls tool {use.value!r}, which is "
                                                   f"not allowed here (allowed: {shown})")
            if use.kind == "plan":
                outside = ([t for t in use.value if t not in self.allowed] if use.value
                           else ["(any tool)"])
                if outside:
                    return AllowlistProblem(
                        "unknown_tool", f"{who} is a plan that may call "
                                        f"{', '.join(map(repr, outside))}, which is not "
                                        f"allowed here (allowed: {shown}); give it `tools:` "
                                        "from this list")
            if use.kind == "workflow":
                problem = self._check_workflow(who, use.value, base_dir, visiting)
                if problem is not None:
                    return problem
        return None

    def _check_workflow(self, who: str, ref: str, base_dir: Path,
                        visiting: tuple[tuple[Path, str], ...]) -> AllowlistProblem | None:
        key = (base_dir, ref)
        if key in visiting:
            return None  # a workflow that calls itself: its steps are being checked
        loaded = self._loaded.get(key)
        if loaded is None:
            loaded = self._loaded[key] = self._read(ref, base_dir)
        if isinstance(loaded, str):
            return AllowlistProblem("unknown_workflow", f"{who} runs sub-workflow {ref!r}, which "
                                                   "cannot be loaded to check the tools it "
                                                   f"calls: {loaded}")
        spec, own_dir = loaded
        for inner in spec.steps:
            problem = self._check(f"{who} runs sub-workflow {ref!r}, whose step "
                                  f"{inner.id!r}", inner, own_dir, (*visiting, key))
            if problem is not None:
                return problem
        return None

    def _read(self, ref: str, base_dir: Path) -> tuple[WorkflowSpec, Path] | str:
        """The sub-workflow, or why it cannot be loaded (one line)."""
        try:
            return self.load(ref, base_dir)
        except ValidationFailed as exc:
            first = exc.problems[0] if exc.problems else None
            return first.format().splitlines()[0] if first else str(exc)
        except PonderError as exc:
            return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _uses(step: Any) -> Iterator[_Use]:
    """What ``step`` would run: itself and every step nested in it (a map's body, a
    join's scorer); a nested plan step's own steps are not walked (its own allowlist
    holds for them)."""
    stack: list[Any] = [step]
    while stack:
        obj = stack.pop()
        if isinstance(obj, BaseModel):
            kind = getattr(obj, "kind", None)
            if kind == "tool" and isinstance(getattr(obj, "tool", None), str):
                yield _Use("tool", obj.tool)  # type: ignore[attr-defined]
            elif isinstance(obj, Scorer) and obj.tool is not None:
                yield _Use("tool", obj.tool)
            elif kind == "plan":
                yield _Use("plan", list(getattr(obj, "tools", []) or []))
                continue
            if kind in ("workflow", "spawn") and isinstance(getattr(obj, "workflow", None), str):
                yield _Use("workflow", obj.workflow)  # type: ignore[attr-defined]
            stack.extend(getattr(obj, name) for name in type(obj).model_fields)
        elif isinstance(obj, list | tuple):
            stack.extend(obj)
        elif isinstance(obj, dict):
            stack.extend(obj.values())
