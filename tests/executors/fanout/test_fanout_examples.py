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
    assert all(verify_path(p, 44, [1, 7, 8, 11]) for p in solutions)
    assert isinstance(r.result.output["answer"], str)
    # the tree: 3 threads under `explore`, each spawning 3 more; leaves return paths only
    nested = [e for e in r.events if e.kind == "run_started" and e.parent_run_id]
    top = [e for e in nested if e.parent_run_id == r.result.run_id]
    assert sorted(e.parent_step_id for e in top) == ["explore[0]", "explore[1]", "explore[2]"]
    assert len(nested) == 12
    found = r.step("found").output
    assert all(set(item) == {"paths"} for item in found)  # no search internals come back


def _scaling_tools() -> Any:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import scaling_tools
    finally:
        sys.path.remove(str(EXAMPLES))
    return scaling_tools


@pytest.mark.parametrize(("path", "ok"), [
    (["7*8=56", "56-11=45", "45-1=44"], True),
    (["11*8=88", "88/2=44"], False),  # reaches 44 with 2, which is not given
    (["7+8=15", "15-11=4", "4*11=44"], False),  # reaches 44 using 11 twice
    (["8*11=88", "88-44=44"], False),  # 44 is the target, not a number
    (["7-1=6", "6+8=14", "14*11=154"], False),  # right steps, wrong target
    (["8*7=57"], False),  # wrong arithmetic
    ([], False),
    (["8 plus 11"], False),
])
def test_countdown_paths_use_the_given_numbers_each_at_most_once(path: list[str],
                                                                  ok: bool) -> None:
    assert _scaling_tools().verify_path(path, 44, [1, 7, 8, 11]) is ok


def test_countdown_accepts_a_number_made_twice_but_not_one_given_once_used_twice() -> None:
    tools = _scaling_tools()
    assert tools.verify_path(["1+7=8", "8*8=64"], 64, [1, 7, 8, 11])  # 8 given and 8 made
    assert not tools.verify_path(["8*8=64"], 64, [1, 7, 8, 11])  # 8 given once
    assert not tools.verify_path(["11*4=44"], 44, [1, 7, 8, 11])  # 4 not given
    # a child's path that steps outside its state's numbers is dropped by its parent
    state = {"numbers": [8, 11], "path": ["7-1=6"]}
    found = [{"paths": [["7-1=6", "8*11=88"], ["7-1=6", "11*4=44"], ["9-1=8", "8+36=44"]]}]
    assert tools.countdown_finish(state, 44, found) == []
    assert tools.countdown_collect(found, 44, [1, 7, 8, 11]) == []
