"""Scores read from a scorer's text: numbers as reward models and judges write them."""

from __future__ import annotations

from typing import Any

import pytest

from executors.fanout._score import to_score

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(("text", "score"), [
    ("2.3e-05", 2.3e-05), ("Score: -1.5E+2", -150.0), ("1e3 out of 1e4", 1000.0),
    ("8/10", 8.0), ("Score: 7.5", 7.5), ("1e999", None),
])
def test_a_score_in_scientific_notation_is_its_value(text: str, score: float | None) -> None:
    assert to_score(text) == score


def _reward(text: str) -> str:
    return {"candidate A": "9e-4", "candidate B": "5e-3"}[text]


async def test_best_of_n_ranks_scores_written_with_an_exponent(kit: Any) -> None:
    wf = kit.workflow(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Propose.", "n": 2},
        {"id": "best", "kind": "join", "of": "s", "reducer": "best_of_n",
         "scorer": {"tool": "reward", "args": {"text": "${candidate}"}}}]))
    wf.register_tool(_reward, name="reward")
    fake = kit.FakeBackend(kit.by_pattern({"Propose": [kit.Reply("candidate A"),
                                                       kit.Reply("candidate B")]}))
    r = await kit.run(wf, fake=fake)
    assert r.result.ok, r.result.error
    assert r.result.output == "candidate B"
    assert [s["score"] for s in r.step("best").meta["scores"]] == [0.0009, 0.005]
