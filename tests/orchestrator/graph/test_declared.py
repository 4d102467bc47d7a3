"""The dependencies of declared steps, read back from a dumped spec (``run_started.spec``)."""

from __future__ import annotations

import pytest

from orchestrator.graph.compile import compile_workflow
from orchestrator.graph.declared import DeclaredStep, declared_steps
from orchestrator.spec.loader import load_yaml, spec_to_data

EVERY_EDGE = """\
name: every_edge
inputs: {q: {type: string}}
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "1"}}
  - {id: b, kind: tool, tool: calc, args: {expression: "${steps.a.output} + 1"}}
  - {id: l, kind: llm, prompt: "Use {{ steps.b.output }} and {{ inputs.q }}"}
  - id: m
    kind: map
    over: "${steps.a.output}"
    step: {kind: llm, prompt: "{{ item }} with {{ steps.l.output }}"}
  - {id: j, kind: join, of: m}
  - {id: late, kind: tool, tool: calc, args: {expression: "2"}, after: [j]}
  - id: br
    kind: branch
    cases: [{when: "steps.b.output > 1", then: ["yes"]}]
    default: ["no"]
  - {id: "yes", kind: tool, tool: calc, args: {expression: "3"}}
  - {id: "no", kind: tool, tool: calc, args: {expression: "4"}, after: [late]}
"""


def test_the_dependencies_are_those_the_compiler_gives() -> None:
    spec, source = load_yaml("every_edge.yaml", text=EVERY_EDGE)
    compiled = compile_workflow(spec, source, tool_names={"calc"})

    declared = declared_steps(spec_to_data(spec))

    assert [s.id for s in declared] == [s.id for s in spec.steps]
    assert {s.id: list(s.deps) for s in declared} == {
        nid: sorted(node.deps) for nid, node in compiled.nodes.items()
    }
    assert declared[5] == DeclaredStep(id="late", kind="tool", deps=("j",))  # `after:`
    assert dict((s.id, s.deps) for s in declared)["no"] == ("br", "late")


def test_an_online_join_keeps_its_map_as_its_dependency() -> None:
    # the compiler starts it with the map (it watches the items finish); the record
    # still says which fan-out it joins
    spec = {"steps": [
        {"id": "a", "kind": "tool", "tool": "calc"},
        {"id": "m", "kind": "map", "over": "${steps.a.output}",
         "step": {"kind": "llm", "prompt": "{{ item }}"}},
        {"id": "j", "kind": "join", "of": "m", "reducer": "first_finish", "first": 1},
    ]}  # fmt: skip
    assert [s.deps for s in declared_steps(spec)] == [(), ("a",), ("m",)]


@pytest.mark.parametrize(
    "spec",
    [{}, {"steps": "no list"}, {"steps": None}],
)
def test_a_spec_without_a_list_of_steps_declares_none(spec: dict[str, object]) -> None:
    assert declared_steps(spec) == []


def test_unknown_ids_self_references_and_unwritable_kinds_are_left_out() -> None:
    declared = declared_steps({"steps": [
        {"id": "a", "kind": "tool", "tool": "calc", "args": {"x": "${steps.ghost.output}"},
         "after": ["a"]},
        {"id": "x", "kind": 7, "whatever": 1},
    ]})  # fmt: skip
    assert declared == [DeclaredStep("a", "tool", ()), DeclaredStep("x", None, ())]
