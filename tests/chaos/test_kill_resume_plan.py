"""SIGKILL `ponder run` of an LLMCompiler plan at points spread over its trace, then
`ponder resume`: the run ends with the uninterrupted answer, no action that had
succeeded before the kill runs again, and every planner or joiner call is paid once
(the resumed plan step takes the answers and outputs its killed attempt recorded)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("orchestrator.store")

from orchestrator.store import open_store
from tests.chaos.test_kill_resume import cli, kill_run, oslo_workflow

pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL"),
              pytest.mark.slow]  # five `ponder run` processes: ~15 s on 2 cores


def _events(url: str, run_id: str) -> list[Any]:
    async def read() -> list[Any]:
        async with await open_store(url) as store:
            return list(await store.events(run_id))

    return anyio.run(read)


def _paid_calls(events: list[Any]) -> int:
    return sum(1 for e in events if e.kind == "plan_call"
               and e.usage.prompt_tokens + e.usage.completion_tokens)


def test_a_killed_plan_resumes_without_doing_again_what_it_had_done(tmp_path: Path) -> None:
    wf = oslo_workflow(tmp_path, decode_s_per_token=0.01)
    base_url = f"sqlite:///{tmp_path / 'base.db'}"
    baseline = cli("run", str(wf), "--db", base_url, "--json")
    assert baseline.exit_code == 0, baseline.output
    expected = json.loads(baseline.stdout.strip().splitlines()[-1])
    base_events = _events(base_url, expected["run_id"])
    total = len(base_events)
    resumed_runs = 0
    for k, kill_after in enumerate(range(3, total - 1, max(1, total // 6))):
        url = kill_run(wf, tmp_path / f"trial{k}.db", kill_after, cwd=tmp_path)
        (run,) = json.loads(cli("runs", "--db", url, "--json").stdout)
        if run["status"] == "succeeded":
            continue
        killed = _events(url, run["id"])
        resumed = cli("resume", run["id"], "--db", url, "--json")
        assert resumed.exit_code == 0, f"kill after {kill_after}: {resumed.output}"
        out = json.loads(resumed.stdout.strip().splitlines()[-1])
        assert out["status"] == "succeeded", out["error"]
        assert out["output"] == expected["output"], f"kill after {kill_after}"
        events = _events(url, run["id"])
        done = {e.step_id for e in killed if e.kind == "step_succeeded"}
        again = [e.step_id for e in events[len(killed):] if e.kind == "step_started"
                 and e.step_id.replace("answer__a2_", "answer__") in done]
        assert not again, f"kill after {kill_after}: ran again: {again}"
        assert _paid_calls(events) == _paid_calls(base_events), f"kill after {kill_after}"
        assert out["usage"] == expected["usage"], f"kill after {kill_after}"
        resumed_runs += 1
    assert resumed_runs >= 3, "the kills landed after the runs had finished"
