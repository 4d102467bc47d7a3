"""Durability: SIGKILL at random moments then `ponder resume` gives the uninterrupted
output without re-running completed steps; replay is exact; forks re-run only downstream."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.store import open_store

WF = Path(__file__).with_name("durable_workflow.yaml")


def ponder(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args, "--db", db],
                          capture_output=True, text=True, timeout=120)


async def _events(db: str, run_id: str | None = None) -> tuple[str, list[Any]]:
    store = await open_store(db)
    try:
        rid = run_id or (await store.list_runs(limit=1))[0].id
        return rid, await store.events(rid)
    finally:
        await store.close()


def _a_run_is_recorded(path: Path) -> bool:
    """Whether the SQLite store at ``path`` lists a run, read without taking a lock: the
    process under test is its only writer. (``open_store`` takes the file's write lock to
    check the schema, and creates it in a new file: polled while the run starts, it
    raced the run's own opening for that lock, under a busy timeout of 5 s.)"""
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True,
                                                timeout=0.05)) as conn:
            return conn.execute("SELECT 1 FROM runs LIMIT 1").fetchone() is not None
    except sqlite3.Error:  # no file, no schema yet, or busy: not yet
        return False


def _wait_for_a_run(db: str, timeout_s: float = 60) -> None:
    path = Path(db.split("///", 1)[1])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _a_run_is_recorded(path):
            return
        time.sleep(0.02)
    raise AssertionError("the run did not start")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    db = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('ref') / 'ref.db'}"
    proc = ponder("run", str(WF), "--json", db=db)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume(tmp_path: Path,
                                               reference: dict[str, Any]) -> None:
    rng = random.Random(1234)
    span = reference["duration_s"]
    kill_points = sorted(rng.uniform(0.05, span + 0.6) for _ in range(6))
    for n, delay in enumerate(kill_points):
        db = f"sqlite+aiosqlite:///{tmp_path / f'kill{n}.db'}"
        env = {**os.environ, "PONDER_DB_URL": db}
        proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "run", str(WF),
                                 "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env)
        _wait_for_a_run(db)  # the process needs a while to import; then the run starts
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        rid, before = anyio.run(_events, db)
        done_before = {e.step_id for e in before if e.kind == "step_succeeded"}
        finished = any(e.kind == "run_finished" for e in before)
        res = ponder("resume", rid, "--json", db=db)
        if finished:
            assert res.returncode == 0 and "already finished" in res.stderr
            continue
        assert res.returncode == 0, res.stderr
        doc = json.loads(res.stdout)
        assert doc["output"] == reference["output"], f"kill at +{delay:.2f}s"
        _, after = anyio.run(_events, db, rid)
        new = after[len(before):]
        rerun = {e.step_id for e in new if e.kind == "step_started"}
        assert not (rerun & done_before), f"completed steps ran again: {rerun & done_before}"
        assert [e.seq for e in after] == list(range(len(after)))
        steps = {s["id"]: s for s in doc["steps"]}
        for sid in done_before:
            assert steps[sid]["status"] == "succeeded"


def test_replay_is_exact_and_calls_no_model(tmp_path: Path, reference: dict[str, Any]) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"
    first = json.loads(ponder("run", str(WF), "--json", db=db).stdout)
    proc = ponder("replay", first["run_id"], "--json", db=db)
    assert proc.returncode == 0, proc.stderr
    again = json.loads(proc.stdout)
    assert again["output"] == first["output"] == reference["output"]
    assert again["run_id"] != first["run_id"]
    assert again["usage"] == {"prompt_tokens": 0, "completion_tokens": 0}  # nothing called


def test_replay_of_a_changed_workflow_fails_loudly(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"
    changed = tmp_path / "w.yaml"
    changed.write_text(WF.read_text())
    first = json.loads(ponder("run", str(changed), "--json", db=db).stdout)
    changed.write_text(WF.read_text().replace("Start with", "Begin with"))
    proc = ponder("replay", first["run_id"], db=db)
    assert proc.returncode == 1
    # the summary names the step once (09ad18f): "first: failed: the rendered input ..."
    assert "first: failed: the rendered input differs from the recording" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_fork_from_a_step_with_a_new_output(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'f.db'}"
    first = json.loads(ponder("run", str(WF), "--json", db=db).stdout)
    proc = ponder("replay", first["run_id"], "--from", "size", "--set", "size.output=3",
                  "--json", db=db)
    assert proc.returncode == 0, proc.stderr
    fork = json.loads(proc.stdout)
    assert fork["output"]["words"][-1] == "3"  # `short` ran instead of `long`
    steps = {s["id"]: s for s in fork["steps"]}
    assert steps["long"]["status"] == "skipped" and steps["short"]["status"] == "succeeded"
    assert fork["output"]["first"] == first["output"]["first"]
    _rid, events = anyio.run(_events, db, fork["run_id"])
    assert events[0].parent_run_id == first["run_id"] and events[0].parent_step_id == "size"
    started = {e.step_id for e in events if e.kind == "step_started"}
    assert "first" not in started and "each[0]" not in started  # upstream served from trace


def test_resume_and_show_of_unknown_runs(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'u.db'}"

    async def create() -> None:  # an empty store: a missing file is refused first
        await (await open_store(db)).close()

    anyio.run(create)
    for cmd in ("resume", "show", "replay"):
        proc = ponder(cmd, "nosuchrun", db=db)
        assert proc.returncode == 1
        assert "nosuchrun" in proc.stderr and "Traceback" not in proc.stderr
