"""Reading the joiner's verdict: structured output, or Finish(...)/Replan(...) text with
nested parentheses kept."""

from __future__ import annotations

import jsonschema
import pytest

from planners.base import ActionRecord
from planners.joiner import (
    FINAL_JOINER_SCHEMA,
    JOINER_SCHEMA,
    Decision,
    format_actions,
    joiner_request,
    parse_decision,
    resolve_answer,
)
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


def test_an_observation_names_other_actions_as_the_plan_does() -> None:
    records = [ActionRecord("1", "p__1", 'search("a")', 1, None, "failed", None, "boom"),
               ActionRecord("10", "p__10", 'search("b")', 1, None, "succeeded", "x"),
               ActionRecord("11", "p__11", "calc($1, $10)", 1, None, "skipped", None,
                            "dependency 'p__1' did not succeed; 'p__10' is fine")]
    text = format_actions(records)
    assert "Observation: (skipped: dependency $1 did not succeed; $10 is fine)" in text


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


@pytest.mark.parametrize("text", ["No need to replan.", "I won't replan", "Nothing to replan here",
                                  "We should not replan (the data is enough).",
                                  "I could finish now.", "Let me finish: the answer"])
def test_a_verb_inside_a_sentence_decides_nothing(text: str) -> None:
    problem = parse_decision(text)
    assert isinstance(problem, PlanProblem) and problem.code == "bad_joiner", problem


@pytest.mark.parametrize(("text", "action", "value"), [
    ("Replan: need more data", "replan", "need more data"),
    ("Replan", "replan", ""),
    ("**Replan**: Rome is missing", "replan", "Rome is missing"),
    ("Thought: all there.\nFinish: 42", "finish", 42),
    ("Finish: Paris (France).", "finish", "Paris (France)"),
    ("Finish (Paris)", "finish", "Paris"),
])
def test_a_line_that_begins_with_the_verb_decides(text: str, action: str,
                                                  value: object) -> None:
    decision = parse_decision(text)
    assert isinstance(decision, Decision), decision
    assert decision.action == action
    assert (decision.answer if action == "finish" else decision.reason) == value


@pytest.mark.parametrize("text", ["Finish()", 'Finish("")', "Finish(   )", "Finish:",
                                  '{"action": "finish", "answer": ""}',
                                  '{"action": "finish", "answer": null}',
                                  '{"action": "finish"}',
                                  'Done. {"thought": "all there", "action": "Finish"}'])
def test_an_empty_finish_is_a_bad_answer(text: str) -> None:
    problem = parse_decision(text)
    assert isinstance(problem, PlanProblem) and problem.code == "bad_joiner", problem
    assert "finished without an answer" in problem.message


RECORDS = [ActionRecord("1", "p__1", 'lookup("Paris")', 1, None, "succeeded", 2000),
           ActionRecord("2", "p__2", 'search("x")', 1, None, "succeeded", "two"),
           ActionRecord("3", "p__3", 'calc("$1")', 1, None, "failed", None, "boom")]


@pytest.mark.parametrize(("answer", "value"), [
    ("$1", 2000), ("${1}", 2000), (" $2 ", "two"), ("about $1 people", "about 2000 people"),
    ("$1 and $2", "2000 and two"), ("costs $$5", "costs $5"), ("Paris", "Paris"), (7, 7),
])
def test_references_in_the_answer_take_the_actions_results(answer: object,
                                                           value: object) -> None:
    decision = resolve_answer(Decision("finish", answer, raw="r"), RECORDS)
    assert isinstance(decision, Decision) and decision.answer == value
    assert type(decision.answer) is type(value)


@pytest.mark.parametrize(("answer", "shown"), [("$3", "3 (failed)"), ("$9", "9"),
                                               ("$1 + $9", "9")])
def test_an_answer_naming_an_action_without_a_result_is_a_bad_answer(answer: str,
                                                                     shown: str) -> None:
    problem = resolve_answer(Decision("finish", answer, raw="r"), RECORDS)
    assert isinstance(problem, PlanProblem) and problem.code == "bad_joiner"
    assert f"names action {shown}, which has no result" in problem.message


def test_raw_newlines_and_tabs_inside_json_strings_are_read() -> None:
    # llama.cpp's grammar for a JSON string admits raw control characters
    decision = parse_decision('{"action": "finish", "answer": "line one\nline\ttwo"}')
    assert isinstance(decision, Decision) and decision.answer == "line one\nline\ttwo"
    decision = parse_decision('Finish("a\nb")')
    assert isinstance(decision, Decision) and decision.answer == "a\nb"


WEATHER = [ActionRecord("1", "p__1", 'weather("Paris")', 1, None, "succeeded",
                        {"temp": 18, "conditions": ["sunny", "cloudy"]})]


@pytest.mark.parametrize(("answer", "value"), [
    ("$1.temp", 18), ("${1.temp}", 18), ('$1["conditions"][-1]', "cloudy"),
    ("${1.conditions[0]} and $1['temp'] degrees", "sunny and 18 degrees"),
])
def test_an_answer_may_name_a_part_of_a_result(answer: str, value: object) -> None:
    decision = resolve_answer(Decision("finish", answer, raw="r"), WEATHER)
    assert isinstance(decision, Decision) and decision.answer == value, decision


def test_an_answer_naming_a_part_that_does_not_exist_is_a_bad_answer() -> None:
    problem = resolve_answer(Decision("finish", "$1.wind", raw="r"), WEATHER)
    assert isinstance(problem, PlanProblem) and problem.code == "bad_joiner"
    assert "$1.wind: action 1's result has no 'wind'" in problem.message


def test_an_observation_names_a_missing_part_as_the_plan_wrote_it() -> None:
    records = [WEATHER[0],
               ActionRecord("2", "p__2", "to_kelvin($1.wind)", 1, None, "failed", None,
                            '`${steps.p__1.output.wind}`: no `wind` in {"temp": 18}')]
    text = format_actions(records)
    assert "(failed: `$1.wind`: no `wind` in {\"temp\": 18})" in text, text
    assert "steps.p__1" not in text


@pytest.mark.parametrize(("text", "shown"), [
    # the run's output held them, and `ponder run` could not print it (exit 2)
    ('{"action": "finish", "answer": "x\\ud800y"}', "holds \\ud800, half of a UTF-16"),
    ("Finish(1e999)", "holds inf, which is not a finite number"),
    ('{"action": "finish", "answer": -1e999}', "holds -inf, which is not a finite number"),
])
def test_an_answer_json_cannot_hold_is_a_bad_answer(text: str, shown: str) -> None:
    problem = parse_decision(text)
    assert isinstance(problem, PlanProblem) and problem.code == "bad_joiner"
    assert shown in problem.message and problem.raw == text


def test_a_surrogate_pair_is_one_character_and_a_reason_keeps_what_it_can() -> None:
    decision = parse_decision('{"action": "finish", "answer": "\\ud83d\\ude00"}')
    assert not isinstance(decision, PlanProblem) and decision.answer == "\U0001f600"
    replan = parse_decision('{"action": "replan", "reason": "Rome \\udc00 is missing"}')
    assert not isinstance(replan, PlanProblem)
    assert replan.reason == "Rome \ufffd is missing"


LONG = "9" * 5000  # more digits than int() reads


@pytest.mark.parametrize(("text", "answer"), [
    # json raised ValueError ("Exceeds the limit (4300 digits)") out of parse_decision:
    # the plan step failed as "unexpected ValueError", the joiner never asked again
    ('{"action": "finish", "answer": ' + LONG + "}", LONG),
    ('{"action": "finish", "answer": "x", "confidence": ' + LONG + "}", "x"),
    (f"Finish({LONG})", LONG),
    ("Finish(12)", 12),
])
def test_a_number_too_long_for_int_is_read_as_its_digits(text: str, answer: object) -> None:
    decision = parse_decision(text)
    assert isinstance(decision, Decision) and decision.answer == answer


@pytest.mark.parametrize(("text", "action", "value"), [
    # a line that is the verb was not seen after a lone CR, nor after a BOM
    ("Thought: Rome is missing.\rReplan", "replan", ""),
    ("Thought: done.\rFinish: Paris", "finish", "Paris"),
    ("\ufeffFinish: Paris", "finish", "Paris"),
    ("Thought: done.\r\nFinish: Paris\r\n", "finish", "Paris"),
    ('{"action": "finish",\r"answer": "a\rb"}', "finish", "a\rb"),  # a string keeps its CR
])
def test_a_decision_is_read_whatever_the_line_endings(text: str, action: str,
                                                     value: object) -> None:
    decision = parse_decision(text)
    assert isinstance(decision, Decision), decision
    assert decision.action == action and decision.raw == text
    assert (decision.answer if action == "finish" else decision.reason) == value
