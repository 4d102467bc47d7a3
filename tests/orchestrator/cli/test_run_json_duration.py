"""`ponder run --json` and `ponder resume --json` give each step's ``duration_s`` as
`ponder show --json` does (the trace fold's: a resumed step's time leaves out the
downtime between the crash and the resume); they gave only started_at and finished_at."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator import Workflow
from orchestrator.runtime.durable import Known, recording_from_events
from orchestrator.runtime.engine import execute
from orchestrator.runtime.registry import Registry
from orchestrator.store import MemoryStore, SqlStore, StoreHook
from tests.orchestrator.cli.test_json_errors import ponder
from tests.orchestrator.runtime.cut_runs import TWO, cut_an_hour_ago


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _doc(*args: str) -> dict[str, Any]:
    result = ponder(*args, "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def _times(doc: dict[str, Any]) -> dict[str, float | None]:
    return {s["id"]: s["duration_s"] for s in doc["steps"]}


def test_run_json_gives_each_steps_duration_as_show_does(tmp_path: Path) -> None:
    flow = tmp_path / "two.yaml"
    flow.write_text(TWO)
    db = str(tmp_path / "runs.db")
    run = _doc("run", str(flow), "--db", db)
    times = _times(run)
    assert set(times) == {"a", "b"}
    assert all(t is not None and 0 <= t < 60 for t in times.values()), times
    for s in run["steps"]:
        assert s["duration_s"] == pytest.approx(s["finished_at"] - s["started_at"])
    assert times == _times(_doc("show", run["run_id"], "--db", db))


def test_resume_json_gives_a_resumed_steps_duration_without_the_downtime(
        tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")

    async def crashed() -> str:
        run_id, kept = await cut_an_hour_ago(tmp_path)
        async with SqlStore(db) as store:
            await store.append(kept)
        return run_id

    run_id = anyio.run(crashed)
    resumed = _doc("resume", run_id, "--db", db)
    shown = _times(_doc("show", run_id, "--db", db))
    b = _times(resumed)["b"]
    assert b is not None and 0 <= b < 60  # not the hour since the crash
    # `a` ended before the crash: its record is the trace's too (it had no times)
    assert _times(resumed) == shown
    a = next(s for s in resumed["steps"] if s["id"] == "a")
    assert a["duration_s"] is not None and a["started_at"] is not None


@pytest.mark.anyio
async def test_a_resumed_runs_steps_fold_its_earlier_events_as_show_does(
        tmp_path: Path) -> None:
    """With the events of its earlier executions, a resumed run's steps are the trace's
    records: a step that ended before the crash keeps its time (None without them)."""
    run_id, kept = await cut_an_hour_ago(tmp_path)
    rec = recording_from_events(kept)
    store = MemoryStore()
    await store.append(kept)
    wf = Workflow.from_yaml(tmp_path / "two.yaml")
    result = await execute(wf.compile(), rec.inputs, registry=Registry.default(),
                           hooks=[StoreHook(store)], run_id=run_id, preset=Known(rec),
                           attempts=rec.attempts, first_seq=rec.next_seq,
                           source=rec.source, prior_events=kept)
    assert result.ok and result.output == {"b": 3}
    record = await store.read_run(run_id)
    mine = {s.id: s for s in result.steps}
    for st in record.steps:
        assert (mine[st.id].duration_s, mine[st.id].started_at, mine[st.id].attempts) == \
            (st.duration_s, st.started_at, st.attempts), st.id
    assert mine["a"].duration_s is not None and mine["a"].duration_s < 60
    assert mine["b"].attempts == 2 and mine["b"].duration_s is not None
    assert mine["b"].duration_s < 60
