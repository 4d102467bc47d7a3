"""`ponder import` (and the other store commands) as a user runs them: a mistake is one
clear line, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def ponder(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args, "--db", db],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_import_of_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    bad = tmp_path / "trace.json"
    bad.write_bytes(b'{"format": "ponder.trace", "x": "\xff"}')
    proc = ponder("import", str(bad), db=f"sqlite:///{tmp_path / 'x.db'}")
    assert proc.returncode == 1
    assert proc.stderr.strip().replace("\n", " ").startswith(
        f"error: {bad}: not UTF-8 text (byte 33)")
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr


def test_import_into_a_store_that_keeps_nothing_is_refused(tmp_path: Path) -> None:
    doc = tmp_path / "trace.json"
    doc.write_text("{}")
    for url in ("memory://", "sqlite://", "sqlite:///:memory:"):
        proc = ponder("import", str(doc), db=url)
        assert proc.returncode == 1, url
        assert f"--db {url}: that store keeps nothing" in proc.stderr.replace("\n", " ")
        assert "imported" not in proc.stdout


def test_gc_with_an_age_too_large(tmp_path: Path) -> None:
    proc = ponder("gc", "--older-than", "99999999999999w", db=f"sqlite:///{tmp_path / 'x.db'}")
    assert proc.returncode == 1
    assert "error: --older-than '99999999999999w': too large" in proc.stderr
    assert "internal error" not in proc.stderr


def test_runs_and_show_of_an_imported_run_with_an_odd_clock(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    doc = tmp_path / "trace.json"
    doc.write_text('{"format": "ponder.trace", "version": 1, "events": [{"run_id": "odd", '
                   '"seq": 0, "ts": 1e300, "kind": "run_started", "workflow": "w", '
                   '"inputs": {}}]}')
    assert ponder("import", str(doc), db=db).returncode == 0
    for cmd in (("runs",), ("show", "odd")):
        proc = ponder(*cmd, db=db)
        assert proc.returncode == 0, proc.stderr
        assert "1e+300" in proc.stdout


def test_commands_take_the_start_of_a_run_id(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    wf = tmp_path / "w.yaml"
    wf.write_text("name: w\nsteps:\n  - {id: a, kind: tool, tool: calc, args: {expression: '6*7'}}\n")
    run = subprocess.run([sys.executable, "-m", "orchestrator.cli", "run", str(wf), "--json",
                          "--db", db], cwd=ROOT, capture_output=True, text=True, timeout=120)
    rid = json.loads(run.stdout)["run_id"]
    short = rid[:6]
    show = ponder("show", short, "--json", db=db)
    assert show.returncode == 0, show.stderr
    assert json.loads(show.stdout)["id"] == rid
    exported = ponder("export", short, db=db)
    assert json.loads(exported.stdout)["run"]["id"] == rid
    replayed = ponder("replay", short, "--json", db=db)
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout)["output"] == 42
    # the replay names the run it replayed by its id, not by the start it was given
    replayed = ponder("replay", short, db=db)
    assert f"replay of {rid} recorded as run " in replayed.stderr
    # a COLUMNS=40 terminal still prints every run id whole
    listing = subprocess.run([sys.executable, "-m", "orchestrator.cli", "runs", "--db", db],
                             cwd=ROOT, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "COLUMNS": "40"})
    assert rid in listing.stdout
    # an empty id names no run (it is not the start of every id)
    both = ponder("show", "", db=db)
    assert both.returncode == 1 and "no run ''" in both.stderr
    missing = ponder("show", "zzzz", db=db)
    assert missing.returncode == 1 and "no run 'zzzz' in the trace store" in missing.stderr


def test_gc_deletes_a_finished_run_with_its_sub_workflows_runs(db: str) -> None:
    """An old finished run goes with its sub-workflow's run left interrupted; a fork
    of it is a run of its own (young here: it stays)."""
    import time

    import anyio

    from orchestrator.runtime import events as ev
    from orchestrator.store import open_store

    month_ago = time.time() - 30 * 86_400

    def started(run_id: str, ts: float, **parent: object) -> ev.RunStarted:
        return ev.RunStarted(run_id=run_id, seq=0, ts=ts, workflow=run_id, inputs={},
                             **parent)  # type: ignore[arg-type]

    async def seed() -> None:
        async with await open_store(db) as store:
            await store.append([started("top", month_ago),
                                ev.RunFinished(run_id="top", seq=1, ts=month_ago + 5,
                                               status="failed", error="w failed")])
            await store.append([started("sub", month_ago + 1, parent_run_id="top",
                                        parent_step_id="w", parent_attempt=1)])
            await store.append([started("fork", time.time(), parent_run_id="top",
                                        parent_step_id="w"),
                                ev.RunFinished(run_id="fork", seq=1, ts=time.time(),
                                               status="succeeded")])

    anyio.run(seed)
    proc = ponder("gc", "--older-than", "7d", db=db)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "deleted 2 runs"
    listed = ponder("runs", "--json", db=db)
    assert [r["id"] for r in json.loads(listed.stdout)] == ["fork"]


def test_an_interrupted_sub_workflows_run_names_the_run_to_resume(db: str) -> None:
    """A sub-workflow's run is continued by its parent's resume: `show` and `runs` name
    the top run to resume, not the child; a fork, or a child whose parent finished, is
    resumed on its own."""
    import anyio

    from orchestrator.runtime import events as ev
    from orchestrator.runtime._process import host_name
    from orchestrator.store import open_store

    # this process's id with another start: a writer known to be gone
    gone = {"writer_host": host_name(), "writer_pid": os.getpid(),
            "writer_start": "another-boot:1"}

    def started(run_id: str, **parent: object) -> ev.RunStarted:
        return ev.RunStarted(run_id=run_id, seq=0, ts=1.7e9, workflow=run_id, inputs={},
                             **gone, **parent)  # type: ignore[arg-type]

    async def seed() -> None:
        async with await open_store(db) as store:
            await store.append([started("top")])
            await store.append([started("sub", parent_run_id="top", parent_step_id="w",
                                        parent_attempt=1)])
            await store.append([started("subsub", parent_run_id="sub", parent_step_id="v",
                                        parent_attempt=2)])
            await store.append([started("fork", parent_run_id="top", parent_step_id="w")])
            await store.append([started("done"),
                                ev.RunFinished(run_id="done", seq=1, ts=1.7e9 + 1,
                                               status="failed", error="x")])
            await store.append([started("late", parent_run_id="done", parent_step_id="w",
                                        parent_attempt=1)])

    anyio.run(seed)
    for run_id, top in [("subsub", "top"), ("sub", "top")]:
        shown = ponder("show", run_id, db=db)
        assert shown.returncode == 0, shown.stderr
        assert f"sub-workflow's run of run {top}: `ponder resume {top}` continues both" \
            in shown.stderr
        doc = json.loads(ponder("show", run_id, "--json", db=db).stdout)
        assert (doc["interrupted"], doc["resume"]) == (True, top)
    for run_id in ("top", "fork", "late"):
        shown = ponder("show", run_id, db=db)
        assert f"continue it with `ponder resume {run_id}`" in shown.stderr
    listed = ponder("runs", "--json", db=db)
    assert {r["id"]: r.get("resume") for r in json.loads(listed.stdout)} == {
        "top": "top", "sub": "top", "subsub": "top", "fork": "fork", "done": None,
        "late": "late"}
    table = ponder("runs", db=db)
    assert "sub, subsub: sub-workflow runs of run top: `ponder resume top` continues them" \
        in table.stderr


def test_show_tells_a_plan_steps_story(db: str) -> None:
    """The plans a planner rejected and the joiner's decisions, round by round, under
    the table: for a plan step that failed they showed nowhere but the events."""
    import anyio

    from orchestrator.runtime import events as ev
    from orchestrator.store import open_store

    async def seed() -> None:
        async with await open_store(db) as store:
            await store.append([
                ev.RunStarted(run_id="planned", seq=0, ts=1.7e9, workflow="w", inputs={}),
                ev.StepStarted(run_id="planned", seq=1, ts=1.7e9, step_id="p",
                               step_kind="plan", attempt=1, input={}),
                ev.PlanError(run_id="planned", seq=2, ts=1.7e9, step_id="p", round=1,
                             attempt=1, code="no_join", error="the plan does not end with "
                             "join()", will_retry=True),
                ev.PlanDecision(run_id="planned", seq=3, ts=1.7e9, step_id="p", round=1,
                                action="replan", reason="Rome is missing"),
                ev.PlanError(run_id="planned", seq=4, ts=1.7e9, step_id="p", round=2,
                             attempt=1, code="garbage", error="no plan in the text",
                             will_retry=False),
                ev.StepFailed(run_id="planned", seq=5, ts=1.7e9, step_id="p", attempt=1,
                              error="no usable plan", error_type="PlanFailed"),
                ev.RunFinished(run_id="planned", seq=6, ts=1.7e9, status="failed",
                               error="p failed"),
            ])  # fmt: skip

    anyio.run(seed)
    shown = ponder("show", "planned", db=db)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[-3:] == [
        "p: round 1, try 1: plan error [no_join] the plan does not end with join() "
        "(asked again)",
        "p: round 1: joiner: replan: Rome is missing",
        "p: round 2, try 1: plan error [garbage] no plan in the text (given up)"]


def test_importing_a_run_the_store_has_already_says_so(tmp_path: Path, db: str) -> None:
    """It said "event 0 of run '...' is already stored (the batch was not written)"."""
    wf = tmp_path / "w.yaml"
    wf.write_text("name: w\nsteps:\n  - {id: a, kind: tool, tool: calc, args: {expression: '6*7'}}\n")
    run = subprocess.run([sys.executable, "-m", "orchestrator.cli", "run", str(wf), "--json",
                          "--db", db], cwd=ROOT, capture_output=True, text=True, timeout=120)
    rid = json.loads(run.stdout)["run_id"]
    doc = tmp_path / "trace.json"
    assert ponder("export", rid, "-o", str(doc), db=db).returncode == 0
    again = ponder("import", str(doc), db=db)
    assert again.returncode == 1
    assert again.stderr.strip() == (
        f"error: {doc}: run {rid} is in the trace store already (imported or run there "
        "before); nothing was imported. Import it into another store (--db)")


def test_reading_commands_open_a_read_only_sqlite_file_read_only(tmp_path: Path) -> None:
    """runs, show and export only read: a copied trace the user may not write is read
    (they refused it, as the viewer did not); gc, which deletes, is still refused."""
    import stat

    import anyio

    from orchestrator.runtime import events as ev
    from orchestrator.store import open_store

    path = tmp_path / "copied.db"

    async def seed() -> None:
        async with await open_store(str(path)) as store:
            await store.append([
                ev.RunStarted(run_id="kept", seq=0, ts=1.7e9, workflow="w", inputs={}),
                ev.RunFinished(run_id="kept", seq=1, ts=1.7e9 + 1, status="succeeded",
                               output=1)])

    anyio.run(seed)
    path.chmod(stat.S_IRUSR | stat.S_IRGRP)
    try:
        listed = ponder("runs", "--json", db=str(path))
        assert listed.returncode == 0, listed.stderr
        assert [r["id"] for r in json.loads(listed.stdout)] == ["kept"]
        shown = ponder("show", "kept", db=str(path))
        assert shown.returncode == 0 and "run kept: succeeded" in shown.stdout, shown.stderr
        exported = ponder("export", "kept", db=str(path))
        assert exported.returncode == 0 and json.loads(exported.stdout)["run"]["id"] == "kept"
        gc = ponder("gc", "--older-than", "1s", db=str(path))
        assert gc.returncode == 1 and "is read-only" in gc.stderr
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
