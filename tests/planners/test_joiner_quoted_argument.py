"""A joiner's quoted `Finish("...")`/`Replan("...")` argument runs to the end of its
string, not to the first `)` in it: `Finish("It is 5 :) really")` was the answer
`"It is 5 :` (the quote kept, the text cut) and the run succeeded with it. A quoted
argument that never closes is a bad answer, asked again."""

from __future__ import annotations

import pytest

from planners.joiner import Decision, parse_decision
from planners.plan import PlanProblem
from planners.testing import ScriptedLLM
from tests.planners.conftest import PlanWorkflow, Recorder

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("text, answer", [
    ('Finish("It is 5 :) really")', "It is 5 :) really"),
    ("Finish('It is 5 :) really')", "It is 5 :) really"),
    ('Finish("say \\"hi :)\\" (twice)")', 'say "hi :)" (twice)'),
    ("Finish('it\\'s done :)')", "it's done :)"),
    ('Finish("a \\\\")', "a \\"),
    ('Finish(answer="x)")', "x)"),
    ("Finish(answer: 'x)')", "x)"),
    ('Thought: enough.\nFinish("smile :)") -- done', "smile :)"),
    ("Finish('Paris')", "Paris"),
    # unquoted: parentheses only, as before (an apostrophe is prose)
    ("Finish(it's 5 (approx))", "it's 5 (approx)"),
    ("Finish(42)", 42),
])
def test_a_quoted_finish_answer_is_its_whole_text(text: str, answer: object) -> None:
    decision = parse_decision(text)
    assert isinstance(decision, Decision) and decision.action == "finish", decision
    assert decision.answer == answer


@pytest.mark.parametrize("text, reason", [
    ('Replan("the look-up failed :) twice")', "the look-up failed :) twice"),
    ("Replan('Rome (Italy) is missing')", "Rome (Italy) is missing"),
    ('Replan(reason="need ) more")', "need ) more"),
])
def test_a_quoted_replan_reason_is_its_whole_text(text: str, reason: str) -> None:
    decision = parse_decision(text)
    assert isinstance(decision, Decision) and decision.action == "replan", decision
    assert decision.reason == reason


@pytest.mark.parametrize("text, said", [
    ('Finish("It is 5 :) really)', "never closes it"),
    ("Finish('it is 5)", "never closes it"),
    ('Finish("a \\")', "never closes it"),
    ('Replan("Rome is missing)', "never closes it"),
    ('Finish("It is 5" (really)', "without the `)`"),
    ('Finish("It is 5"', "without the `)`"),
    ('Replan(reason="x"', "without the `)`"),
])
def test_an_unclosed_quoted_argument_is_a_bad_answer(text: str, said: str) -> None:
    problem = parse_decision(text)
    assert isinstance(problem, PlanProblem) and problem.code == "bad_joiner", problem
    assert said in problem.message
    assert problem.raw == text


async def test_the_run_s_output_is_the_quoted_text(plan_workflow: PlanWorkflow,
                                                   recorder: Recorder) -> None:
    llm = ScriptedLLM([("Actions and observations", 'Finish("It is 5 :) really")'),
                       ("Question", '1. search("a")\n2. join()\n<END_OF_PLAN>')])
    result = await plan_workflow(llm, outputs={"answer": "${steps.p.output}"}
                                 ).run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == {"answer": "It is 5 :) really"}


async def test_an_unclosed_answer_is_asked_again(plan_workflow: PlanWorkflow,
                                                 recorder: Recorder) -> None:
    llm = ScriptedLLM([("Actions and observations", ['Finish("It is 5 :) really',
                                                     'Finish("It is 5")']),
                       ("Question", '1. search("a")\n2. join()\n<END_OF_PLAN>')])
    result = await plan_workflow(llm, outputs={"answer": "${steps.p.output}"}
                                 ).run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == {"answer": "It is 5"}
    errors = recorder.of("plan_error")
    assert [e.code for e in errors] == ["bad_joiner"]
    assert "never closes it" in errors[0].error
