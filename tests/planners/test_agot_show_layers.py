"""`ponder show` lists an AGoT graph's plan errors layer after layer, each labelled by its
layer. They were all "round 1, try N" (AGoT has no rounds) and sorted by try, so that
the errors of different layers were interleaved. Each layer is read from the event's
``layer``, or, in a trace written before it was recorded, from the error's text."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from orchestrator import Workflow
from orchestrator.store import StoreHook, open_store
from planners.testing import ScriptedLLM

pytestmark = pytest.mark.anyio
PlanWorkflow = Callable[..., Workflow]
ROOT = Path(__file__).resolve().parents[2]


def layer(*thoughts: dict[str, object]) -> str:
    return json.dumps({"thoughts": list(thoughts)})


def _written_before_layer(path: Path) -> None:
    """The trace as a version that did not record a plan error's layer wrote it: its
    plan_error events, and the plan errors in its plan step's metadata."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT run_id, seq, kind, payload FROM events "
                          "WHERE kind IN ('plan_error', 'step_succeeded')")
        dropped = 0
        for run_id, seq, kind, payload in rows.fetchall():
            fields = json.loads(payload)
            errors = [fields] if kind == "plan_error" else (
                (fields.get("meta") or {}).get("plan_errors") or [])
            for error in errors:
                dropped += error.pop("layer", None) is not None
            db.execute("UPDATE events SET payload = ? WHERE run_id = ? AND seq = ?",
                       (json.dumps(fields), run_id, seq))
    assert dropped == 8  # 4 events, 4 in the metadata


@pytest.mark.parametrize("trace", ["recorded", "before"])
async def test_show_labels_agot_plan_errors_by_layer_in_order(
        plan_workflow: PlanWorkflow, tmp_path: Path, trace: str) -> None:
    llm = ScriptedLLM([
        ("Layer 1 of 2", ["no JSON", "{}", layer({"thought": "a"})]),
        ("Layer 2 of 2", [layer({"thought": "b", "parents": [9]}), "still none",
                          layer({"thought": "c", "parents": [1], "final": True})]),
        ("Thought: a[\\s\\S]*Is this thought complex", "perhaps"),
        ("Is this thought complex", '{"complex": false}'),
        ("Answer this thought", "an answer"),
    ])
    wf = plan_workflow(llm, planner="agot", max_plan_repairs=2, options={"max_layers": 2})
    url = f"sqlite:///{tmp_path / 'trace.db'}"
    async with await open_store(url) as store:
        result = await wf.run(hooks=[StoreHook(store)])
    assert result.ok, result.error
    if trace == "before":
        _written_before_layer(tmp_path / "trace.db")
    with anyio.fail_after(120):
        shown = await anyio.run_process([sys.executable, "-m", "orchestrator.cli", "show",
                                         result.run_id, "--db", url], cwd=ROOT, check=False)
    assert shown.returncode == 0, shown.stderr.decode()
    lines = [line for line in shown.stdout.decode().splitlines() if "plan error" in line]
    assert lines == [
        "p: layer 1, try 1: plan error [bad_thoughts] expected a JSON object with a "
        "\"thoughts\" list, got 'no JSON' (asked again)",
        "p: layer 1, try 2: plan error [bad_thoughts] expected a JSON object with a "
        "\"thoughts\" list, got '{}' (asked again)",
        "p: layer 2, try 1: plan error [bad_reference] thought T2 builds on 9, which is "
        "not an earlier thought (asked again)",
        "p: layer 2, try 2: plan error [bad_thoughts] expected a JSON object with a "
        "\"thoughts\" list, got 'still none' (asked again)",
        # a thought's own error is no layer's
        "p__t1: round 1, try 1: plan error [bad_check] unreadable complexity check "
        "'perhaps'; answering the thought directly (given up)",
    ]
