"""`ponder resume` of a run that has finished already runs nothing, says so in one line,
and exits as `ponder run` of that run did: 1 for a failed run (a script sees it), 0 for a
succeeded one; a cancelled run is no finished run: it is continued. On every store
backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio

from orchestrator.sdk import Workflow
from orchestrator.store import StoreHook, open_store
from tests.orchestrator.cli.test_json_errors import ponder

FAILS = ("name: f\nsteps:\n  - {id: ok, kind: tool, tool: calc, args: {expression: '6*7'}}\n"
         "  - {id: boom, kind: tool, tool: calc, args: {expression: '1/0'}}\n")
SUCCEEDS = "name: s\nsteps:\n  - {id: a, kind: tool, tool: calc, args: {expression: '6*7'}}\n"


def _run(tmp_path: Path, db: str, text: str) -> dict[str, Any]:
    wf = tmp_path / "w.yaml"
    wf.write_text(text)
    doc: dict[str, Any] = json.loads(ponder("run", str(wf), "--db", db, "--json").stdout)
    return doc


def test_resume_of_a_failed_run_exits_1_as_its_run_did(tmp_path: Path, db: str) -> None:
    run = _run(tmp_path, db, FAILS)
    assert run["status"] == "failed"
    result = ponder("resume", run["run_id"], "--db", db)
    assert result.exit_code == 1, result.stderr
    assert result.stderr == (f"run {run['run_id']} already finished (failed); nothing to "
                             "resume; to run it again from a step: ponder replay "
                             f"{run['run_id']} --from boom\n")
    assert result.stdout == ""
    result = ponder("resume", run["run_id"], "--db", db, "--json")
    assert result.exit_code == 1, result.stderr
    doc = json.loads(result.stdout)  # the run's result, not an error document
    assert (doc["run_id"], doc["status"]) == (run["run_id"], "failed")
    assert "division by zero" in doc["error"]


def test_resume_of_a_succeeded_run_exits_0_and_says_so(tmp_path: Path, db: str) -> None:
    run = _run(tmp_path, db, SUCCEEDS)
    result = ponder("resume", run["run_id"][:6], "--db", db)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == (f"run {run['run_id']} already finished (succeeded); nothing to "
                             "resume\n")


def cancelled_run(tmp_path: Path, db: str) -> str:
    """The id of a run of SUCCEEDS cancelled as it started, stored in ``db``."""
    wf = tmp_path / "w.yaml"
    wf.write_text(SUCCEEDS)

    async def cancelled() -> str:
        store = await open_store(db)
        try:
            result = await Workflow.from_yaml(wf).run(
                {}, hooks=[StoreHook(store)], on_scheduler=lambda s: s.cancel())
        finally:
            await store.close()
        assert result.status == "cancelled"
        return result.run_id

    return anyio.run(cancelled)


def test_resume_of_a_cancelled_run_continues_it(tmp_path: Path, db: str) -> None:
    run_id = cancelled_run(tmp_path, db)
    result = ponder("resume", run_id, "--db", db, "--json")
    assert result.exit_code == 0, result.stderr
    assert "already finished" not in result.stderr
    doc = json.loads(result.stdout)
    assert (doc["status"], doc["output"]) == ("succeeded", 42)
