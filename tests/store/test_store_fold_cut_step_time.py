"""The time of a step whose attempt a run's crash cut, and that its resume ended without
running it again (``step_cancelled``: interrupted, or superseded when its fan-out ran
again): the time that attempt is known to have run, from its start to the last event of
the execution that stopped. It was the time from the resume to that event, in which the
step did not run at all (a superseded child showed the whole resumed execution)."""

from __future__ import annotations

from orchestrator.runtime import events as ev
from orchestrator.store import fold_events


def _started(seq: int, ts: float, sid: str, attempt: int = 1) -> ev.StepStarted:
    return ev.StepStarted(run_id="r", seq=seq, ts=ts, step_id=sid, step_kind="tool",
                          attempt=attempt, input={})


def _cancelled(seq: int, ts: float, sid: str, reason: str) -> ev.StepCancelled:
    return ev.StepCancelled(run_id="r", seq=seq, ts=ts, step_id=sid, attempt=1,
                            reason=reason)


def test_a_cut_attempt_ended_by_the_resume_keeps_the_time_it_ran() -> None:
    events = [
        ev.RunStarted(run_id="r", seq=0, ts=100.0, workflow="w", inputs={}),
        _started(1, 101.0, "s[0]"), _started(2, 102.0, "b"),
        ev.StepSucceeded(run_id="r", seq=3, ts=105.0, step_id="x", attempt=1, output=1),
        # killed after 105; resumed an hour later, and run for 50 s
        ev.RunStarted(run_id="r", seq=4, ts=3700.0, workflow="w", inputs={}, resumed=True),
        _cancelled(5, 3701.0, "b", "interrupted"), _started(6, 3701.0, "b", 2),
        ev.StepSucceeded(run_id="r", seq=7, ts=3703.0, step_id="b", attempt=2, output=1),
        _cancelled(8, 3750.0, "s[0]", "superseded: 's' ran again after the run was resumed"),
    ]  # fmt: skip
    steps = {s.id: s for s in fold_events(events).steps}
    assert steps["s[0]"].status == "cancelled"
    assert steps["s[0]"].duration_s == 4.0  # 101 to 105, not 3700 to 3750
    assert steps["b"].duration_s == 2.0  # its attempt in the execution that ended it


def test_a_step_cut_twice_keeps_the_time_of_its_first_execution() -> None:
    events = [
        ev.RunStarted(run_id="r", seq=0, ts=100.0, workflow="w", inputs={}),
        _started(1, 101.0, "s[0]"),
        ev.StepSucceeded(run_id="r", seq=2, ts=104.0, step_id="x", attempt=1, output=1),
        ev.RunStarted(run_id="r", seq=3, ts=3700.0, workflow="w", inputs={}, resumed=True),
        ev.StepSucceeded(run_id="r", seq=4, ts=3710.0, step_id="y", attempt=1, output=1),
        ev.RunStarted(run_id="r", seq=5, ts=7300.0, workflow="w", inputs={}, resumed=True),
        _cancelled(6, 7320.0, "s[0]", "superseded"),
    ]
    assert fold_events(events).step("s[0]").duration_s == 3.0
