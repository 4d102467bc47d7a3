"""`ponder resume TOP` while another process resumes TOP's interrupted sub-workflow run
(`ponder resume CHILD`), on SQLite and PostgreSQL: refused as a run still running is
(`--json` kind ``run_still_running``), naming the sub-workflow's run and its process, with
nothing recorded: TOP stays interrupted, and resumes once the other process is done. It
used to record TOP as failed for good ("already finished (failed); nothing to resume").
And the kind of the error of a resume that another process began at the same time."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import anyio

from orchestrator import Workflow
from orchestrator.cli._failure import failure_of
from orchestrator.runtime import _process
from orchestrator.runtime.durable import RunBeingResumed
from orchestrator.store import MemoryStore, StoreHook, open_store
from tests.orchestrator.cli.test_json_errors import error_of, ponder

CHILD = """\
name: child
inputs:
  x: {type: integer}
steps:
  - {id: c1, kind: tool, tool: calc, args: {expression: "${inputs.x} + 1"}}
  - {id: c2, kind: tool, tool: calc, args: {expression: "${steps.c1.output} * 2"}}
outputs:
  y: ${steps.c2.output}
"""
TOP = """\
name: top
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "1 + 2"}}
  - {id: sub, kind: workflow, workflow: child.yaml, inputs: {x: "${steps.a.output}"}}
outputs:
  y: ${steps.sub.output.y}
"""


def _writer(pid: int, start: str | None) -> dict[str, Any]:
    return {"writer_host": _process.host_name(), "writer_pid": pid, "writer_start": start}


def _seed(tmp_path: Path, db: str, pid: int) -> tuple[str, str, Any]:
    """TOP killed while `sub` ran, its child's run resumed by the process ``pid``: the
    ids of TOP and of the child's run, and TOP's whole run."""
    (tmp_path / "child.yaml").write_text(CHILD)
    (tmp_path / "top.yaml").write_text(TOP)

    async def seed() -> tuple[str, str, Any]:
        memory = MemoryStore()
        whole = await Workflow.from_yaml(tmp_path / "top.yaml").run(hooks=[StoreHook(memory)])
        assert whole.ok, whole.error
        top = await memory.events(whole.run_id)
        (child_id,) = [r.id for r in await memory.list_runs() if r.id != whole.run_id]
        child = await memory.events(child_id)
        gone = _writer(os.getpid(), "another-boot:1")  # a process gone
        live = _writer(pid, f"{_process._pid_namespace()}|{_process.process_start(pid)}")
        top_cut = top[:next(i for i, e in enumerate(top)
                            if e.kind == "step_succeeded" and e.step_id == "sub")]
        child_cut = child[:next(i for i, e in enumerate(child)
                                if e.kind == "step_succeeded" and e.step_id == "c2")]
        async with await open_store(db) as store:
            await store.append([e.model_copy(update=gone) if e.kind == "run_started" else e
                                for e in top_cut])
            await store.append([e.model_copy(update=live) if e.kind == "run_started" else e
                                for e in child_cut])
        return whole.run_id, child_id, whole

    return anyio.run(seed)


def test_resume_of_a_run_whose_sub_workflows_run_is_being_resumed(
        tmp_path: Path, db: str, other_process: subprocess.Popen[bytes]) -> None:
    top, child, whole = _seed(tmp_path, db, other_process.pid)
    error = error_of(ponder("resume", top, "--db", db, "--json"), "run_still_running")
    assert error["message"] == (
        f"sub-workflow run {child} of run {top} is being resumed by process "
        f"{other_process.pid} on {_process.host_name()}; wait for it to finish, then "
        f"resume run {top}")
    listed = {r["id"]: r for r in json.loads(ponder("runs", "--db", db, "--json").stdout)}
    assert (listed[top]["status"], listed[top]["interrupted"]) == ("running", True)

    other_process.kill()  # the other resume is over
    other_process.wait()
    result = ponder("resume", top, "--db", db, "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["status"], doc["output"]) == ("succeeded", whole.output)


def test_a_resume_another_process_began_at_the_same_time_is_a_run_still_running() -> None:
    failure = failure_of(RunBeingResumed("r1", 42, "h"))
    assert failure.kind == "run_still_running"
    assert failure.message.startswith("run r1 is being resumed by process 42 on h, which "
                                      "started resuming it at the same time")
