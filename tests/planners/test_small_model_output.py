"""What a small model writes that a planner must read or reject clearly: each problem a
recorded ``plan_error`` that names the offending value and the try it ended, never a
traceback."""

from __future__ import annotations

import json
from typing import Any

import pytest

from planners.agot import parse_layer
from planners.llmcompiler import parse_plan
from planners.plan import PlanProblem
from planners.testing import ScriptedLLM
from planners.tools import ToolCatalog
from tests.planners.conftest import PlanWorkflow, Recorder

pytestmark = pytest.mark.anyio

NOT_COMPLEX = ("Is this thought complex", '{"complex": false}')
ANSWER = ("Answer this thought", "an answer")


def layer(*thoughts: dict[str, Any]) -> str:
    return json.dumps({"strategy": "s", "thoughts": list(thoughts)})


async def test_a_layer_asked_again_records_each_try_under_its_own_number(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    """AGoT asks for a rejected layer again itself: its plan errors said "try 1" every
    time (the driver's try, not the planner's), so `ponder show` listed "try 1 (asked
    again)" then "try 1 (given up)"."""
    llm = ScriptedLLM([NOT_COMPLEX, ANSWER, ("Layer 1 of 2", "Sure! Let me think.")])
    result = await plan_workflow(llm, planner="agot", max_plan_repairs=2,
                                 options={"max_layers": 2}).run(hooks=[recorder])
    assert not result.ok
    errors = recorder.of("plan_error")
    assert [(e.attempt, e.will_retry) for e in errors] == [(1, True), (2, True), (3, False)]
    assert "could not be planned after 3 tries" in (result.error or "")


@pytest.mark.parametrize("parents", ["[1.0]", "[1.0, 1]", "1.0"])
def test_a_parent_written_as_a_whole_float_is_that_thought(parents: str) -> None:
    """JSON without a grammar may write ``1.0``: it was rejected as "builds on 1.0, which
    is not an earlier thought", though T1 is one."""
    text = '{"thoughts": [{"thought": "b", "parents": ' + parents + ', "final": true}]}'
    parsed = parse_layer(text, 1, 3)
    assert not isinstance(parsed, PlanProblem), parsed
    assert parsed.thoughts[0].parents == (1,)


@pytest.mark.parametrize("parents, shown", [("[1.5]", "1.5"), ("[true]", "True"),
                                            ("[1e400]", "inf")])
def test_a_parent_that_is_no_thought_number_is_named(parents: str, shown: str) -> None:
    text = '{"thoughts": [{"thought": "b", "parents": ' + parents + '}]}'
    problem = parse_layer(text, 1, 3)
    assert isinstance(problem, PlanProblem) and problem.code == "bad_reference"
    assert f"builds on {shown}" in problem.message


@pytest.mark.parametrize("text, shown", [
    # cut mid-object (a stream that ended early, no max_tokens reached)
    ('{"actions": [{"id": 1, "tool": "search", "args": {"query": "Rome"', '"query": "Rome"'),
    ('{"actions": [{"id": 1, "tool": "search", "args": {"query": "Ro', '"query": "Ro'),
])
def test_an_incomplete_json_plan_names_where_it_ends(catalog: ToolCatalog, text: str,
                                                     shown: str) -> None:
    """The message was json's own ("Expecting ',' delimiter"), which names nothing the
    model wrote."""
    plan = parse_plan(text, catalog, fmt="json")
    (problem,) = plan.problems
    assert problem.code == "bad_json"
    assert "incomplete" in problem.message and shown in problem.message, problem.message


def test_invalid_json_in_a_plan_names_the_text_where_it_breaks(catalog: ToolCatalog) -> None:
    text = '{"actions": [{"id": 1, "tool": "search", "args": {"query": Rome}}]}'
    (problem,) = parse_plan(text, catalog, fmt="json").problems
    assert problem.code == "bad_json"
    assert "not valid JSON" in problem.message and "Rome}}]}" in problem.message, problem.message


async def test_a_single_try_is_counted_as_one(plan_workflow: PlanWorkflow) -> None:
    """With max_plan_repairs: 0 the messages said "in 1 tries", "after 1 tries"."""
    joiner = ScriptedLLM([("Actions and observations", "I think it is 3."),
                          ("Question", '1. calc("1 + 2")\n2. join()\n<END_OF_PLAN>')])
    result = await plan_workflow(joiner, max_plan_repairs=0).run()
    assert "the joiner gave no usable answer in 1 try (max_plan_repairs=0)" in (
        result.error or ""), result.error
    agot = ScriptedLLM([NOT_COMPLEX, ANSWER, ("Layer 1 of 2", "Sure! Let me think.")])
    result = await plan_workflow(agot, planner="agot", max_plan_repairs=0,
                                 options={"max_layers": 2}).run()
    assert "AGoT: layer 1 could not be planned after 1 try:" in (result.error or ""), \
        result.error
