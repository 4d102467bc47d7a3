"""Sub-workflows that every run nests deeper than the engine's limit are a problem
before the run: a chain of ten workflow files, each calling the next, validated clean
and failed at run time, at its last call ("would run at nesting depth 9, past the limit
of 8 nested runs"), after the steps before it had run (and spent their tokens)."""

from __future__ import annotations

import time
from pathlib import Path

from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.graph.validate import validate_file
from orchestrator.runtime.registry import Registry
from orchestrator.spec.kinds_fanout import MAX_NESTING_DEPTH
from orchestrator.spec.loader import load_yaml

TOOL = '  - {id: t, kind: tool, tool: calc, args: {expression: "1"}}\n'


def _chain(folder: Path, n: int, call: str = "  - {{id: c, kind: workflow, workflow: {ref}}}\n",
           last: str = "") -> list[Path]:
    """Files w0.yaml ... w{n-1}.yaml, each calling the next with ``call``; the last one
    with ``last``."""
    paths = []
    for i in range(n):
        body = call.format(ref=f"w{i + 1}.yaml") if i < n - 1 else last
        path = folder / f"w{i}.yaml"
        path.write_text(f"name: w{i}\nsteps:\n{TOOL}{body}")
        paths.append(path)
    return paths


def test_a_chain_past_the_limit_is_said_at_the_call_that_starts_it(tmp_path: Path) -> None:
    paths = _chain(tmp_path, MAX_NESTING_DEPTH + 2)  # w0 runs w9 at depth 9
    (problem,) = validate_file(paths[0])
    assert (Path(problem.file), problem.line, problem.column) == (paths[0], 4, 29)
    assert problem.message == (
        "step 'c': sub-workflows nest deeper than the limit of 8 nested runs: step 'c' "
        "(w8.yaml:4:29) would run 'w9.yaml' at nesting depth 9: "
        + " -> ".join(f"w{i}.yaml" for i in range(10)))
    assert "branch" in problem.hint
    # from w1 the chain goes exactly as deep as the limit: it runs
    assert validate_file(paths[1]) == []


def test_the_longest_chain_is_found_among_several(tmp_path: Path) -> None:
    _chain(tmp_path, MAX_NESTING_DEPTH + 2)
    (tmp_path / "short.yaml").write_text(f"name: short\nsteps:\n{TOOL}")
    (tmp_path / "main.yaml").write_text(
        "name: main\nsteps:\n  - {id: s, kind: workflow, workflow: short.yaml}\n"
        "  - id: m\n    kind: map\n    over: [1, 2]\n"
        "    step: {kind: workflow, workflow: w1.yaml}\n")
    (problem,) = validate_file(tmp_path / "main.yaml")
    assert problem.line == 7 and "step 'm'" in problem.message
    assert "main.yaml -> w1.yaml -> " in problem.message
    assert "step 'c' (w8.yaml:4:29) would run 'w9.yaml' at nesting depth 9" in (
        problem.message)


def test_calls_a_run_may_skip_are_left_to_the_run(tmp_path: Path) -> None:
    # under a branch, over items that may be none, through a spawn (its max_depth): the
    # run decides how deep it goes, as for a recursion that may end
    for i, call in enumerate([
        "  - id: b\n    kind: branch\n    cases: [{{when: '1 < 2', then: [c]}}]\n"
        "  - {{id: c, kind: workflow, workflow: {ref}}}\n",
        "  - id: c\n    kind: map\n    over: ${{steps.t.output}}\n"
        "    step: {{kind: workflow, workflow: {ref}}}\n",
        "  - {{id: c, kind: spawn, messages: [a], workflow: {ref}, inputs: {{}}}}\n",
    ]):
        folder = tmp_path / str(i)
        folder.mkdir()
        paths = _chain(folder, MAX_NESTING_DEPTH + 3, call=call)
        assert validate_file(paths[0]) == [], call


def test_a_registered_workflow_on_the_chain_is_named(tmp_path: Path) -> None:
    registry = Registry.default()
    for i in range(MAX_NESTING_DEPTH + 1):  # lib0 runs lib1 ... lib8 runs lib9
        nxt = f"  - {{id: c{i}, kind: workflow, workflow: lib{i + 1}}}\n"
        registry.workflows[f"lib{i}"], _ = load_yaml(
            f"lib{i}.yaml", text=f"name: lib{i}\nsteps:\n{TOOL}{nxt}")
    registry.workflows[f"lib{MAX_NESTING_DEPTH + 1}"], _ = load_yaml(
        "last.yaml", text=f"name: last\nsteps:\n{TOOL}")
    (tmp_path / "main.yaml").write_text(
        "name: main\nsteps:\n  - {id: go, kind: workflow, workflow: lib1}\n")
    (problem,) = validate_file(tmp_path / "main.yaml", registry)
    assert problem.line == 3
    assert "step 'c8' (workflow 'lib8') would run 'lib9' at nesting depth 9" in (
        problem.message)


def test_many_calls_at_every_level_are_walked_once(tmp_path: Path) -> None:
    # five calls of the next file in each of twelve files: 5**11 chains, one walk each file
    calls = "".join(f"  - {{{{id: c{j}, kind: workflow, workflow: {{ref}}}}}}\n"
                    for j in range(5))
    paths = _chain(tmp_path, 12, call=calls)
    started = time.perf_counter()
    problems = validate_file(paths[0])
    assert time.perf_counter() - started < 20
    assert {p.line for p in problems if "nest deeper" in p.message} == {4, 5, 6, 7, 8}


def test_ponder_run_refuses_it_before_any_step_runs(tmp_path: Path) -> None:
    paths = _chain(tmp_path, MAX_NESTING_DEPTH + 2)
    db = tmp_path / "trace.db"
    result = CliRunner().invoke(app, ["run", str(paths[0]), "--db", str(db)])
    assert result.exit_code == 1, result.output
    assert "would run 'w9.yaml' at nesting depth 9" in result.stderr
    listed = CliRunner().invoke(app, ["runs", "--db", str(db)])
    assert "w0" not in listed.stdout
