"""A plan step's ``tools:`` allowlist is checked when the workflow is validated, for the
steps known before the run (a static plan's): `ponder validate` and `ponder run` report
each step that reaches outside it, at its line, instead of a plan error mid-run."""

from __future__ import annotations

from pathlib import Path

from orchestrator.graph.validate import validate_file
from orchestrator.runtime.registry import Registry

SUB = """\
name: sub
inputs:
  q: {type: string}
steps:
  - {id: inner, kind: tool, tool: calc, args: {expression: "1"}}
"""

MAIN = """\
name: main
tools:
  lookup: "tools:lookup"
steps:
  - id: p
    kind: plan
    planner: static
    goal: g
    tools: [lookup]
    options:
      steps:
        - {id: ok, kind: tool, tool: lookup, args: {city: Paris}}
        - {id: out, kind: tool, tool: calc, args: {expression: "1"}}
        - {id: sub, kind: workflow, workflow: sub.yaml, inputs: {q: x, z: 1}}
        - {id: gone, kind: workflow, workflow: gone.yaml}
        - {id: typo, kind: tool, tool: nosuch}
        - {id: m, kind: map, over: ["1"], step: {kind: tool, tool: calc, args: {expression: "${item}"}}}
"""


def _files(folder: Path) -> Path:
    (folder / "tools.py").write_text("def lookup(city: str) -> int:\n    return 1\n")
    (folder / "sub.yaml").write_text(SUB)
    (folder / "main.yaml").write_text(MAIN)
    return folder / "main.yaml"


def test_static_plan_steps_outside_the_allowlist_are_located(tmp_path: Path) -> None:
    found = [(p.line, p.column, p.message) for p in validate_file(_files(tmp_path))]
    assert found == [
        (13, 11, "plan 'p': step 'out' calls tool 'calc', which is not allowed here "
                 "(allowed: lookup)"),
        (14, 11, "plan 'p': step 'sub' runs sub-workflow 'sub.yaml', whose step 'inner' "
                 "calls tool 'calc', which is not allowed here (allowed: lookup)"),
        (14, 72, "step 'sub' passes input 'z', which sub-workflow 'sub.yaml' does not "
                 "declare"),
        (15, 38, "sub-workflow 'gone.yaml' not found (looked in "
                 f"{tmp_path.name}/)"),
        (16, 34, "unknown tool 'nosuch'"),
        (17, 11, "plan 'p': step 'm' calls tool 'calc', which is not allowed here "
                 "(allowed: lookup)"),
    ]


def test_tools_naming_a_sub_workflow_says_it_is_not_a_tool(tmp_path: Path) -> None:
    (tmp_path / "sub.yaml").write_text(SUB)
    main = tmp_path / "main.yaml"
    main.write_text("name: main\nsteps:\n"
                    "  - {id: p, kind: plan, goal: g, tools: [calc, sub.yaml, nope]}\n")
    found = [(p.line, p.column, p.message) for p in validate_file(main)]
    assert found == [(3, 48, "plan 'p': `tools:` names sub-workflow 'sub.yaml', not a tool"),
                     (3, 58, "unknown tool 'nope'")]


def test_an_empty_allowlist_checks_nothing(tmp_path: Path) -> None:
    _files(tmp_path)
    main = tmp_path / "main.yaml"
    main.write_text(MAIN.replace("    tools: [lookup]\n", "")
                    .replace(", z: 1", "").replace("        - {id: gone, kind: workflow, "
                                                   "workflow: gone.yaml}\n", "")
                    .replace("        - {id: typo, kind: tool, tool: nosuch}\n", ""))
    assert validate_file(main) == []


def test_the_registry_gives_a_static_plans_steps() -> None:
    reg = Registry.default()
    steps = [{"id": "a", "kind": "tool", "tool": "calc"}]
    assert [s.id for s in reg.planner_known_steps("static", {"steps": steps})] == ["a"]
    assert reg.planner_known_steps("static", {"steps": [{"kind": "llm"}]}) == []
    assert reg.planner_known_steps("llmcompiler", {}) == []
    assert reg.planner_known_steps("nonesuch", {}) == []
