"""`ponder import` of a trace whose recorded workflow does not read as one of this version
of Ponder (written by another version) stores it, for `ponder show`, `ponder export` and
the viewer read it as it is, and warns in one line naming the run and the first problem,
as `ponder resume` later refuses it; it said nothing, and the run failed only when
resumed. On every store backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio

from orchestrator.store import MemoryStore
from tests.orchestrator.cli.test_json_errors import ponder
from tests.orchestrator.runtime.test_recorded_spec_unreadable import unreadable

PROBLEM = ("the workflow 'w' its trace records does not read as a workflow of this version "
           "of Ponder (steps.0: Input tag 'nosuch'")


def _exported(tmp_path: Path, events: list[Any]) -> Path:
    async def export() -> dict[str, Any]:
        store = MemoryStore()
        await store.append(events)
        return await store.export_run(events[0].run_id)

    doc = tmp_path / "trace.json"
    doc.write_text(json.dumps(anyio.run(export)))
    return doc


def test_import_warns_naming_the_run_and_the_problem(tmp_path: Path, db: str) -> None:
    events = anyio.run(unreadable, tmp_path)
    run_id = events[0].run_id
    result = ponder("import", str(_exported(tmp_path, events)), "--db", db)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"imported run {run_id}\n"
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"warning: run {run_id}: {PROBLEM}"), line
    assert line.endswith("it can be shown and viewed, not resumed; replay it with its "
                         "workflow file (ponder replay --workflow FILE; without it, replay "
                         "reads the file the run was started from, where that still "
                         "exists)"), line
    shown = ponder("show", run_id, "--db", db, "--json")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["id"] == run_id
    resumed = ponder("resume", run_id, "--db", db)  # the problem the warning named
    assert resumed.exit_code == 1 and PROBLEM in resumed.stderr


def test_a_trace_that_records_no_workflow_is_named_so(tmp_path: Path, db: str) -> None:
    doc = tmp_path / "bare.json"
    doc.write_text(json.dumps({"format": "ponder.trace", "version": 1, "events": [
        {"run_id": "bare", "seq": 0, "ts": 1.0, "kind": "run_started", "workflow": "w",
         "inputs": {}}]}))
    result = ponder("import", str(doc), "--db", db)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith("warning: run bare: its trace records no workflow ('w'): "
                                    "it can be shown and viewed, not resumed"), result.stderr


def test_import_of_a_readable_workflow_says_nothing_more(tmp_path: Path, db: str) -> None:
    events = anyio.run(unreadable, tmp_path)
    readable = [e.model_copy(update={"spec": {**events[0].spec, "steps": [
        {**events[0].spec["steps"][0], "kind": "tool"}]}}) if e.seq == 0 else e
                for e in events]
    result = ponder("import", str(_exported(tmp_path, readable)), "--db", db)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
