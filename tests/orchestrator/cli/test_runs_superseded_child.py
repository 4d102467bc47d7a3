"""A sub-workflow's run that its parent's resume abandoned (resumed without it: the step
started a new child run) is over, not interrupted: `ponder runs` says why it will not go
on, and `ponder resume CHILD` says so instead of running it alone."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
from typer.testing import CliRunner, Result

from orchestrator.cli import app
from orchestrator.runtime.durable import resume
from orchestrator.store import StoreHook, open_store
from tests.orchestrator.runtime.test_resume_abandoned_child_superseded import (
    _killed_in_child,
)


def ponder(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_runs_and_resume_say_an_abandoned_child_will_not_go_on(
        db: str, tmp_path: Path) -> None:
    async def abandon() -> tuple[str, str]:
        async with await open_store(db) as store:
            _, kept, child_id = await _killed_in_child(tmp_path, store)
            resumed = await resume(kept, hooks=[StoreHook(store)])
            assert resumed.ok, resumed.error
            return resumed.run_id, child_id

    parent, child = anyio.run(abandon)
    runs = ponder("runs", "--db", db)
    assert runs.exit_code == 0, runs.stderr
    (row,) = [line.split() for line in runs.stdout.splitlines() if line.split()[:1] == [child]]
    assert row[2] == "cancelled"
    assert f"{child}: superseded: run {parent} was resumed without it" in runs.stderr
    assert "it will not go on" in runs.stderr
    assert "interrupted" not in runs.stderr
    listed = {r["id"]: r for r in json.loads(ponder("runs", "--db", db, "--json").stdout)}
    assert not listed[child]["interrupted"] and "resume" not in listed[child]

    again = ponder("resume", child, "--db", db)
    assert again.exit_code != 0
    assert f"run {child} will not go on" in again.stderr and parent in again.stderr
