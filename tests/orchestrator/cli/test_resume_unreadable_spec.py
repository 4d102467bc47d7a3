"""`ponder resume` / `ponder replay` of a run whose recorded workflow does not read as one
of this version of Ponder: one line naming the run and the problem, exit 1; it was
"internal error: ValidationError: 1 validation error for WorkflowSpec ...", exit 2, over
several lines. On every store backend."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
from typer.testing import CliRunner, Result

from orchestrator.cli import app
from orchestrator.store import open_store
from tests.orchestrator.runtime.test_recorded_spec_unreadable import unreadable


def ponder(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _stored(tmp_path: Path, db: str) -> str:
    async def store_it() -> str:
        events = await unreadable(tmp_path)
        store = await open_store(db)
        try:
            await store.append(events)
        finally:
            await store.close()
        return str(events[0].run_id)

    return anyio.run(store_it)


def test_resume_and_replay_say_what_is_wrong_in_one_line(tmp_path: Path, db: str) -> None:
    run_id = _stored(tmp_path, db)
    for command in ("resume", "replay"):
        proc = ponder(command, run_id, "--db", db)
        assert proc.exit_code == 1, (command, proc.stderr)
        (line,) = proc.stderr.splitlines()
        assert line.startswith(f"error: run {run_id}: the workflow 'w' its trace records "
                               "does not read as a workflow of this version of Ponder"), line
        assert "internal error" not in line
    as_json = ponder("replay", run_id, "--db", db, "--json")
    assert json.loads(as_json.stdout)["error"]["kind"] == "error"
    fixed = ponder("replay", run_id, "--db", db, "--workflow", str(tmp_path / "w.yaml"),
                   "--json")
    assert fixed.exit_code == 0, fixed.stderr
