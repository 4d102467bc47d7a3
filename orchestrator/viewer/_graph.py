"""The shape of a run's DAG, derived from its events. Pure: no I/O.

Steps added at run time carry their dependencies in their ``graph_patched``
event; the steps declared in the workflow do not (``run_started.spec`` holds the
workflow as written), so their dependencies are recomputed from their references,
as the compiler does, by :mod:`orchestrator.graph.declared`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict, cast

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.graph import declared as _declared
from orchestrator.runtime import events as ev
from orchestrator.store import RawEvent, StoredEvent

__all__ = ["GraphStep", "declared_steps", "graph_of", "intern_text", "is_replan"]

_REPLAN_WORD = re.compile(r"replan", re.IGNORECASE)
# The plan executor tags each round's steps "<planner> plan <round>"; a round after
# the first exists only because the joiner asked for a replan.
_PLAN_ROUND = re.compile(r"\bplan\s+(\d+)\s*$", re.IGNORECASE)


class GraphStep(BaseModel):
    """One node of a run's DAG.

    :ivar deps: ids of the steps it waits for (only ids that are nodes of the graph).
    :ivar parent: the step it is nested under (the map, plan or spawn that added it).
    :ivar declared: it was written in the workflow, not added at run time.
    :ivar added_seq: the ``seq`` of the ``graph_patched`` event that added it.
    :ivar patch_reason: that event's ``reason``.
    :ivar replanned: the patch was a replan (see :func:`is_replan`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    kind: str | None = None
    deps: list[str] = Field(default_factory=list)
    parent: str | None = None
    declared: bool = False
    added_by: str | None = None
    added_seq: int | None = None
    patch_reason: str | None = None
    replanned: bool = False


class GraphNode(TypedDict):
    """A :class:`GraphStep` as the viewer keeps it: a plain dict of its fields, in the
    model's order (so that it encodes to the same JSON), never changed once made."""

    id: str
    kind: str | None
    deps: list[str]
    parent: str | None
    declared: bool
    added_by: str | None
    added_seq: int | None
    patch_reason: str | None
    replanned: bool


def is_replan(reason: str) -> bool:
    """Whether a ``graph_patched`` reason marks steps added by replanning: it says
    "replan", or it is a plan round after the first (``"llmcompiler plan 2"``)."""
    if _REPLAN_WORD.search(reason):
        return True
    round_ = _PLAN_ROUND.search(reason)
    return round_ is not None and int(round_.group(1)) >= 2


def intern_text(value: Any) -> Any:
    """``value``, as one string object for each text when it is a string: a kind, a
    pool or a parent's id is repeated over thousands of steps of a long run, and each
    event is decoded with its own copy of it."""
    return sys.intern(value) if type(value) is str else value


def declared_steps(spec: Mapping[str, Any]) -> list[GraphStep]:
    """The steps a workflow spec declares, with the dependencies the compiler would give them.

    A step that does not validate (a kind this Ponder does not know, an old trace)
    is kept with no dependencies rather than dropped (see
    :func:`orchestrator.graph.declared.declared_steps`).

    :param spec: ``run_started.spec``: the workflow as a JSON object.
    :returns: one node per declared step, in file order; ``deps`` are limited to
        declared ids, and a branch's targets depend on the branch.
    """
    return [
        GraphStep(id=s.id, kind=s.kind, deps=list(s.deps), declared=True)
        for s in _declared.declared_steps(spec)
    ]


class GraphFold:
    """The DAG nodes of a run, folded from its events one at a time.

    It keeps one plain dict per node (a planner's run can add ten thousand steps), never
    the events: :func:`graph_of` folds a list, the viewer folds a long run page by page.
    """

    def __init__(self) -> None:
        # a node is replaced, never changed, when a later event says more of its step:
        # nodes() hands them out as they are
        self._nodes: dict[str, GraphNode] = {}

    def add(self, e: StoredEvent) -> None:
        """Fold the run's next event (in ``seq`` order)."""
        nodes = self._nodes
        # The exact type, not isinstance: pydantic's metaclass answers isinstance slowly,
        # twice per event of a long run (no event class is subclassed).
        t = type(e)
        if t is ev.RunStarted:
            if not nodes:
                spec = cast(ev.RunStarted, e).spec
                nodes.update((s.id, cast(GraphNode, s.model_dump()))
                             for s in declared_steps(spec))
        elif t is ev.GraphPatched:
            e = cast(ev.GraphPatched, e)
            replanned = is_replan(e.reason)
            added_by, seq, reason = intern_text(e.source_step), e.seq, e.reason
            for s in e.steps:
                sid = s.get("id")
                if not isinstance(sid, str):
                    continue
                kind, deps, parent = s.get("kind"), s.get("deps"), s.get("parent")
                nodes[sid] = {
                    "id": sid,
                    "kind": intern_text(kind) if isinstance(kind, str) else None,
                    "deps": [d for d in deps if isinstance(d, str)] if isinstance(deps, list)
                    else [],
                    "parent": intern_text(parent) if isinstance(parent, str) else None,
                    "declared": False,
                    "added_by": added_by,
                    "added_seq": seq,
                    "patch_reason": reason,
                    "replanned": replanned,
                }
        else:
            # a field read from the instance's dict (pydantic's getattr of a field an
            # event class lacks is slow); a RawEvent's extras through getattr
            sid = getattr(e, "step_id", None) if t is RawEvent else e.__dict__.get("step_id")
            if isinstance(sid, str) and sid not in nodes:
                kind = (getattr(e, "step_kind", None) if t is RawEvent
                        else e.__dict__.get("step_kind"))
                nodes[sid] = cast(GraphNode, GraphStep(
                    id=sid, kind=kind if isinstance(kind, str) else None).model_dump())

    def nodes(self) -> list[GraphNode]:
        """The nodes so far, in order of first appearance, each with the dependencies that
        are nodes: what :meth:`steps` gives, as the plain dicts the fold keeps (shared
        with it: not to be changed), without making a model of each (a third of the
        time of a first read of the run's summary, for a graph of 66,000 nodes)."""
        nodes = self._nodes
        out: list[GraphNode] = []
        for sid, node in nodes.items():
            deps = node["deps"]
            kept = [d for d in deps if d in nodes and d != sid]
            out.append(node if len(kept) == len(deps) else {**node, "deps": kept})
        return out

    def steps(self) -> list[GraphStep]:
        """The nodes so far as models (see :meth:`nodes`)."""
        return as_steps(self.nodes())


def as_steps(nodes: Iterable[GraphNode]) -> list[GraphStep]:
    """Nodes as models, each with its own list of deps."""
    # every field was checked when folded: skip validating ten thousand nodes again
    out: list[GraphStep] = []
    for node in nodes:
        fields: dict[str, Any] = {**node, "deps": list(node["deps"])}
        out.append(GraphStep.model_construct(**fields))
    return out


def graph_of(events: Iterable[StoredEvent]) -> list[GraphStep]:
    """Every step of a run as a DAG node, in order of first appearance.

    Declared steps come from the first ``run_started``; steps added at run time from
    ``graph_patched`` events (a later patch of the same id wins); a step seen only in
    other events (an old trace) is a node without dependencies.

    :param events: the run's events in ``seq`` order.
    """
    fold = GraphFold()
    for e in events:
        fold.add(e)
    return fold.steps()
