"""The dependencies of the steps a workflow declares, read back from a dumped spec.

``run_started.spec`` holds the workflow as written, not its compiled graph, so the
dependencies of its steps are recomputed from their references, as the compiler
does. The store's fold (``StepRecord.deps``) and the viewer's DAG both use this.
Pure: no I/O. Lenient: a spec from an old trace, or one that no longer validates,
still gives every step it names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from orchestrator.errors import PonderError
from orchestrator.graph.compile import step_dependencies
from orchestrator.spec import templates
from orchestrator.spec.models import STEP_KINDS, BranchStep, MapStep, Step

__all__ = ["DeclaredStep", "declared_steps", "parse_step"]

_STEP_ADAPTER: TypeAdapter[Any] = TypeAdapter(Step)
# Order of the guesses for a step dumped without its (default) `kind`: the kinds with
# a required field of their own first, so that a forbidden extra field rules a guess out.
_GUESS_ORDER = ("tool", "map", "branch", "join", "spawn", "plan", "workflow", "llm", "sample")


@dataclass(frozen=True, slots=True)
class DeclaredStep:
    """One step a workflow declares.

    :ivar kind: its kind, guessed when the spec omits it; as written when it does not
        validate (``None`` when not written either).
    :ivar deps: ids of the declared steps it waits for, sorted, without its own.
    """

    id: str
    kind: str | None
    deps: tuple[str, ...]


def parse_step(raw: Mapping[str, Any]) -> Any | None:
    """The step model of a step as dumped in a spec, guessing a missing ``kind``.

    :returns: the validated step, or ``None`` when no kind validates it.
    """
    if isinstance(raw.get("kind"), str):
        guesses: Sequence[str] = (raw["kind"],)
    else:
        guesses = _GUESS_ORDER
    for kind in guesses:
        if kind not in STEP_KINDS:
            continue
        try:
            return _STEP_ADAPTER.validate_python({**raw, "kind": kind})
        except ValidationError:
            continue
    return None


def _deps_of(step: Any) -> set[str]:
    """What the compiler adds to :func:`step_dependencies` (which covers templates,
    ``${...}`` values, ``after`` and a join's ``of``): map bodies, branch conditions."""
    deps = set(step_dependencies(step))
    try:
        if isinstance(step, MapStep):
            deps |= step_dependencies(step.step.to_step(step.id))
        if isinstance(step, BranchStep):
            for case in step.cases:
                refs = templates.template_refs(case.when, expression=True)
                deps |= {r.name for r in refs if r.root == "steps"}
    except (ValidationError, ValueError, PonderError):
        pass  # a malformed template in an old trace: keep the step without those edges
    return deps


def declared_steps(spec: Mapping[str, Any]) -> list[DeclaredStep]:
    """The steps a workflow spec declares, with the dependencies the compiler gives them.

    A step that does not validate (a kind this Ponder does not know, an old trace) is
    kept with no dependencies rather than dropped; an entry without a string ``id`` is
    skipped. A first_finish or adaptive_vote join on a map is given the map as its
    dependency (the compiler starts it with the map, to watch the items finish).

    :param spec: ``run_started.spec``: the workflow as a JSON object.
    :returns: one step per declared id, in file order; ``deps`` are limited to
        declared ids, and a branch's targets depend on the branch.
    """
    raw_steps = spec.get("steps")
    if not isinstance(raw_steps, list):
        return []
    ids = [s["id"] for s in raw_steps if isinstance(s, dict) and isinstance(s.get("id"), str)]
    known = set(ids)
    kinds: dict[str, str | None] = {}
    deps: dict[str, set[str]] = {i: set() for i in ids}
    for raw in raw_steps:
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            continue
        step = parse_step(raw)
        sid = raw["id"]
        written = raw.get("kind")
        kinds[sid] = step.kind if step is not None else written if isinstance(written, str) \
            else None
        if step is None:
            continue
        deps[sid] |= _deps_of(step) & known
        if isinstance(step, BranchStep):
            targets = {t for case in step.cases for t in case.then} | set(step.default)
            for target in targets & known - {sid}:
                deps[target].add(sid)
    return [
        DeclaredStep(id=i, kind=kinds.get(i), deps=tuple(sorted(deps[i] - {i})))
        for i in dict.fromkeys(ids)
    ]
