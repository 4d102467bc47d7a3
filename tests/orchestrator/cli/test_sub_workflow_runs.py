"""Sub-workflows' runs in the CLI. `ponder runs --top-level` lists only the runs no step
of another run started, as the viewer's "top-level only" does: a map over a sub-workflow
put one run per item above the run that started them. Forks and replays are runs a user
started, and are listed (they were left out with the sub-workflows' runs, as the runs
table could not tell them apart). `ponder show` names the run of each sub-workflow
step."""

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


def test_top_level_lists_forks_and_replays_and_says_where_each_run_came_from(
        db: str, tmp_path: Path) -> None:
    (tmp_path / "child.yaml").write_text(CHILD)
    (tmp_path / "parent.yaml").write_text(PARENT)
    assert ponder("run", str(tmp_path / "parent.yaml"), "--db", db).exit_code == 0
    (parent,) = [r["id"] for r in json.loads(ponder("runs", "--json", "--db", db,
                                                    "--top-level").stdout)]
    fork = ponder("replay", parent, "--from", "m", "--db", db, "--json")
    assert fork.exit_code == 0, fork.stderr
    replay = ponder("replay", parent, "--db", db, "--json")
    assert replay.exit_code == 0, replay.stderr
    fork_id, replay_id = json.loads(fork.stdout)["run_id"], json.loads(replay.stdout)["run_id"]

    top = json.loads(ponder("runs", "--json", "--db", db, "--top-level").stdout)
    assert [(r["id"], r["parent_run_id"], r["parent_step_id"], r["parent_attempt"])
            for r in top] == [(replay_id, parent, None, None), (fork_id, parent, "m", None),
                              (parent, None, None, None)]
    every = json.loads(ponder("runs", "--json", "--db", db).stdout)
    subs = [r for r in every if r["workflow"] == "child"]
    # 3 of the run, 3 of the fork (which runs m again); the replay serves m from the trace
    assert len(subs) == 6 and all(r["parent_attempt"] == 1 for r in subs)

    table = ponder("runs", "--db", db, "--top-level", "--limit", "3")
    header, *lines = table.stdout.splitlines()
    assert header.split()[-1] == "from"
    assert lines[0].split()[0] == replay_id and lines[0].endswith(f"replay of {parent}")
    assert lines[1].split()[0] == fork_id and lines[1].endswith(f"fork of {parent} from m")
    assert lines[2].split()[0] == parent and lines[2].split()[-1] == "4"  # steps m, m[0..2]; no origin

    (sub,) = [r for r in subs if r["parent_run_id"] == fork_id and r["parent_step_id"] == "m[1]"]
    assert ponder("show", sub["id"], "--db", db).stdout.splitlines()[1] == \
        f"step m[1] of {fork_id}"
    assert ponder("show", fork_id, "--db", db).stdout.splitlines()[1] == \
        f"fork of {parent} from m"
    assert not any(line.startswith(("fork", "replay", "step ")) for line in
                   ponder("show", parent, "--db", db).stdout.splitlines()[:2])
    # no run has a parent among these: no column for it
    plain = ponder("runs", "--db", db, "--top-level", "--offset", "2")
    assert plain.stdout.splitlines()[0].split()[-1] == "steps"
