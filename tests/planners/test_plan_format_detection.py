"""`--format auto` reads a JSON plan after a line of prose as JSON whatever key its
object opens with: `{"thought": "...", "actions": [...]}` in a fence after "Sure!" was
read as a text plan ("expected `N. tool(arguments)`...", "does not end with join()")."""

from __future__ import annotations

import time

from planners.llmcompiler import parse_plan
from planners.tools import ToolCatalog

JSON_PLAN = ('{"thought": "one look-up", "note": 3,\n "actions": [{"id": 1, "tool": "calc", '
             '"args": {"expression": "1 + 1"}}], "answer": "$1"}')


def test_a_json_plan_whose_first_key_is_not_actions_is_json_after_prose(
        catalog: ToolCatalog) -> None:
    text = f"Sure! Here is the plan:\n```json\n{JSON_PLAN}\n```\n"
    plan = parse_plan(text, catalog)
    assert plan.problems == [] and [a.tool for a in plan.actions] == ["calc"]


def test_a_text_plan_mentioning_such_an_object_after_its_actions_stays_text(
        catalog: ToolCatalog) -> None:
    text = '1. calc("1 + 1")\n2. join()\nIn JSON: {"thought": "x", "actions": []}\n'
    plan = parse_plan(text, catalog)
    assert [a.tool for a in plan.actions] == ["calc"]


def test_a_long_run_of_spaces_in_a_value_is_read_once(catalog: ToolCatalog) -> None:
    # with greedy quantifiers the pattern backtracks in cubic time (1,000 spaces: 0.5 s)
    text = 'Plan:\n{"thought": ' + " " * 4000 + "x\n1. calc(\"1 + 1\")\n2. join()\n"
    started = time.perf_counter()
    plan = parse_plan(text, catalog)
    assert time.perf_counter() - started < 2.0
    assert [a.tool for a in plan.actions] == ["calc"]
