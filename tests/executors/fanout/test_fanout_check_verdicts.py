"""What first_finish's ``check`` without a threshold takes for a pass: a tool's value, a
judge's verdict."""

from __future__ import annotations

from typing import Any

import pytest

from executors.fanout._score import Score, passes
from orchestrator.spec.kinds_fanout import Scorer

pytestmark = pytest.mark.anyio


def test_a_tools_text_is_its_value_not_the_first_number_in_it() -> None:
    tool = Scorer(tool="extract")
    assert passes(Score(0, 0.0, "Answer: 0"), tool)  # the match found an answer: 0
    assert passes(Score(0, -3.0, "Answer: -3"), tool)
    assert not passes(Score(0, 0.0, "0"), tool) and not passes(Score(0, 0.0, " 0.0 "), tool)
    assert passes(Score(0, 2.0, "2"), tool)
    assert not passes(Score(0, None, "no"), tool) and passes(Score(0, None, "Yes."), tool)
    assert not passes(Score(0, None, ""), tool) and not passes(Score(0, None, None), tool)


def test_a_judges_reply_is_read_as_its_verdict() -> None:
    judge = Scorer(llm="judge")
    assert not passes(Score(0, 42.0, "No, the answer should be 42, not 41."), judge)
    assert not passes(Score(0, None, "**Incorrect**: it drops a sign"), judge)
    assert passes(Score(0, 1.0, "Yes, step 1 is right."), judge)
    assert not passes(Score(0, 0.0, "0/10"), judge) and passes(Score(0, 7.0, "7/10"), judge)
    assert passes(Score(0, None, "It looks right to me"), judge)


async def test_a_check_passes_an_extracted_answer_of_zero(kit: Any) -> None:
    """The check of examples/scaling/first_finish.yaml, on a question whose answer is 0."""
    fake = kit.FakeBackend(kit.by_pattern({"Q": [kit.Reply("408 - 408 = 0. Answer: 0", 0.05),
                                                 kit.Reply("Answer: 7", 0.3)]}),
                           supports_n=False)
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Q?", "n": 2},
        {"id": "f", "kind": "join", "of": "s", "reducer": "first_finish",
         "check": {"tool": "extract",
                   "args": {"text": "${candidate}", "pattern": r"Answer: -?\d+"}}}]), fake=fake)
    assert r.result.ok, r.result.error
    assert r.result.output == "408 - 408 = 0. Answer: 0"
    assert r.step("s").output[1]["status"] == "cancelled"
