"""fold_events: a pure fold of a run's events into what ``ponder show`` and resume need."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from orchestrator.runtime import events as ev
from orchestrator.store import RawEvent, fold_events


def test_every_step_is_known_with_status_and_attempts(make_run: Any) -> None:
    run = fold_events(make_run("r1"))

    assert [s.id for s in run.steps] == ["plan", "a", "b", "c"]
    plan = run.step("plan")
    assert (plan.status, plan.attempts, plan.kind, plan.pool) == ("succeeded", 2, "plan", "llm")
    assert (plan.started_at, plan.finished_at, plan.latency_s) == (1002.0, 1005.0, 1.0)
    assert plan.duration_s == 3.0  # its two attempts and the wait between them
    assert (plan.prompt_tokens, plan.completion_tokens) == (10, 5)
    assert plan.error is None and plan.output["plan"] == ["b"] and plan.meta == {"model": "m"}
    assert plan.input == {"prompt": "plan it ✓"}

    b = run.step("b")
    assert (b.status, b.kind, b.deps, b.parent, b.added_by) == (
        "failed",
        "tool",
        ["plan"],
        "plan",
        "plan",
    )
    assert (b.spec, b.error, b.error_type) == ({"tool": "calc"}, "boom", "ToolError")
    assert (run.step("c").status, run.step("c").error) == ("skipped", "dep failed")
    assert (run.step("a").status, run.step("a").prompt_tokens) == ("cancelled", 1)
    with pytest.raises(KeyError):
        run.step("zzz")


def test_a_retrying_step_and_a_running_run() -> None:
    events = [
        ev.RunStarted(run_id="r", seq=0, ts=1.0, workflow="w", inputs={}),
        ev.StepStarted(run_id="r", seq=1, ts=2.0, step_id="s", step_kind="llm", attempt=1,
                       input={}),
        ev.StepFailed(run_id="r", seq=2, ts=3.0, step_id="s", attempt=1, error="e1",
                      error_type="X", usage=ev.UsageModel(prompt_tokens=4)),
        ev.StepRetrying(run_id="r", seq=3, ts=3.5, step_id="s", attempt=1, error="e1",
                        error_type="X", delay_s=1.0),
    ]  # fmt: skip
    run = fold_events(events)
    step = run.step("s")
    assert (step.status, step.attempts, step.error) == ("retrying", 1, "e1")
    assert (run.status, run.finished_at, run.prompt_tokens) == ("running", None, 4)
    assert run.next_seq == 4 and run.n_events == 4


def test_order_unknown_kinds_and_raw_events_do_not_matter(make_run: Any) -> None:
    events = make_run("r1")
    noisy = [
        *reversed(events),
        RawEvent(run_id="r1", seq=100, ts=0.0, kind="future_kind", x=1),  # type: ignore[call-arg]
        RawEvent(run_id="r1", seq=101, ts=0.0, kind="step_started", step_id="plan"),  # type: ignore[call-arg]
    ]
    folded = fold_events(noisy)
    assert folded.steps == fold_events(events).steps
    assert folded.next_seq == 102


def test_the_fold_is_pure(make_run: Any) -> None:
    events = make_run("r1")
    snapshot = copy.deepcopy([e.model_dump() for e in events])
    first = fold_events(events)
    assert [e.model_dump() for e in events] == snapshot
    assert fold_events(events) == first


def test_a_resumed_run() -> None:
    events = [
        ev.RunStarted(run_id="r", seq=0, ts=1.0, workflow="w", inputs={"a": 1}),
        ev.RunFinished(run_id="r", seq=1, ts=2.0, status="failed", error="x"),
        ev.RunStarted(run_id="r", seq=2, ts=3.0, workflow="w", inputs={"a": 1}, resumed=True),
    ]
    run = fold_events(events)
    assert (run.status, run.started_at, run.finished_at, run.error, run.resumes) == (
        "running",
        1.0,
        None,
        None,
        1,
    )
    done = fold_events([*events, ev.RunFinished(run_id="r", seq=3, ts=4.0, status="succeeded")])
    assert (done.status, done.finished_at) == ("succeeded", 4.0)


def test_a_steps_time_leaves_out_the_downtime_before_a_resume() -> None:
    def started(seq: int, ts: float, sid: str, attempt: int = 1) -> ev.StepStarted:
        return ev.StepStarted(run_id="r", seq=seq, ts=ts, step_id=sid, step_kind="tool",
                              attempt=attempt, input={})

    def done(seq: int, ts: float, sid: str, attempt: int = 1) -> ev.StepSucceeded:
        return ev.StepSucceeded(run_id="r", seq=seq, ts=ts, step_id=sid, attempt=attempt,
                                output=1)

    events = [
        ev.RunStarted(run_id="r", seq=0, ts=100.0, workflow="w", inputs={}),
        started(1, 101.0, "a"), done(2, 103.0, "a"),
        started(3, 104.0, "b"), started(4, 104.0, "c"), started(5, 104.5, "d"),
        # the process dies at about 105; the run is resumed an hour later
        ev.RunStarted(run_id="r", seq=6, ts=3700.0, workflow="w", inputs={}, resumed=True),
        started(7, 3701.0, "b", 2), done(8, 3704.0, "b", 2),
        done(9, 3702.0, "c"),  # ended without starting again (a recorded output)
        started(10, 3703.0, "e"),
    ]  # fmt: skip
    run = fold_events(events)
    steps = {s.id: s for s in run.steps}
    assert steps["a"].duration_s == 2.0  # ended before the crash: its time stays
    b = steps["b"]
    assert (b.started_at, b.finished_at, b.attempts, b.duration_s) == (104.0, 3704.0, 2, 3.0)
    assert steps["c"].duration_s == 2.0  # from the resume
    assert steps["d"].duration_s is None and steps["d"].status == "running"
    assert steps["e"].duration_s is None  # still running
    assert fold_events([*events, done(11, 3710.0, "e")]).step("e").duration_s == 7.0
    # started again after it ended: running, so no time until it ends again
    again = fold_events([*events, started(11, 3720.0, "a", 2)]).step("a")
    assert (again.status, again.finished_at, again.duration_s) == ("running", None, None)


def test_bad_input_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        fold_events([])
    with pytest.raises(ValueError, match="several runs"):
        fold_events([
            ev.RunStarted(run_id="a", seq=0, workflow="w", inputs={}),
            ev.RunStarted(run_id="b", seq=0, workflow="w", inputs={}),
        ])  # fmt: skip


def _started(steps: list[Any], seq: int = 0, *, resumed: bool = False) -> ev.RunStarted:
    return ev.RunStarted(run_id="r", seq=seq, ts=1.0 + seq, workflow="w", inputs={},
                         spec={"name": "w", "steps": steps}, resumed=resumed)  # fmt: skip


def test_declared_steps_depend_on_what_they_reference() -> None:
    run = fold_events([_started([
        {"id": "a", "kind": "tool", "tool": "calc", "args": {"expression": "1"}},
        {"id": "b", "kind": "tool", "tool": "calc",
         "args": {"expression": "${steps.a.output} + ${steps.ghost.output}"}},
        {"id": "br", "kind": "branch", "cases": [{"when": "steps.b.output > 1", "then": ["y"]}]},
        {"id": "y", "prompt": "{{ steps.b.output }}", "after": ["a"]},
        {"id": "m", "kind": "map", "over": [1, 2],
         "step": {"kind": "llm", "prompt": "{{ item }} {{ steps.y.output }}"}},
        {"id": "j", "kind": "join", "of": "m"},
    ])])  # fmt: skip

    deps = {s.id: s.deps for s in run.steps}
    assert deps == {"a": [], "b": ["a"], "br": ["b"], "y": ["a", "b", "br"], "m": ["y"],
                    "j": ["m"]}  # fmt: skip
    assert run.step("y").kind == "llm"  # the spec omitted it: guessed, as the viewer does


def test_a_declared_step_that_does_not_validate_is_kept_without_deps() -> None:
    run = fold_events([_started([
        {"id": "a", "kind": "tool", "tool": "calc"},
        {"id": "old", "kind": "llm", "prompt": "{{ steps.a.output }}", "retired_field": 1},
        {"id": "odd", "kind": "telepathy", "after": ["a"]},
        {"id": 7}, "not a step",
    ])])  # fmt: skip
    assert [(s.id, s.kind, s.deps) for s in run.steps] == [
        ("a", "tool", []), ("old", "llm", []), ("odd", "telepathy", [])
    ]


def test_a_patch_and_a_resume_keep_the_deps_they_found() -> None:
    declared = [{"id": "a", "kind": "tool", "tool": "calc"},
                {"id": "b", "kind": "tool", "tool": "calc", "after": ["a"]}]
    events = [
        _started(declared),
        ev.GraphPatched(run_id="r", seq=1, ts=2.0, source_step="a", reason="plan",
                        steps=[{"id": "c", "kind": "tool", "deps": ["b", "a"]}]),
        _started([*declared, {"id": "c", "kind": "tool", "tool": "calc"}], 2, resumed=True),
    ]  # fmt: skip
    run = fold_events(events)
    assert {s.id: s.deps for s in run.steps} == {"a": [], "b": ["a"], "c": ["b", "a"]}


def test_a_plan_steps_errors_and_decisions_show_on_it_even_when_it_fails() -> None:
    """A failed plan step records no meta of its own: its plan errors and the joiner's
    decisions are folded into its meta as they happen (they showed only in the events);
    a plan step that succeeds has the planner's own meta, which holds them all."""
    def events(run_id: str, end: ev._Event) -> list[Any]:
        return [
            ev.RunStarted(run_id=run_id, seq=0, ts=1.0, workflow="w", inputs={}),
            ev.StepStarted(run_id=run_id, seq=1, ts=2.0, step_id="p", step_kind="plan",
                           attempt=1, input={}),
            ev.PlanError(run_id=run_id, seq=2, ts=3.0, step_id="p", round=1, attempt=1,
                         code="no_join", error="line 3: no join()", line=3, raw="1. x()",
                         will_retry=True),
            ev.PlanDecision(run_id=run_id, seq=3, ts=4.0, step_id="p", round=1,
                            action="replan", reason="need Rome"),
            ev.PlanError(run_id=run_id, seq=4, ts=5.0, step_id="p", round=2, attempt=1,
                         code="garbage", error="no plan", will_retry=False),
            end,
        ]  # fmt: skip

    failed = fold_events(events("r", ev.StepFailed(
        run_id="r", seq=5, ts=6.0, step_id="p", attempt=1, error="plan failed",
        error_type="PlanFailed"))).step("p")
    assert failed.meta == {
        "plan_errors": [
            {"round": 1, "attempt": 1, "code": "no_join", "error": "line 3: no join()",
             "line": 3, "will_retry": True},
            {"round": 2, "attempt": 1, "code": "garbage", "error": "no plan", "line": None,
             "will_retry": False}],
        "decisions": [{"round": 1, "action": "replan", "answer": None,
                       "reason": "need Rome"}]}
    own = {"planner": "llmcompiler", "plan_errors": ["as the planner kept them"]}
    succeeded = fold_events(events("s", ev.StepSucceeded(
        run_id="s", seq=5, ts=6.0, step_id="p", attempt=1, output=1, meta=own))).step("p")
    assert succeeded.meta == own
