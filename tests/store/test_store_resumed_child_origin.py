"""A spawn's child run taken over by the spawn's next attempt on resume: its new
``run_started`` names the step that now runs it (``sp@2[0]``, attempt 2). `ponder show`
(the run folded from its events) said so, while the runs' rows (`ponder runs`) kept the
first ``run_started``'s ``sp[0]``; both say the newest now, on every backend, whether
the resume's events come in one batch or several."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.runtime import events as ev
from orchestrator.store import TraceStore

pytestmark = pytest.mark.anyio


def _child(resumed_in_one_batch: bool) -> list[list[Any]]:
    """The batches of the child run ``c`` of ``top``'s step ``sp``: started by attempt 1
    as ``sp[0]``, interrupted, then continued by attempt 2 as ``sp@2[0]``."""
    first = [
        ev.RunStarted(run_id="c", seq=0, ts=10.0, workflow="sub", inputs={},
                      parent_run_id="top", parent_step_id="sp[0]", parent_attempt=1),
        ev.StepStarted(run_id="c", seq=1, ts=11.0, step_id="s1", step_kind="tool",
                       attempt=1, input={}),
    ]
    resumed = [
        ev.RunStarted(run_id="c", seq=2, ts=20.0, workflow="sub", inputs={},
                      parent_run_id="top", parent_step_id="sp@2[0]", parent_attempt=2,
                      resumed=True),
        ev.StepSucceeded(run_id="c", seq=3, ts=21.0, step_id="s1", attempt=1, output=1),
        ev.RunFinished(run_id="c", seq=4, ts=22.0, status="succeeded", output=1),
    ]
    if resumed_in_one_batch:
        return [first, resumed]
    return [first, *([e] for e in resumed)]


@pytest.mark.parametrize("one_batch", [True, False])
async def test_a_resumed_child_runs_row_names_the_step_that_runs_it_now(
        store: TraceStore, one_batch: bool) -> None:
    await store.append([ev.RunStarted(run_id="top", seq=0, ts=1.0, workflow="w", inputs={})])
    for batch in _child(one_batch):
        await store.append(batch)
    (row,) = [r for r in await store.list_runs() if r.id == "c"]
    folded = await store.read_run("c")
    assert (row.parent_run_id, row.parent_step_id, row.parent_attempt) == ("top", "sp@2[0]", 2)
    assert (folded.parent_run_id, folded.parent_step_id, folded.parent_attempt) == (
        "top", "sp@2[0]", 2)
    assert await store.run_info("c") == row
    assert row.status == "succeeded" and row.started_at == 10.0
