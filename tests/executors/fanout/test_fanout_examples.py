"""Every scaling example runs on the simulated engine and does what its comment says."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Workflow

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "scaling"
pytestmark = pytest.mark.anyio


async def test_self_consistency_votes_over_one_shared_request(kit: Any,
                                                              engines: list[Any]) -> None:
    wf = Workflow.from_yaml(EXAMPLES / "self_consistency.yaml")
    r = await kit.run(wf)
    assert r.result.ok, r.result.error
    assert r.result.output["answer"] == 6
    assert engines[0].stats.requests == 1 and r.step("solve").meta["mode"] == "shared"
    meta = r.step("answer").meta
    assert meta["votes"] == {"6": 5, "15": 1, "1": 1} and meta["invalid"] == [4]
    r = await kit.run(wf, {"question": "Tom reads 12 pages a day for 5 days, then 8 more "
                                       "pages. How many pages does he read?"})
    assert r.result.output["answer"] == 68


async def test_adaptive_vote_samples_only_while_the_answers_disagree(
        kit: Any, engines: list[Any]) -> None:
    wf = Workflow.from_yaml(EXAMPLES / "adaptive_vote.yaml")
    r = await kit.run(wf)
    assert r.result.ok, r.result.error
    assert r.result.output["answer"] == 6
    meta = r.step("solve").meta
    # four agreeing samples of 16: P(leader beats any runner-up) = 31/32 >= 0.95
    assert meta["samples_used"] == 4 and meta["stopped"] == "confident"
    assert engines[0].stats.requests == 4
    r = await kit.run(wf, {"question": "Tom reads 12 pages a day for 5 days, then 8 more "
                                       "pages. How many pages does he read?"})
    assert r.result.output["answer"] == 68
    assert r.step("answer").meta["votes"] == {"68": 6, "25": 1, "60": 1}
    assert r.step("solve").meta["samples_used"] == 8


async def test_first_finish_keeps_the_first_checked_answer_and_cancels_the_rest(
        kit: Any, engines: list[Any]) -> None:
    r = await kit.run(Workflow.from_yaml(EXAMPLES / "first_finish.yaml"))
    assert r.result.ok, r.result.error
    assert r.result.output == {"answer": "308",
                               "reasoning": "So 17 * 24 = 408 and then 408 - 100 = 308. "
                                            "Answer: 308"}
    samples = r.step("think").output
    assert samples[2]["status"] == "rejected"  # "Hmm." finished first, without an answer
    statuses = r.step("think").meta["statuses"]
    assert statuses["succeeded"] == 1 and statuses["cancelled"] >= 5
    stats = engines[0].stats
    assert stats.cancelled == statuses["cancelled"]
    assert all(e.usage.prompt_tokens > 0 for e in r.cancelled())


async def test_best_of_n_keeps_the_expression_the_calculator_accepts(kit: Any) -> None:
    r = await kit.run(Workflow.from_yaml(EXAMPLES / "best_of_n.yaml"))
    assert r.result.ok, r.result.error
    assert r.result.output["expression"] == "3 * 5 + 9" and r.result.output["value"] == 24
    scores = {s["index"]: s["score"] for s in r.step("best").meta["scores"]}
    assert scores[2] == 1.0 and scores[3] == 0.0  # "((7 +" does not evaluate
    assert max(scores.values()) == 1.0 and sorted(scores.values())[-2] < 1.0


async def test_countdown_spawns_threads_that_return_only_successful_paths(kit: Any) -> None:
    r = await kit.run(Workflow.from_yaml(EXAMPLES / "countdown.yaml"))
    assert r.result.ok, r.result.error
    solutions = r.result.output["solutions"]
    assert solutions and all(p[-1].endswith("=44") for p in solutions)
    sys.path.insert(0, str(EXAMPLES))
    try:
        from scaling_tools import verify_path
    finally:
        sys.path.remove(str(EXAMPLES))
    assert all(verify_path(p, 44) for p in solutions)
    assert isinstance(r.result.output["answer"], str)
    # the tree: 3 threads under `explore`, each spawning 3 more; leaves return paths only
    nested = [e for e in r.events if e.kind == "run_started" and e.parent_run_id]
    top = [e for e in nested if e.parent_run_id == r.result.run_id]
    assert sorted(e.parent_step_id for e in top) == ["explore[0]", "explore[1]", "explore[2]"]
    assert len(nested) == 12
    found = r.step("found").output
    assert all(set(item) == {"paths"} for item in found)  # no search internals come back
