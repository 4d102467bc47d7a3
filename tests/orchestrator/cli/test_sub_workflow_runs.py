"""Sub-workflows' runs in the CLI. `ponder runs --top-level` lists only the runs without a
parent run, as the viewer's "top-level only" does: a map over a sub-workflow put one run
per item above the run that started them. `ponder show` names the run of each
sub-workflow step."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from orchestrator.cli import app

CHILD = "name: child\ninputs: {x: {type: integer}}\nsteps:\n" \
        "  - {id: d, kind: tool, tool: calc, args: {expression: '${inputs.x} * 2'}}\n"
PARENT = "name: parent\nsteps:\n  - {id: m, kind: map, over: [1, 2, 3], step: " \
         "{kind: workflow, workflow: child.yaml, inputs: {x: '${item}'}}}\n"


def ponder(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _listed(*args: str) -> list[tuple[str, str | None]]:
    result = ponder("runs", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return [(r["workflow"], r["parent_run_id"]) for r in json.loads(result.stdout)]


def test_top_level_leaves_out_the_runs_of_sub_workflows(db: str, tmp_path: Path) -> None:
    (tmp_path / "child.yaml").write_text(CHILD)
    (tmp_path / "parent.yaml").write_text(PARENT)
    assert ponder("run", str(tmp_path / "parent.yaml"), "--db", db).exit_code == 0
    every = _listed("--db", db)
    assert sorted(w for w, _ in every) == ["child", "child", "child", "parent"]
    assert _listed("--db", db, "--top-level") == [("parent", None)]
    assert _listed("--db", db, "--top-level", "--status", "running") == []
    table = ponder("runs", "--db", db, "--top-level")
    assert [line.split()[1] for line in table.stdout.splitlines()[1:]] == ["parent"]
    none = ponder("runs", "--db", db, "--top-level", "--workflow", "child")
    assert none.stderr.startswith("no top-level runs of workflow 'child' in the trace store ")


def test_show_names_the_run_of_each_sub_workflow_step(db: str, tmp_path: Path) -> None:
    # the parent's table did not say which run a step's sub-workflow ran as
    (tmp_path / "child.yaml").write_text(CHILD)
    (tmp_path / "parent.yaml").write_text(PARENT)
    assert ponder("run", str(tmp_path / "parent.yaml"), "--db", db).exit_code == 0
    runs = json.loads(ponder("runs", "--json", "--db", db).stdout)
    (parent,) = [r["id"] for r in runs if r["workflow"] == "parent"]
    children = {r["parent_step_id"]: r["id"] for r in runs if r["workflow"] == "child"}
    table = ponder("show", parent, "--db", db)
    assert table.exit_code == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[1].split() == ["step", "kind", "status", "attempts", "time", "tokens", "run",
                                "error"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert {s: rows[s][-1] for s in ("m[0]", "m[1]", "m[2]")} == children
    assert len(rows["m"]) == 5  # the map itself ran as no run
    child = ponder("show", children["m[0]"], "--db", db)
    assert "run" not in child.stdout.splitlines()[1].split()  # no sub-workflow steps
