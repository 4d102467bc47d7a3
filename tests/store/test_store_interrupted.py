"""A run whose process died is shown as interrupted, computed when read, never stored.

A real child process runs a workflow and is SIGKILLed; `ponder runs` and `ponder show`
then report the run as interrupted (with the `ponder resume` hint) on SQLite and
PostgreSQL, while the stored status stays "running".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.runtime import events as ev
from orchestrator.runtime._process import host_name, process_start, writer_fields, writer_gone
from orchestrator.store import (
    MemoryStore,
    RunWriters,
    StoredEvent,
    interrupted_runs,
    is_interrupted,
)
from tests.store.test_store_processes import (
    WORKFLOW,
    finish,
    ponder,
    store_url,
    wait_for_success_of,
)

__all__ = ["store_url"]  # the fixture, imported: SQLite and PostgreSQL


def _runs(url: str) -> dict[str, dict[str, Any]]:
    code, out, err = finish(ponder("runs", "--db", url, "--json"))
    assert code == 0, err
    return {r["id"]: r for r in json.loads(out)}


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
@pytest.mark.slow
def test_a_killed_run_is_interrupted_and_a_live_one_is_running(tmp_path: Path,
                                                               store_url: str) -> None:
    wf = tmp_path / "shared.yaml"
    # the step after b waits long enough to list the run while its process lives
    steps = [{**s, "args": {"seconds": 60}} if s["id"] == "wait" else s
             for s in WORKFLOW["steps"]]
    wf.write_text(yaml.safe_dump({**WORKFLOW, "steps": steps}, sort_keys=False))
    victim = ponder("run", str(wf), "--db", store_url, "--json")
    try:
        run_id = wait_for_success_of("b", store_url, other_than="", proc=victim)
        # its process is alive: still running
        alive = _runs(store_url)[run_id]
        assert (alive["status"], alive["interrupted"]) == ("running", False)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=30)

    row = _runs(store_url)[run_id]
    assert (row["status"], row["interrupted"]) == ("running", True)  # stored status kept

    code, out, err = finish(ponder("runs", "--db", store_url))
    assert code == 0, err
    assert "interrupted" in out and "ponder resume" in err

    code, out, err = finish(ponder("show", run_id, "--db", store_url))
    assert code == 0, err
    assert f"run {run_id}: interrupted" in out
    assert f"ponder resume {run_id}" in err

    code, out, err = finish(ponder("show", run_id, "--db", store_url, "--json"))
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["status"], doc["interrupted"]) == ("running", True)

    code, out, err = finish(ponder("runs", "--db", store_url, "--json", "--status",
                                   "interrupted"))
    assert code == 0, err
    assert [r["id"] for r in json.loads(out)] == [run_id]
    code, out, err = finish(ponder("runs", "--db", store_url, "--json", "--status", "running"))
    assert code == 0, err
    assert json.loads(out) == []



def _started(run_id: str, seq: int = 0, **writer: Any) -> ev.RunStarted:
    return ev.RunStarted(run_id=run_id, seq=seq, ts=1_000.0 + seq, workflow="wf", inputs={},
                         **writer)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_an_old_trace_without_a_writer_loads_and_shows_running(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    doc = {"format": "ponder.trace", "version": 1, "run": {"id": "old"}, "events": [
        {"run_id": "old", "seq": 0, "ts": 1000.0, "kind": "run_started", "workflow": "wf",
         "inputs": {}, "spec": {}, "source": None, "parent_run_id": None,
         "parent_step_id": None, "resumed": False},
    ]}
    trace = tmp_path / "old.json"
    trace.write_text(json.dumps(doc))
    code, _, err = finish(ponder("import", str(trace), "--db", url))
    assert code == 0, err
    assert _runs(url)["old"]["interrupted"] is False
    code, out, err = finish(ponder("show", "old", "--db", url, "--json"))
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["status"], shown["interrupted"]) == ("running", False)


def test_a_writer_is_gone_when_its_pid_ended_or_belongs_to_another_process() -> None:
    me = os.getpid()
    here = host_name()
    assert not writer_gone(here, me, process_start(me))
    own: dict[str, Any] = writer_fields()  # what this process records
    assert not writer_gone(own["writer_host"], own["writer_pid"], own["writer_start"])
    assert writer_gone(here, _dead_pid(), None)
    if process_start(me) is not None:  # Linux: a reused pid is another process
        assert writer_gone(here, me, "another-boot:1")
    # another host, another pid namespace, or no writer recorded (older): cannot know
    assert not writer_gone(here + "-elsewhere", _dead_pid(), None)
    assert not writer_gone(here, _dead_pid(), "pid:[1]|another-boot:1")
    assert not writer_gone(None, None, None)


@pytest.mark.anyio
async def test_only_running_runs_whose_latest_writer_is_gone_are_interrupted() -> None:
    dead: dict[str, Any] = {"writer_host": host_name(), "writer_pid": _dead_pid()}
    live: dict[str, Any] = {"writer_host": host_name(), "writer_pid": os.getpid(),
            "writer_start": process_start(os.getpid())}
    finished = ev.RunFinished(run_id="done", seq=1, ts=1_001.0, status="failed",
                              output=None, error="x", usage=ev.UsageModel(), duration_s=1.0)
    async with MemoryStore() as store:
        await store.append([
            _started("dead", **dead),
            _started("resumed", **dead), _started("resumed", 1, resumed=True, **live),
            _started("done", **dead), finished,
            _started("old"),
        ])
        runs = await store.list_runs()
        assert await interrupted_runs(store, runs) == {"dead"}
        assert is_interrupted(await store.events("dead"))
        assert not is_interrupted(await store.events("done"))
        assert {r.status for r in runs if r.id != "done"} == {"running"}  # nothing stored


class _CountingReader:
    """A store's event reads, counted: how many events each read returned."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.read: list[int] = []

    async def events(self, run_id: str, *, after_seq: int | None = None,
                     kinds: Collection[str] | None = None) -> list[StoredEvent]:
        got = await self.store.events(run_id, after_seq=after_seq, kinds=kinds)
        self.read.append(len(got))
        return got


@pytest.mark.anyio
async def test_run_writers_read_only_new_events_and_follow_a_resume() -> None:
    dead: dict[str, Any] = {"writer_host": host_name(), "writer_pid": _dead_pid()}
    live: dict[str, Any] = {"writer_host": host_name(), "writer_pid": os.getpid(),
            "writer_start": process_start(os.getpid())}
    async with MemoryStore() as store:
        reader = _CountingReader(store)
        writers = RunWriters(reader)
        await store.append([_started("r", **dead), _started("r", 1, resumed=True, **dead)])
        assert await writers.interrupted(await store.list_runs()) == {"r"}
        assert await writers.interrupted(await store.list_runs()) == {"r"}
        assert reader.read == [2, 0]
        await store.append([_started("r", 2, resumed=True, **live)])  # resumed here
        assert await writers.interrupted(await store.list_runs()) == set()
        assert reader.read == [2, 0, 1]
        # a run's step events are not read at all: only run-level events tell the writer
        await store.append([ev.StepStarted(run_id="r", seq=seq, ts=1_000.0 + seq,
                                           step_id=f"s{seq}", step_kind="tool", attempt=1,
                                           input={})
                            for seq in range(3, 8)])
        assert await writers.interrupted(await store.list_runs()) == set()
        assert reader.read == [2, 0, 1, 0]
