"""`ponder show` labels a joiner's bad answers as joiner tries of their round: they read
"round 2, try 1: plan error [bad_joiner]", counted as if the planner had been asked."""

from __future__ import annotations

from typing import Any

import anyio

from orchestrator.runtime import events as ev
from orchestrator.store import open_store
from tests.orchestrator.cli.test_store_cmds import ponder


def _shown(db: str, events: list[Any]) -> list[str]:
    """The lines of `ponder show` of the run whose trace is ``events`` (stored first)."""
    async def seed() -> None:
        async with await open_store(db) as store:
            await store.append(events)

    anyio.run(seed)
    shown = ponder("show", events[0].run_id, db=db)
    assert shown.returncode == 0, shown.stderr
    lines: list[str] = shown.stdout.splitlines()
    return lines


def test_show_labels_joiner_tries(db: str) -> None:
    def error(seq: int, round_: int, attempt: int, code: str, text: str,
              again: bool) -> ev.PlanError:
        return ev.PlanError(run_id="joined", seq=seq, ts=1.7e9, step_id="p", round=round_,
                            attempt=attempt, code=code, error=text, will_retry=again)

    lines = _shown(db, [
        ev.RunStarted(run_id="joined", seq=0, ts=1.7e9, workflow="w", inputs={}),
        ev.StepStarted(run_id="joined", seq=1, ts=1.7e9, step_id="p",
                       step_kind="plan", attempt=1, input={}),
        error(2, 1, 1, "bad_joiner", "the joiner answered neither", True),
        ev.PlanDecision(run_id="joined", seq=3, ts=1.7e9, step_id="p", round=1,
                        action="replan", reason="Rome is missing"),
        error(4, 2, 1, "garbage", "no plan in the text", True),
        error(5, 2, 1, "truncated", "the model stopped at max_tokens=9 before its "
              "answer was complete; raise max_tokens", True),
        error(6, 2, 2, "timeout", "the joiner did not finish within "
              "plan_timeout_s=1s; the call was stopped", True),
        error(7, 2, 3, "bad_json", "not JSON", False),
        ev.StepFailed(run_id="joined", seq=8, ts=1.7e9, step_id="p", attempt=1,
                      error="no usable answer", error_type="PlanFailed"),
        ev.RunFinished(run_id="joined", seq=9, ts=1.7e9, status="failed",
                       error="p failed"),
    ])  # fmt: skip
    assert lines[-6:] == [
        "p: round 1, joiner try 1: error [bad_joiner] the joiner answered neither "
        "(asked again)",
        "p: round 1: joiner: replan: Rome is missing",
        "p: round 2, try 1: plan error [garbage] no plan in the text (asked again)",
        "p: round 2, joiner try 1: error [truncated] the model stopped at max_tokens=9 "
        "before its answer was complete; raise max_tokens (asked again)",
        "p: round 2, joiner try 2: error [timeout] the joiner did not finish within "
        "plan_timeout_s=1s; the call was stopped (asked again)",
        "p: round 2, joiner try 3: error [bad_json] not JSON (given up)"]


def test_show_labels_tries_by_whose_answer_the_event_names(db: str) -> None:
    # a planner's answer cut at max_tokens reads like a joiner's to the inference kept for
    # old traces; the event's `by` decides when it is there
    lines = _shown(db, [
        ev.RunStarted(run_id="named", seq=0, ts=1.7e9, workflow="w", inputs={}),
        ev.StepStarted(run_id="named", seq=1, ts=1.7e9, step_id="p",
                       step_kind="plan", attempt=1, input={}),
        ev.PlanError(run_id="named", seq=2, ts=1.7e9, step_id="p", round=1,
                     attempt=1, code="truncated", by="planner",
                     error="the model stopped at max_tokens=9 before its answer "
                           "was complete; raise max_tokens", will_retry=True),
        ev.PlanError(run_id="named", seq=3, ts=1.7e9, step_id="p", round=1,
                     attempt=1, code="garbage", error="no decision in the text",
                     will_retry=False, by="joiner"),
        ev.StepFailed(run_id="named", seq=4, ts=1.7e9, step_id="p", attempt=1,
                      error="no usable answer", error_type="PlanFailed"),
        ev.RunFinished(run_id="named", seq=5, ts=1.7e9, status="failed",
                       error="p failed"),
    ])  # fmt: skip
    assert lines[-2:] == [
        "p: round 1, try 1: plan error [truncated] the model stopped at max_tokens=9 before "
        "its answer was complete; raise max_tokens (asked again)",
        "p: round 1, joiner try 1: error [garbage] no decision in the text (given up)"]
