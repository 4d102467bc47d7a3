"""SIGKILL `ponder run` of an LLMCompiler plan at points spread over its trace, then
`ponder resume`: `ponder show --json` gives the plan step the tokens of the uninterrupted
run's plan step (what its killed attempt's recorded calls paid shows on it), the steps'
tokens add up to the run's, and the killed attempt reads as ended, interrupted."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("orchestrator.store")

from tests.chaos.test_kill_resume import cli, kill_run, oslo_workflow
from tests.chaos.test_kill_resume_plan import _events

pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL"),
              pytest.mark.slow]  # four `ponder run` processes: ~40 s on 2 cores


def _show(url: str, run_id: str) -> dict[str, Any]:
    shown = cli("show", run_id, "--db", url, "--json")
    assert shown.exit_code == 0, shown.output
    return json.loads(shown.stdout)  # type: ignore[no-any-return]


def _tokens(step: dict[str, Any]) -> tuple[int, int]:
    return step["prompt_tokens"], step["completion_tokens"]


def test_a_killed_plan_steps_tokens_show_on_it_after_resume(tmp_path: Path) -> None:
    # the joiner's call, between the planner's recorded call and the run's end, takes
    # about 1 s (0.3 s at 0.01 s a token: on a loaded machine no kill landed in it)
    wf = oslo_workflow(tmp_path, decode_s_per_token=0.03)
    base_url = f"sqlite:///{tmp_path / 'base.db'}"
    baseline = cli("run", str(wf), "--db", base_url, "--json")
    assert baseline.exit_code == 0, baseline.output
    expected = json.loads(baseline.stdout.strip().splitlines()[-1])
    base = _show(base_url, expected["run_id"])
    plan_ids = [s["id"] for s in base["steps"] if s["kind"] == "plan"]
    assert plan_ids and all(sum(_tokens(s)) for s in base["steps"] if s["id"] in plan_ids)
    # killed once each planner / joiner call is recorded (and early, before any is)
    calls = [e.seq for e in _events(base_url, expected["run_id"]) if e.kind == "plan_call"]
    cut_with_calls = 0
    for k, kill_after in enumerate([4, *(seq + 1 for seq in calls)]):
        url = kill_run(wf, tmp_path / f"trial{k}.db", kill_after, cwd=tmp_path)
        (run,) = json.loads(cli("runs", "--db", url, "--json").stdout)
        if run["status"] == "succeeded":
            continue
        killed = _events(url, run["id"])
        cut_with_calls += any(e.kind == "plan_call" for e in killed)
        resumed = cli("resume", run["id"], "--db", url, "--json")
        assert resumed.exit_code == 0, f"kill after {kill_after}: {resumed.output}"
        shown = _show(url, run["id"])
        assert shown["status"] == "succeeded", shown["error"]
        steps = {s["id"]: s for s in shown["steps"]}
        for sid in plan_ids:
            assert _tokens(steps[sid]) == _tokens(
                next(s for s in base["steps"] if s["id"] == sid)), f"kill after {kill_after}"
        summed = (sum(s["prompt_tokens"] for s in shown["steps"]),
                  sum(s["completion_tokens"] for s in shown["steps"]))
        assert summed == (shown["prompt_tokens"], shown["completion_tokens"]) == (
            base["prompt_tokens"], base["completion_tokens"]), f"kill after {kill_after}"
        assert not [s["id"] for s in shown["steps"]
                    if s["status"] in ("running", "scheduled", "retrying", "pending")]
        interrupted = [e for e in _events(url, run["id"])[len(killed):]
                       if e.kind == "step_cancelled" and e.reason.startswith("interrupted")]
        cut_plans = {e.step_id for e in killed if e.kind == "step_started"
                     and e.step_id in plan_ids} - {e.step_id for e in killed
                                                   if e.kind == "step_succeeded"}
        assert {e.step_id for e in interrupted} >= cut_plans, f"kill after {kill_after}"
    assert cut_with_calls, "no kill landed after a recorded call and before the run ended"
