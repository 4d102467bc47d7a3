"""A step whose attempt was cancelled with its run (its sub-workflow's child run may go
on), and that a resumed execution then only scheduled (it waited for a pool slot) before
it too stopped: the cancelled attempt is still the one to continue. The step_scheduled
took it off ``Recording.unfinished``, so a second resume started a new child run."""

from __future__ import annotations

from orchestrator.runtime import events as ev
from orchestrator.runtime.durable import recording_from_events


def _trace(*, scheduled_again: bool) -> list[ev._Event]:
    events: list[ev._Event] = [
        ev.RunStarted(run_id="r", seq=0, workflow="main", inputs={}),
        ev.StepStarted(run_id="r", seq=1, step_id="w", step_kind="workflow", attempt=1,
                       input={}),
        ev.StepCancelled(run_id="r", seq=2, step_id="w", attempt=1),
        ev.RunFinished(run_id="r", seq=3, status="cancelled"),
        ev.RunStarted(run_id="r", seq=4, workflow="main", inputs={}, resumed=True),
    ]
    if scheduled_again:  # waiting for a slot of its pool when this execution died
        events.append(ev.StepScheduled(run_id="r", seq=5, step_id="w",
                                       step_kind="workflow", pool="default", priority=0))
    return events


def test_a_cancelled_attempt_is_unfinished() -> None:
    assert recording_from_events(_trace(scheduled_again=False)).unfinished == {"w": 1}


def test_scheduling_it_again_leaves_the_cancelled_attempt_unfinished() -> None:
    rec = recording_from_events(_trace(scheduled_again=True))
    assert rec.unfinished == {"w": 1}
    assert "w" in rec.left_open  # still closed as superseded if not run again
