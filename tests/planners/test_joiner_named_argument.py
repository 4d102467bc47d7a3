"""A joiner that writes its text verdict with the argument named (`Finish(answer="42")`,
`Replan(reason="Rome is missing")`) means the value: the name and the quotes were kept,
so the run's output was `answer="42"` and the replanner read `reason="..."`."""

from __future__ import annotations

from typing import Any

import pytest

from planners.joiner import Decision, parse_decision
from planners.plan import PlanProblem
from planners.testing import ScriptedLLM
from tests.planners.conftest import PlanWorkflow, Recorder

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("text, answer", [
    ('Finish(answer="42")', "42"),
    ("Finish(answer=42)", 42),
    ("Finish(Answer: 42)", 42),
    ('Finish(answer = "Paris (France)")', "Paris (France)"),
    ("Finish(answer=$1)", "$1"),
    ("Finish: answer: 42", 42),
    # no name: as before
    ('Finish("42")', "42"),
    ("Finish(answers are 42)", "answers are 42"),
])
def test_a_named_finish_answer_is_its_value(text: str, answer: Any) -> None:
    decision = parse_decision(text)
    assert isinstance(decision, Decision) and decision.action == "finish"
    assert decision.answer == answer


@pytest.mark.parametrize("text, reason", [
    ('Replan(reason="Rome is missing")', "Rome is missing"),
    ("Replan(reason: Rome is missing)", "Rome is missing"),
    ('Replan("Rome is missing")', "Rome is missing"),
    ("Replan(Rome is missing)", "Rome is missing"),
    ("Replan()", ""),
])
def test_a_named_or_quoted_replan_reason_is_its_text(text: str, reason: str) -> None:
    decision = parse_decision(text)
    assert isinstance(decision, Decision) and decision.action == "replan"
    assert decision.reason == reason


def test_a_name_with_no_value_is_no_answer() -> None:
    problem = parse_decision("Finish(answer=)")
    assert isinstance(problem, PlanProblem) and problem.code == "bad_joiner"
    assert "without an answer" in problem.message


async def test_the_run_s_output_is_the_value(plan_workflow: PlanWorkflow,
                                             recorder: Recorder) -> None:
    llm = ScriptedLLM([("Actions and observations", 'Finish(answer="result for a")'),
                       ("Question", '1. search("a")\n2. join()\n<END_OF_PLAN>')])
    result = await plan_workflow(llm, outputs={"answer": "${steps.p.output}"}
                                 ).run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == {"answer": "result for a"}
