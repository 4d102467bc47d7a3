"""A resumed run's ``duration_s`` counts the time its earlier executions ran, not the
downtime between them: it gave only the last execution's (a run that had worked for
ten seconds before its crash said 0.01 s once resumed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.runtime.durable import recording_from_events, resume
from orchestrator.store import MemoryStore, StoreHook
from tests.orchestrator.runtime.cut_runs import HOUR, cut_two

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _ran_ten_seconds_an_hour_ago(tmp_path: Path) -> list:  # type: ignore[type-arg]
    """The events of a run cut while `b` ran, whose first execution had run for 10 s
    before it died, an hour ago."""
    _, kept = await cut_two(tmp_path, "step_started", "b")
    end = kept[-1].ts
    return [e.model_copy(update={"ts": (end - 10.0 if e.kind == "run_started" else e.ts)
                                 - HOUR}) for e in kept]


async def test_the_recording_knows_how_long_its_executions_ran(tmp_path: Path) -> None:
    kept = await _ran_ten_seconds_an_hour_ago(tmp_path)
    assert recording_from_events(kept).live_s == pytest.approx(10.0)


async def test_a_resumed_runs_duration_counts_its_earlier_execution_once(
        tmp_path: Path) -> None:
    kept = await _ran_ten_seconds_an_hour_ago(tmp_path)
    store = MemoryStore()
    await store.append(kept)
    result = await resume(kept, hooks=[StoreHook(store)])
    assert result.ok, result.error
    assert 10.0 <= result.duration_s < 10.0 + 60  # not the hour of downtime
    record = await store.read_run(result.run_id)
    # ponder show's (the trace's run_finished) is the same
    assert record is not None
    assert record.duration_s == pytest.approx(result.duration_s, abs=0.05)
    # the whole trace's executions: the first one's 10 s and the resumed one's
    events = await store.events(result.run_id)
    resumed_at = next(e.ts for e in events if e.kind == "run_started" and e.resumed)
    assert recording_from_events(events).live_s == pytest.approx(
        10.0 + events[-1].ts - resumed_at)
