"""`ponder runs --status interrupted|running` narrows the running runs before --limit
and --offset cut the page: with more live runs than --limit, the interrupted ones were
missed, and the listing said there were none."""

from __future__ import annotations

import json
import os
from typing import Any

import anyio
from typer.testing import CliRunner, Result

from orchestrator.cli import app
from orchestrator.runtime import events as ev
from orchestrator.runtime._process import host_name, writer_fields
from orchestrator.store import open_store

# this process's id with another start: a writer known to be gone
GONE: dict[str, Any] = {"writer_host": host_name(), "writer_pid": os.getpid(),
                        "writer_start": "another-boot:1"}


def ponder(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _seed(db: str) -> None:
    async def seed() -> None:
        async with await open_store(db) as store:
            for i in range(4):  # the newest: live
                await store.append([ev.RunStarted(run_id=f"live{i}", seq=0, ts=1.7e9 - i,
                                                  workflow="w", inputs={}, **writer_fields())])
            for i in range(2):
                await store.append([ev.RunStarted(run_id=f"gone{i}", seq=0, ts=1.6e9 - i,
                                                  workflow="w", inputs={}, **GONE)])

    anyio.run(seed)


def test_interrupted_runs_past_the_limit_of_running_ones_are_listed(db: str) -> None:
    _seed(db)
    listed = ponder("runs", "--db", db, "--status", "interrupted", "--limit", "2", "--json")
    assert listed.exit_code == 0, listed.stderr
    docs = json.loads(listed.stdout)
    assert [(d["id"], d["interrupted"]) for d in docs] == [("gone0", True), ("gone1", True)]
    shown = ponder("runs", "--db", db, "--status", "interrupted", "--limit", "1", "--offset", "1")
    assert shown.exit_code == 0, shown.stderr
    assert "gone1" in shown.stdout and "gone0" not in shown.stdout
    assert "no interrupted runs" not in shown.stderr
    assert "`ponder resume RUN_ID`" in shown.stderr
    live = ponder("runs", "--db", db, "--status", "running", "--limit", "3", "--offset", "2",
                  "--json")
    assert [d["id"] for d in json.loads(live.stdout)] == ["live2", "live3"]
