"""The ``--json`` contract of the commands over the trace store, on SQLite and PostgreSQL:
a run id that names no run, or several, is one error document naming it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orchestrator.runtime._process import host_name
from orchestrator.store._url import hide_password
from tests.orchestrator.cli.test_json_errors import error_of, ponder

CALC = "name: w\nsteps:\n  - {id: a, kind: tool, tool: calc, args: {expression: '6*7'}}\n"
BY_ID = ("show", "resume", "replay")


def _import(tmp_path: Path, db: str, run_id: str, **writer: object) -> None:
    doc = tmp_path / f"{run_id}.json"
    doc.write_text(json.dumps({"format": "ponder.trace", "version": 1, "events": [
        {"run_id": run_id, "seq": 0, "ts": 1.0, "kind": "run_started", "workflow": "w",
         "inputs": {}, **writer}]}))
    result = ponder("import", str(doc), "--db", db)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("command", BY_ID)
def test_a_run_id_that_names_no_run(db: str, command: str) -> None:
    error = error_of(ponder(command, "zzzz", "--db", db, "--json"), "run_not_found")
    # the store searched is named: a run made with another --db is not in it
    assert error["message"] == (f"no run 'zzzz' in the trace store {hide_password(db)} "
                                "(`ponder runs` lists its runs; another store: --db URL or "
                                "PONDER_DB_URL)")


@pytest.mark.parametrize("command", BY_ID)
def test_a_run_id_that_starts_several_runs_ids(tmp_path: Path, db: str, command: str) -> None:
    for run_id in ("abc1", "abc2"):
        _import(tmp_path, db, run_id)
    error = error_of(ponder(command, "abc", "--db", db, "--json"), "ambiguous_run_id")
    assert sorted(error["matches"]) == ["abc1", "abc2"]
    assert error["message"].startswith("run id 'abc' is the start of several runs' ids")


def test_resume_of_a_finished_run_prints_the_run(tmp_path: Path, db: str) -> None:
    wf = tmp_path / "w.yaml"
    wf.write_text(CALC)
    run = json.loads(ponder("run", str(wf), "--db", db, "--json").stdout)
    result = ponder("resume", run["run_id"], "--db", db, "--json")
    # nothing to resume is not a failure; before, stdout stayed empty
    assert result.exit_code == 0, result.stderr
    assert "already finished (succeeded); nothing to resume" in result.stderr
    doc = json.loads(result.stdout)
    assert {k: doc[k] for k in ("run_id", "status", "output")} == {
        "run_id": run["run_id"], "status": "succeeded", "output": 42}
    assert [s["id"] for s in doc["steps"]] == ["a"] and set(doc) == set(run)


def test_resume_of_a_run_whose_process_is_alive(tmp_path: Path, db: str) -> None:
    _import(tmp_path, db, "live", writer_host=host_name(), writer_pid=os.getppid())
    error = error_of(ponder("resume", "live", "--db", db, "--json"), "run_still_running")
    assert error["message"].startswith("run live is still running")


def test_runs_takes_the_largest_limit_and_offset(tmp_path: Path, db: str) -> None:
    _import(tmp_path, db, "abc1")
    top = str(2**63 - 1)
    result = ponder("runs", "--db", db, "--limit", top, "--json")
    assert result.exit_code == 0 and [r["id"] for r in json.loads(result.stdout)] == ["abc1"]
    result = ponder("runs", "--db", db, "--offset", top, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_replay_with_a_workflow_file_that_is_not_utf8(tmp_path: Path, db: str) -> None:
    wf = tmp_path / "w.yaml"
    wf.write_text(CALC)
    run_id = json.loads(ponder("run", str(wf), "--db", db, "--json").stdout)["run_id"]
    wf.write_bytes(CALC.encode().replace(b"w\n", b"\xe9\n", 1))
    error = error_of(ponder("replay", run_id, "--workflow", str(wf), "--db", db, "--json"),
                     "workflow")
    assert error["location"] == f"{wf}:1:7"  # an internal UnicodeDecodeError before


def test_a_sqlite_file_name_too_long_is_a_store_error(tmp_path: Path) -> None:
    name = tmp_path / ("a" * 300)  # longer than a file name may be
    error = error_of(ponder("runs", "--db", f"sqlite:///{name}", "--json"), "store")
    # it was an internal error: the OSError of checking whether the file exists
    assert error["message"].startswith(f"cannot open SQLite file {name}: "), error
