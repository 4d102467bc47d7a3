"""What a workflow asks of the sub-workflows it runs is checked before it runs: each
problem located at the calling step, reported with the others."""

from __future__ import annotations

from pathlib import Path

from orchestrator.errors import Problem
from orchestrator.graph.validate import validate_file
from orchestrator.runtime.registry import Registry
from orchestrator.spec.loader import load_yaml

SUB = """\
name: sub
inputs:
  q: {type: string}
  n: {type: integer, default: 1}
steps:
  - id: a
    kind: tool
    tool: calc
    args: {expression: "${inputs.n} + 1"}
"""


def _write(folder: Path, **files: str) -> None:
    for name, text in files.items():
        (folder / name).write_text(text)


def _at(problems: list[Problem], needle: str) -> Problem:
    found = [p for p in problems if needle in p.message]
    assert found, f"no problem mentions {needle!r}: {[p.message for p in problems]}"
    return found[0]


def test_inputs_a_workflow_step_passes_are_checked(tmp_path: Path) -> None:
    _write(tmp_path, **{"sub.yaml": SUB, "main.yaml": """\
name: main
steps:
  - id: w
    kind: workflow
    workflow: sub.yaml
    inputs: {bogus: 1, n: "abc"}
"""})
    problems = validate_file(tmp_path / "main.yaml")
    assert len(problems) == 3
    missing = _at(problems, "does not pass input 'q'")
    assert (missing.line, missing.column) == (6, 5)
    assert "step 'w'" in missing.message and "sub.yaml" in missing.message
    unknown = _at(problems, "'bogus'")
    assert (unknown.line, unknown.column) == (6, 14)
    assert "does not declare" in unknown.message and "q, n" in unknown.hint
    wrong = _at(problems, "must be integer, got 'abc'")
    assert (wrong.line, wrong.column) == (6, 24)


def test_values_the_run_accepts_pass(tmp_path: Path) -> None:
    # a string a run reads as JSON, a reference, a text with a reference in it, a map
    # item of the right type: all accepted at run time, so no problem now
    _write(tmp_path, **{"sub.yaml": SUB, "main.yaml": """\
name: main
inputs:
  x: {type: string}
steps:
  - id: w
    kind: workflow
    workflow: sub.yaml
    inputs: {q: "${inputs.x}", n: "5"}
  - id: v
    kind: workflow
    workflow: sub.yaml
    inputs: {q: "about ${steps.w.output}", n: "${inputs.x}"}
  - id: m
    kind: map
    over: ["a", "b"]
    step: {kind: workflow, workflow: sub.yaml, inputs: {q: "${item}"}}
"""})
    assert validate_file(tmp_path / "main.yaml") == []


def test_a_map_body_and_a_spawn_are_checked(tmp_path: Path) -> None:
    _write(tmp_path, **{"sub.yaml": SUB, "main.yaml": """\
name: main
inputs:
  k: {type: array}
steps:
  - id: m
    kind: map
    over: [1, 2]
    step:
      kind: workflow
      workflow: sub.yaml
      inputs: {q: "${item}", n: "${inputs.k}"}
  - id: s
    kind: spawn
    messages: ["a", "b"]
    workflow: sub.yaml
"""})
    problems = validate_file(tmp_path / "main.yaml")
    item = _at(problems, "must be string, got 1 (an item of the map)")
    assert (item.line, item.column) == (11, 16)
    typed = _at(problems, "`${inputs.k}`, which this workflow declares array")
    assert typed.line == 11
    spawn_default = _at(problems, "passes each child the input 'message'")
    assert spawn_default.line == 15 and "q, n" in spawn_default.hint
    spawn_missing = _at(problems, "step 's' does not pass input 'q'")
    assert spawn_missing.line == 15
    assert len(problems) == 4


def test_a_sub_workflow_that_does_not_parse_or_has_problems(tmp_path: Path) -> None:
    _write(tmp_path, **{"broken.yaml": "name: broken\nsteps: [\n",
                        "bad.yaml": "name: bad\nsteps:\n  - {id: a, kind: tool, tool: nope}\n",
                        "main.yaml": """\
name: main
steps:
  - {id: b, kind: workflow, workflow: broken.yaml}
  - {id: c, kind: workflow, workflow: bad.yaml}
  - {id: d, kind: workflow, workflow: missing.yaml}
"""})
    problems = validate_file(tmp_path / "main.yaml")
    broken = _at(problems, "'broken.yaml' is not a valid workflow")
    assert broken.line == 3 and "broken.yaml:3:1: YAML syntax" in broken.message
    assert str(tmp_path) not in broken.message  # shown relative to the caller
    bad = _at(problems, "'bad.yaml' has problems")
    assert bad.line == 4 and "bad.yaml:3:25: unknown tool 'nope'" in bad.message
    # a file that is not there is the compiler's problem, said once
    assert [p.line for p in problems if "missing.yaml" in p.message] == [5]


def test_workflows_that_run_each_other_unconditionally(tmp_path: Path) -> None:
    _write(tmp_path, **{
        "a.yaml": "name: a\nsteps:\n  - {id: x, kind: workflow, workflow: b.yaml}\n",
        "b.yaml": "name: b\nsteps:\n  - {id: y, kind: workflow, workflow: a.yaml}\n",
        "main.yaml": "name: main\nsteps:\n  - {id: z, kind: workflow, workflow: a.yaml}\n"})
    problems = validate_file(tmp_path / "a.yaml")
    assert len(problems) == 1
    assert problems[0].line == 3
    assert "a.yaml -> b.yaml -> a.yaml" in problems[0].message
    (outside,) = validate_file(tmp_path / "main.yaml")
    assert "'a.yaml' has problems" in outside.message
    assert "a.yaml -> b.yaml -> a.yaml" in outside.message
    (itself,) = validate_file(_write_self(tmp_path))
    assert "me.yaml -> me.yaml" in itself.message


def _write_self(folder: Path) -> Path:
    path = folder / "me.yaml"
    path.write_text("name: me\nsteps:\n  - {id: x, kind: workflow, workflow: me.yaml}\n")
    return path


def test_a_recursion_that_can_end_is_valid(tmp_path: Path) -> None:
    # under a branch, over items from a step (maybe none), or through a spawn (bounded
    # by max_depth): the run decides when to stop
    _write(tmp_path, **{"r.yaml": """\
name: r
inputs:
  n: {type: integer, default: 0}
steps:
  - id: more
    kind: branch
    cases: [{when: "inputs.n < 3", then: [again]}]
  - {id: again, kind: workflow, workflow: r.yaml, inputs: {n: 1}}
  - {id: after, kind: tool, tool: calc, args: {expression: "${steps.again.output} + 1"}}
  - {id: items, kind: tool, tool: calc, args: {expression: "1"}}
  - id: each
    kind: map
    over: ${steps.items.output}
    step: {kind: workflow, workflow: r.yaml}
  - {id: s, kind: spawn, messages: [a], workflow: r.yaml, inputs: {}}
"""})
    assert validate_file(tmp_path / "r.yaml") == []


def test_a_registered_workflow_is_checked_by_name(tmp_path: Path) -> None:
    sub, _ = load_yaml("sub.yaml", text=SUB)
    registry = Registry.default()
    registry.workflows["lib"] = sub
    _write(tmp_path, **{"main.yaml": "name: main\nsteps:\n"
                                     "  - {id: w, kind: workflow, workflow: lib}\n"})
    (problem,) = validate_file(tmp_path / "main.yaml", registry)
    assert "does not pass input 'q'" in problem.message and "'lib'" in problem.message


def test_a_sub_workflow_that_is_a_directory_or_empty_is_named_so(tmp_path: Path) -> None:
    """Both were "not found", which sent the user looking for a file that is there."""
    (tmp_path / "child").mkdir()
    _write(tmp_path, **{"main.yaml": """\
name: main
steps:
  - {id: a, kind: workflow, workflow: child}
  - {id: b, kind: workflow, workflow: ""}
  - {id: c, kind: spawn, messages: [x], workflow: child}
"""})
    problems = validate_file(tmp_path / "main.yaml")
    assert [(p.line, p.message) for p in problems] == [
        (3, f"sub-workflow 'child' is a directory (in {tmp_path.name}/), not a workflow file"),
        (4, "`workflow:` is empty: it names no sub-workflow"),
        (5, f"sub-workflow 'child' is a directory (in {tmp_path.name}/), not a workflow file"),
    ]
