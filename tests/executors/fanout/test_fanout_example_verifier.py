"""The verifier of examples/scaling/best_of_n.yaml checks the numbers, not only the value."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Workflow

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).parents[3] / "examples" / "scaling"


def test_an_expression_with_numbers_it_was_not_given_scores_0() -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        from scaling_tools import score_expression
    finally:
        sys.path.remove(str(EXAMPLES))
    given = [3, 5, 7, 9]
    assert score_expression("3 * 5 + 9", 24, given) == 1.0
    assert score_expression("8 * 3", 24, given) == 0.0  # 8 is not given
    assert score_expression("24", 24, given) == 0.0
    assert score_expression("3 * 3 + 5 + 7 + 3", 24, given) == 0.0  # 3 given once
    assert score_expression("(9 - 5) * 7 - 3", 24, given) == 0.5  # 25: off by one
    assert score_expression("8 * 3", 24) == 1.0  # without numbers: the value only


async def test_best_of_n_keeps_an_expression_from_the_given_numbers(kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({"Expression": [
        kit.Reply("Easy. Expression: 8 * 3"), kit.Reply("Expression: 3 * 5 + 9")]}))
    wf = Workflow.from_yaml(EXAMPLES / "best_of_n.yaml")
    r = await kit.run(wf, fake=fake)
    assert r.result.ok, r.result.error
    assert r.result.output["expression"] == "3 * 5 + 9"
    assert [s["score"] for s in r.step("best").meta["scores"]][:2] == [0.0, 1.0]
