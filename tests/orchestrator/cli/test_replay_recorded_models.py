"""`ponder replay RUN --from STEP` of a run started with ``--model``: the steps it runs
again are served the model config the run was, as `ponder resume` serves it. A fork
read the workflow's file again and ran them on the model the file names (the bundled
one, where it names none), on every store backend. A ``--workflow FILE`` given is the
way to run them on other models: its own are used."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from orchestrator.cli import app

WORKFLOW = """\
name: ask
steps:
  - {id: a, kind: llm, prompt: "Say a."}
  - {id: b, kind: llm, prompt: "Say b after ${steps.a.output}."}
"""
SIMULATED = """\
backend: simulated
options:
  output_tokens: text
  responses:
    - {match: "Say a", output: "first"}
    - {match: "Say b", output: "second"}
"""
OTHER = WORKFLOW + """\
models:
  default:
    backend: simulated
    options:
      output_tokens: text
      responses:
        - {match: "Say b", output: "other"}
"""


def ponder(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _backends(db: str, run_id: str) -> dict[str, str | None]:
    shown = ponder("show", run_id, "--db", db, "--json")
    assert shown.exit_code == 0, shown.stderr
    return {s["id"]: (s.get("meta") or {}).get("backend") for s in json.loads(shown.stdout)["steps"]}


def _run(tmp_path: Path, db: str) -> str:
    (tmp_path / "ask.yaml").write_text(WORKFLOW)
    (tmp_path / "sim.yaml").write_text(SIMULATED)
    ran = ponder("run", str(tmp_path / "ask.yaml"), "--model",
                 f"default={tmp_path / 'sim.yaml'}", "--db", db, "--json")
    assert ran.exit_code == 0, ran.stderr
    assert json.loads(ran.stdout)["output"] == "second"
    return str(json.loads(ran.stdout)["run_id"])


def test_a_fork_runs_its_steps_on_the_recorded_model(tmp_path: Path, db: str) -> None:
    run_id = _run(tmp_path, db)
    forked = ponder("replay", run_id, "--from", "b", "--db", db, "--json")
    assert forked.exit_code == 0, forked.stderr
    doc = json.loads(forked.stdout)
    assert doc["output"] == "second"
    assert _backends(db, doc["run_id"]) == {"a": "simulated", "b": "simulated"}


def test_a_fork_of_a_workflow_given_runs_on_its_models(tmp_path: Path, db: str) -> None:
    run_id = _run(tmp_path, db)
    (tmp_path / "other.yaml").write_text(OTHER)
    forked = ponder("replay", run_id, "--from", "b", "--workflow",
                    str(tmp_path / "other.yaml"), "--db", db, "--json")
    assert forked.exit_code == 0, forked.stderr
    assert json.loads(forked.stdout)["output"] == "other"
