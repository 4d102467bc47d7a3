"""`ponder replay CHILD --from STEP --input k=v` of a sub-workflow's run: the run records
the inputs its parent passed, also where the child's workflow declares none (no step of
it can read one). A refused --input named those too, as if the user had given them
("unknown inputs 'x', 'y'" for `--input y=2`); now only the inputs given are named."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from orchestrator.cli import app

KID = """\
name: kid
steps:
  - {id: k, kind: tool, tool: calc, args: {expression: "1 + 1"}}
outputs:
  k: ${steps.k.output}
"""
KID_WITH_INPUTS = """\
name: kid
inputs:
  x: {type: integer}
steps:
  - {id: k, kind: tool, tool: calc, args: {expression: "${inputs.x} + 1"}}
outputs:
  k: ${steps.k.output}
"""
MAIN = """\
name: main
steps:
  - {id: w, kind: workflow, workflow: kid.yaml, inputs: {x: 5}}
outputs:
  w: ${steps.w.output}
"""


def ponder(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _child_run(tmp_path: Path, db: str, kid: str) -> str:
    (tmp_path / "kid.yaml").write_text(kid)
    (tmp_path / "main.yaml").write_text(MAIN)
    ran = ponder("run", str(tmp_path / "main.yaml"), "--db", db, "--json")
    assert ran.exit_code == 0, ran.stderr
    parent = json.loads(ran.stdout)["run_id"]
    runs = json.loads(ponder("runs", "--db", db, "--json").stdout)
    (child,) = [r["id"] for r in runs if r["id"] != parent]
    return str(child)


def _runs(db: str) -> int:
    return len(json.loads(ponder("runs", "--db", db, "--json").stdout))


def test_a_refused_input_of_a_child_without_inputs_names_only_what_was_given(
        tmp_path: Path, db: str) -> None:
    child = _child_run(tmp_path, db, KID)
    for given in ("y", "x"):  # another name, and the one the parent passed
        refused = ponder("replay", child, "--from", "k", "--input", f"{given}=2", "--db", db)
        assert refused.exit_code == 1, (refused.stdout, refused.stderr)
        assert refused.stderr == (f"error: unknown input '{given}' (the workflow declares "
                                  "no inputs)\n"), refused.stderr
    assert _runs(db) == 2  # nothing recorded for the refused replays
    # the recorded inputs themselves do not stand in the way of a fork
    forked = ponder("replay", child, "--from", "k", "--set", "k.output=3", "--db", db,
                    "--json")
    assert forked.exit_code == 0, forked.stderr
    assert json.loads(forked.stdout)["output"] == {"k": 3}


def test_a_child_that_declares_its_inputs_takes_them(tmp_path: Path, db: str) -> None:
    child = _child_run(tmp_path, db, KID_WITH_INPUTS)
    forked = ponder("replay", child, "--from", "k", "--input", "x=9", "--db", db, "--json")
    assert forked.exit_code == 0, forked.stderr
    assert json.loads(forked.stdout)["output"] == {"k": 10}
    refused = ponder("replay", child, "--from", "k", "--input", "y=1", "--db", db)
    assert refused.exit_code == 1
    assert refused.stderr == "error: unknown input 'y' (declared: x)\n", refused.stderr
