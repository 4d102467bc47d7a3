"""The DAG the viewer derives from a run's events."""

from __future__ import annotations

from typing import Any

import pytest
from viewer_traces import REPLAN_CASES, TraceBuilder, research_trace

from orchestrator.viewer import declared_steps, graph_of
from orchestrator.viewer._graph import is_replan

pytestmark = pytest.mark.anyio


def _deps(spec_steps: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {s.id: s.deps for s in declared_steps({"steps": spec_steps})}


async def test_declared_dependencies_follow_every_kind_of_reference() -> None:
    deps = _deps([
        {"id": "a", "tool": "calc", "args": {"expression": "1"}},
        {"id": "b", "tool": "calc", "args": {"expression": "${steps.a.output} + 1"}},
        {"id": "l", "prompt": "Use {{ steps.b.output }} and {{ inputs.q }}"},
        {"id": "m", "over": "${steps.a.output}",
         "step": {"kind": "llm", "prompt": "{{ item }} with {{ steps.l.output }}"}},
        {"id": "j", "of": "m"},
        {"id": "after", "tool": "calc", "args": {}, "after": ["j"]},
        {"id": "br", "cases": [{"when": "steps.b.output > 1", "then": ["yes"]}],
         "default": ["no"]},
        {"id": "yes", "tool": "calc", "args": {}},
        {"id": "no", "tool": "calc", "args": {}},
        {"id": "p", "planner": "agot", "goal": "Plan for {{ steps.yes.output }}"},
    ])
    assert deps == {
        "a": [], "b": ["a"], "l": ["b"], "m": ["a", "l"], "j": ["m"], "after": ["j"],
        "br": ["b"], "yes": ["br"], "no": ["br"], "p": ["yes"],
    }


async def test_kinds_are_recovered_when_the_spec_omits_them() -> None:
    kinds = {s.id: s.kind for s in declared_steps({"steps": [
        {"id": "t", "tool": "calc"}, {"id": "l", "prompt": "hi"}, {"id": "j", "of": "t"},
        {"id": "s", "messages": ["a"]}, {"id": "p", "goal": "g"},
        {"id": "w", "workflow": "x.yaml"}, {"id": "m", "over": [1], "step": {"kind": "llm",
                                                                          "prompt": "p"}},
        {"id": "x", "kind": "mystery", "whatever": 1},
    ]})}
    assert kinds == {"t": "tool", "l": "llm", "j": "join", "s": "spawn", "p": "plan",
                     "w": "workflow", "m": "map", "x": "mystery"}


async def test_steps_that_do_not_validate_are_kept_without_edges() -> None:
    deps = _deps([{"id": "a", "tool": "calc"},
                  {"id": "bad", "prompt": "{{ steps.a.output", "unknown_field": 1},
                  {"id": "weird", "cases": [{"when": "{{ (", "then": ["a"]}]},
                  "not a step", {"no": "id"}])
    assert deps == {"a": ["weird"], "bad": [], "weird": []}


async def test_graph_of_adds_patched_steps_with_their_parent_and_replans() -> None:
    graph = {g.id: g for g in graph_of(research_trace().events)}
    assert list(graph)[:3] == ["question", "plan", "answer"]
    assert graph["plan.1"].parent == "plan" and graph["plan.1"].added_by == "plan"
    assert graph["plan.1"].added_seq is not None and not graph["plan.1"].declared
    assert graph["plan.4"].replanned and graph["plan.4"].patch_reason == "replan 1"
    assert not graph["plan.join"].replanned


async def test_graph_of_keeps_steps_only_named_by_other_events_and_drops_unknown_deps() -> None:
    b = TraceBuilder("old")
    b.start([{"id": "a", "tool": "calc"}])
    b.patch("a", [{"id": "x", "kind": "tool", "deps": ["a", "ghost", "x"], "parent": None}],
            at=0.1)
    b.run_step("stray", "tool", 0.2, 0.3)
    graph = {g.id: g for g in graph_of(b.events)}
    assert graph["x"].deps == ["a"]
    assert graph["stray"].kind == "tool" and graph["stray"].deps == []


@pytest.mark.parametrize(("reason", "replan"), REPLAN_CASES)
async def test_replan_reasons(reason: str, replan: bool) -> None:
    assert is_replan(reason) is replan
