"""`ponder replay RUN --from STEP --input k=v` refuses inputs the workflow does not take,
as `ponder run` does (``Workflow.check_inputs``): a workflow without `inputs:` takes none,
and the value was accepted and ignored before. Nothing is recorded for a refused replay."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from orchestrator.cli import app

NO_INPUTS = """\
name: w
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "6 * 7"}}
  - {id: b, kind: tool, tool: calc, args: {expression: "${steps.a.output} + 1"}}
"""
WITH_INPUTS = """\
name: w
inputs:
  n: {type: integer, default: 2}
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "${inputs.n} * 7"}}
"""


def ponder(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _recorded(tmp_path: Path, db: str, text: str) -> str:
    wf = tmp_path / "w.yaml"
    wf.write_text(text)
    first = ponder("run", str(wf), "--db", db, "--json")
    assert first.exit_code == 0, first.stderr
    run_id: str = json.loads(first.stdout)["run_id"]
    return run_id


def _runs(db: str) -> int:
    return len(json.loads(ponder("runs", "--db", db, "--json").stdout))


def test_an_input_to_a_workflow_without_inputs_is_refused(tmp_path: Path, db: str) -> None:
    run_id = _recorded(tmp_path, db, NO_INPUTS)
    refused = ponder("replay", run_id, "--from", "a", "--input", "zz=1", "--db", db)
    assert refused.exit_code == 1, (refused.stdout, refused.stderr)
    assert refused.stderr == ("error: unknown input 'zz' (the workflow declares no "
                              "inputs)\n"), refused.stderr
    as_json = ponder("replay", run_id, "--from", "a", "--input", "zz=1", "--db", db, "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["error"]["kind"] == "input"
    assert _runs(db) == 1  # nothing was recorded for the refused replays
    forked = ponder("replay", run_id, "--from", "a", "--db", db, "--json")
    assert forked.exit_code == 0, forked.stderr


def test_inputs_the_workflow_declares_are_still_taken_and_others_refused(
        tmp_path: Path, db: str) -> None:
    run_id = _recorded(tmp_path, db, WITH_INPUTS)
    forked = ponder("replay", run_id, "--from", "a", "--input", "n=3", "--db", db, "--json")
    assert forked.exit_code == 0, forked.stderr
    assert json.loads(forked.stdout)["output"] == 21
    refused = ponder("replay", run_id, "--from", "a", "--input", "zz=1", "--db", db)
    assert refused.exit_code == 1 and "unknown input 'zz'" in refused.stderr, refused.stderr
    assert _runs(db) == 2
