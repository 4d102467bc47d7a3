"""Reading the joiner's verdict: structured output, or Finish(...)/Replan(...) text with
nested parentheses kept."""

from __future__ import annotations

import jsonschema
import pytest

from planners.base import ActionRecord
from planners.joiner import FINAL_JOINER_SCHEMA, JOINER_SCHEMA, Decision, joiner_request, parse_decision
from planners.plan import PlanProblem


@pytest.mark.parametrize(("text", "action", "value"), [
    ('{"action": "finish", "answer": "Paris"}', "finish", "Paris"),
    ('{"thought": "t", "action": "Finish", "answer": 42}', "finish", 42),
    ('```json\n{"action": "replan", "reason": "Rome is missing"}\n```', "replan",
     "Rome is missing"),
    ("Thought: done.\nAction: Finish(The answer is 5 (approx.) and f(x) = 2)", "finish",
     "The answer is 5 (approx.) and f(x) = 2"),
    ('Finish("Paris (France)")', "finish", "Paris (France)"),
    ("Finish(42)", "finish", 42),
    ("Replan(the look-up of (b) failed)", "replan", "the look-up of (b) failed"),
    ("Action: Replan", "replan", ""),
    ("I could finish now. Finish(it is :) fine", "finish", "it is :"),
    ("Finish(unbalanced (paren", "finish", "unbalanced (paren"),
])
def test_decisions_are_read(text: str, action: str, value: object) -> None:
    decision = parse_decision(text)
    assert isinstance(decision, Decision)
    assert decision.action == action
    assert (decision.answer if action == "finish" else decision.reason) == value
    assert decision.raw == text


@pytest.mark.parametrize("text", ["", "Maybe.", '{"action": "finish"}', '{"answer": "x"}',
                                  "Final answer: 5"])
def test_an_answer_that_is_neither_is_a_problem(text: str) -> None:
    problem = parse_decision(text)
    assert isinstance(problem, PlanProblem) and problem.code == "bad_joiner"
    assert problem.raw == text


def test_the_joiner_request_shows_every_action_and_asks_for_structured_output() -> None:
    records = [ActionRecord("1", "p__1", 'search("a")', 1, "look", "succeeded", {"n": 1}),
               ActionRecord("2", "p__2", 'search("b")', 1, None, "failed", None, "boom")]
    request = joiner_request("Q?", records, last_round=False)
    user = request.messages[-1]["content"]
    assert "Question: Q?" in user and '1. search("a")' in user and '{"n": 1}' in user
    assert "(failed: boom)" in user and "Thought: look" in user
    assert request.json_schema == JOINER_SCHEMA
    last = joiner_request("Q?", records, last_round=True)
    assert last.json_schema == FINAL_JOINER_SCHEMA and "must finish" in last.messages[-1]["content"]
    jsonschema.validate({"action": "finish", "answer": "x"}, FINAL_JOINER_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"action": "replan", "reason": "x"}, FINAL_JOINER_SCHEMA)
