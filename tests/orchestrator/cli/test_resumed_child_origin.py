"""`ponder runs` and `ponder show` name the same step as a resumed spawn's child run's
origin: the one that runs it now (`sp@2[0]`, as the trace records after the resume);
`runs` said `sp[0]`. See tests/store/test_store_resumed_child_origin.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio

from orchestrator.runtime import events as ev
from orchestrator.store import open_store

ROOT = Path(__file__).resolve().parents[3]


def ponder(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args, "--db", db],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})


def test_runs_and_show_agree_on_a_resumed_childs_step(db: str) -> None:
    async def seed() -> None:
        async with await open_store(db) as store:
            await store.append([ev.RunStarted(run_id="top", seq=0, ts=1.7e9, workflow="w",
                                              inputs={})])
            await store.append([ev.RunStarted(
                run_id="kid", seq=0, ts=1.7e9 + 1, workflow="sub", inputs={},
                parent_run_id="top", parent_step_id="sp[0]", parent_attempt=1)])
            await store.append([
                ev.RunStarted(run_id="kid", seq=1, ts=1.7e9 + 5, workflow="sub", inputs={},
                              parent_run_id="top", parent_step_id="sp@2[0]",
                              parent_attempt=2, resumed=True),
                ev.RunFinished(run_id="kid", seq=2, ts=1.7e9 + 6, status="succeeded")])

    anyio.run(seed)
    listed = ponder("runs", db=db)
    assert listed.returncode == 0, listed.stderr
    (row,) = [line for line in listed.stdout.splitlines() if line.split()[:1] == ["kid"]]
    assert row.rstrip().endswith("step sp@2[0] of top"), row
    shown = ponder("show", "kid", db=db)
    assert shown.returncode == 0, shown.stderr
    assert "step sp@2[0] of top" in shown.stdout.splitlines()
