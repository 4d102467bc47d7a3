"""`ponder show` of a resumed run: a step's time is its own, not the downtime between
the crash and the resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.runtime.durable import resume
from orchestrator.store import SqlStore, StoreHook
from tests.orchestrator.runtime.cut_runs import HOUR, cut_an_hour_ago

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_show_gives_a_resumed_steps_time_without_the_downtime(tmp_path: Path) -> None:
    run_id, kept = await cut_an_hour_ago(tmp_path)  # the process died while `b` ran
    db = tmp_path / "runs.db"
    async with SqlStore(str(db)) as store:
        await store.append(kept)
        resumed = await resume(kept, hooks=[StoreHook(store)])
        record = await store.read_run(run_id)
    assert resumed.ok and resumed.output == {"b": 3}
    b = record.step("b")
    assert b.attempts == 2 and b.finished_at is not None and b.started_at is not None
    assert b.finished_at - b.started_at > HOUR  # its first start was before the crash

    def show(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "show", run_id,
                               *args, "--db", str(db)],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    doc = json.loads(show("--json"))
    times = {s["id"]: s["duration_s"] for s in doc["steps"]}
    assert 0 <= times["b"] < 60 and 0 <= times["a"] < 60
    [row] = [line.split() for line in show().splitlines() if line.split()[:1] == ["b"]]
    assert row[:4] == ["b", "tool", "succeeded", "2"]
    assert row[4].endswith("s") and float(row[4][:-1]) < 60  # not "60.0m"
