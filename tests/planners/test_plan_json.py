"""The JSON plan parser: actions as soon as their object closes; the same checks as
the text format; the schema handed to grammar-constrained decoding."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from planners.plan import Action, Joined, PlanBuilder, PlanProblem, PlanRef
from planners.plan_json import JsonPlanParser, plan_schema
from planners.tools import ToolCatalog

PLAN = {"actions": [
    {"id": 1, "tool": "lookup", "args": {"city": "Paris"}},
    {"id": 2, "tool": "lookup", "args": {"city": "Rome"}, "thought": "second city"},
    {"id": 3, "tool": "calc", "args": {"expression": "$1 + $2"}},
    {"id": 4, "tool": "pair", "args": {"a": "$1", "b": "${2}"}},
]}


def run(text: str, catalog: ToolCatalog, **builder: object) -> list[object]:
    parser = JsonPlanParser(PlanBuilder(catalog, **builder))  # type: ignore[arg-type]
    return [*parser.feed(text), *parser.close()]


def test_actions_stream_out_as_their_objects_close(catalog: ToolCatalog) -> None:
    text = json.dumps(PLAN, indent=1)
    parser = JsonPlanParser(PlanBuilder(catalog))
    seen: list[tuple[int, int]] = []
    for i, ch in enumerate(text):
        for e in parser.feed(ch):
            assert isinstance(e, Action)
            seen.append((e.id, i))
    assert [s[0] for s in seen] == [1, 2, 3, 4]
    assert seen[0][1] < text.index('"id": 2')  # action 1 before action 2 is even written
    rest = parser.close()
    assert not [e for e in rest if isinstance(e, PlanProblem)]


def test_references_are_typed_or_interpolated(catalog: ToolCatalog) -> None:
    actions = [e for e in run(json.dumps(PLAN), catalog) if isinstance(e, Action)]
    assert actions[1].thought == "second city"
    assert actions[2].args == {"expression": "$1 + $2"} and actions[2].deps == (1, 2)
    assert actions[3].args == {"a": PlanRef(1), "b": PlanRef(2)}


@pytest.mark.parametrize(("text", "code"), [
    ('{"actions": [{"id": 1, "tool": "nope", "args": {}}]}', "unknown_tool"),
    ('{"actions": [{"id": 2, "tool": "search", "args": {"query": "a"}}]}', "bad_id"),
    ('{"actions": [{"id": 1, "tool": "search", "args": {"query": "$1"}}]}', "bad_reference"),
    ('{"actions": [{"id": 1, "tool": "search", "args": {"query": 3}}]}', "bad_args"),
    ('{"actions": [{"tool": "search", "args": {}}]}', "bad_json"),
    ('{"actions": []}', "empty_plan"),
    ('{"actions": [{"id": 1, "tool": "search", "args": {"query": "a"}}]}\nor\n'
     '{"actions": [{"id": 1, "tool": "search", "args": {"query": "b"}}]}', "after_end"),
    ('{"actions": [{"id": 1, "tool": "search", "args": {"query": "a"}}', "bad_json"),
    ('{"steps": []}', "bad_json"),
    ('{"actions": [{"id": 1, "tool": "search", "args": {"query": "a"}}], "answer": "$4"}',
     "bad_reference"),
    ('{"actions": [{"id": 1, "tool": "search", "args": {"query": "a"}}], "answer": "a"}',
     "bad_reference"),
    ("the plan is to search", "garbage"),
    ("[1, 2]", "garbage"),
    ("", "empty_plan"),
])
def test_malformed_json_plans(catalog: ToolCatalog, text: str, code: str) -> None:
    problems = [e for e in run(text, catalog) if isinstance(e, PlanProblem)]
    assert problems and problems[0].code == code, problems


def test_a_json_cycle_is_reported(catalog: ToolCatalog) -> None:
    text = json.dumps({"actions": [{"id": 1, "tool": "calc", "args": {"expression": "$2"}},
                                   {"id": 2, "tool": "calc", "args": {"expression": "$1"}}]})
    codes = [e.code for e in run(text, catalog) if isinstance(e, PlanProblem)]
    assert codes == ["bad_reference", "cycle"]


def test_the_schema_accepts_the_plan_and_rejects_unknown_tools(catalog: ToolCatalog) -> None:
    schema = plan_schema(catalog, max_actions=8)
    jsonschema.validate(PLAN, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"actions": [{"id": 1, "tool": "rm", "args": {}}]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"actions": [{"id": 1, "tool": "calc", "args": {"expression": 5}}]},
                            schema)


def test_a_json_plan_may_name_its_answer(catalog: ToolCatalog) -> None:
    events = run(json.dumps({**PLAN, "answer": "${3}"}), catalog)
    assert [e.answer for e in events if isinstance(e, Joined)] == [3]
    assert not [e for e in events if isinstance(e, PlanProblem)]
    schema = plan_schema(catalog, answer=True)
    jsonschema.validate({**PLAN, "answer": "$3"}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**PLAN, "answer": 3}, schema)
    assert "answer" not in plan_schema(catalog)["properties"]


@pytest.mark.parametrize(("text", "codes"), [
    ('{"actions": [5]}', ["bad_json"]),
    ('{"actions": [{"id": 1, "tool": "search", "args": 3}]}', ["bad_args"]),
    ('{"actions": [{"id": 1, "tool": "search", "args": {"query": "a"}}', ["bad_json"]),
    ("the plan is to search", ["garbage"]),
    ('{"actions": []}', ["empty_plan"]),  # truly empty: still an error
])
def test_a_rejected_action_is_one_error_not_also_an_empty_plan(
        catalog: ToolCatalog, text: str, codes: list[str]) -> None:
    problems = [e for e in run(text, catalog) if isinstance(e, PlanProblem)]
    assert [p.code for p in problems] == codes, problems


def test_a_double_dollar_is_a_literal_dollar_in_json_plans(catalog: ToolCatalog) -> None:
    plan = {"actions": [{"id": 1, "tool": "search", "args": {"query": "$$1"}},
                        {"id": 2, "tool": "search", "args": {"query": "$1 costs $$2"}}]}
    events = run(json.dumps(plan), catalog)
    actions = [e for e in events if isinstance(e, Action)]
    assert not [e for e in events if isinstance(e, PlanProblem)]
    assert [a.deps for a in actions] == [(), (1,)]
    assert actions[0].step_args(lambda n: f"<{n}>") == {"query": "$1"}
    assert actions[1].step_args(lambda n: f"<{n}>") == {"query": "<1> costs $2"}


def test_an_answer_naming_no_action_is_shown_as_the_json_wrote_it(catalog: ToolCatalog) -> None:
    text = '{"actions": [{"id": 1, "tool": "search", "args": {"query": "a"}}], "answer": "$4"}'
    (problem,) = [e for e in run(text, catalog) if isinstance(e, PlanProblem)]
    assert problem.message == 'the "answer" "$4": no such action $4', problem


@pytest.mark.parametrize(("answer", "shown"), [
    ("$9999999999", "9999999999"), ("${9999999999}", "9999999999"), ("$0", "0"),
    ("${0}", "0"), ("$-1", "-1"), ("${-3}", "-3"), ("$" + "9" * 5000, "9" * 20 + "..." + "9" * 8),
])
def test_an_answer_no_action_can_have_is_no_such_action(catalog: ToolCatalog, answer: str,
                                                        shown: str) -> None:
    # a huge or negative number was "\"answer\" must name an action as \"$N\"", as if
    # the plan had not written $N
    text = ('{"actions": [{"id": 1, "tool": "search", "args": {"query": "a"}}], '
            f'"answer": "{answer}"}}')
    problems = [e for e in run(text, catalog) if isinstance(e, PlanProblem)]
    assert [(p.code, p.message) for p in problems] == [
        ("bad_reference", f'the "answer" "${shown}": no such action ${shown}')]


@pytest.mark.parametrize(("arg", "shown"), [
    ("$0", "0"), ("${0}", "0"), ("$-1", "-1"), ("${-2}", "-2"), ("$9999999999", "9999999999"),
    ("in ${0}", "0"), ("in ${-1}", "-1"), ("in $9999999999", "9999999999"),
])
def test_an_argument_no_action_can_have_is_no_such_action(catalog: ToolCatalog, arg: str,
                                                          shown: str) -> None:
    # "$-1" was taken as the text $-1, "$0" was "refers to $0, but there is no action 0"
    text = json.dumps({"actions": [{"id": 1, "tool": "search", "args": {"query": "a"}},
                                   {"id": 2, "tool": "search", "args": {"query": arg}}]})
    problems = [e for e in run(text, catalog) if isinstance(e, PlanProblem)]
    assert [(p.code, p.message) for p in problems] == [
        ("bad_reference", f"action 2: no such action ${shown}")]


def test_a_negative_number_inside_a_string_is_text(catalog: ToolCatalog) -> None:
    text = json.dumps({"actions": [{"id": 1, "tool": "search", "args": {"query": "costs $-1"}}]})
    events = run(text, catalog)
    assert not [e for e in events if isinstance(e, PlanProblem)]


# what llama.cpp's grammar parser reads after a backslash (grammar-parser's parse_char)
_GBNF_ESCAPES = set('xuUtrn\\"[]')


def test_the_plan_schema_becomes_a_grammar_llama_cpp_can_read(catalog: ToolCatalog) -> None:
    llama_grammar = pytest.importorskip("llama_cpp.llama_grammar",
                                        reason="needs the `local` extra (llama-cpp-python)")
    from executors.llm._json_output import grammar_schema

    schema = grammar_schema(plan_schema(catalog, max_actions=8, answer=True))
    gbnf = llama_grammar.json_schema_to_gbnf(json.dumps(schema))
    literals = re.findall(r'"(?:[^"\\]|\\.)*"|\[(?:[^\]\\]|\\.)*\]', gbnf)
    escapes = {e for lit in literals for e in re.findall(r"\\(.)", lit)}
    assert escapes <= _GBNF_ESCAPES, (escapes - _GBNF_ESCAPES, gbnf)
    jsonschema.validate({**PLAN, "answer": "${3}"}, plan_schema(catalog, answer=True))


@pytest.mark.parametrize("chunk", [None, 1])
def test_raw_control_characters_inside_strings_are_read(catalog: ToolCatalog,
                                                        chunk: int | None) -> None:
    # llama.cpp's grammar for a JSON string admits a raw newline or tab
    text = '{"actions": [{"id": 1, "tool": "search", "args": {"query": "a\tb\nc"}}]}'
    parser = JsonPlanParser(PlanBuilder(catalog))
    pieces = [text] if chunk is None else list(text)
    events = [e for piece in pieces for e in parser.feed(piece)] + parser.close()
    assert not [e for e in events if isinstance(e, PlanProblem)], events
    (action,) = [e for e in events if isinstance(e, Action)]
    assert action.args == {"query": "a\tb\nc"}


@pytest.mark.parametrize("text", [
    'Here is the plan:\n```json\n{"actions": [{"id": 1, "tool": "search", "args": {"query": '
    '"a"}}]}\n```\nIt searches once.',
    'I will use {braces} in prose first.\n{"actions": [{"id": 1, "tool": "search", "args": '
    '{"query": "a"}}]}',
    "Don't worry, the plan's here: \"\n{\"actions\": [{\"id\": 1, \"tool\": \"search\", "
    "\"args\": {\"query\": \"a\"}}]}",
])
@pytest.mark.parametrize("chunk", [None, 2])
def test_prose_around_the_json_plan_is_skipped(catalog: ToolCatalog, text: str,
                                               chunk: int | None) -> None:
    parser = JsonPlanParser(PlanBuilder(catalog))
    pieces = [text] if chunk is None else [text[i:i + chunk] for i in range(0, len(text), chunk)]
    events = [e for p in pieces for e in parser.feed(p)] + parser.close()
    assert not [e for e in events if isinstance(e, PlanProblem)], events
    assert [e.args for e in events if isinstance(e, Action)] == [{"query": "a"}]


def test_an_object_without_actions_is_still_reported_when_no_plan_follows(
        catalog: ToolCatalog) -> None:
    problems = [e for e in run('{"steps": []}\nthat is all', catalog)
                if isinstance(e, PlanProblem)]
    assert problems[0].code == "bad_json" and '"actions" list' in problems[0].message


def test_a_string_that_is_a_reference_with_a_field_is_that_part(catalog: ToolCatalog) -> None:
    text = json.dumps({"actions": [
        {"id": 1, "tool": "search", "args": {"query": "a"}},
        {"id": 2, "tool": "pair", "args": {"a": "$1.n", "b": "${1.m}"}},
        {"id": 3, "tool": "calc", "args": {"expression": "${1.n} * 2"}}]})
    actions = [e for e in run(text, catalog) if isinstance(e, Action)]
    assert actions[1].args == {"a": PlanRef(1, ("n",)), "b": PlanRef(1, ("m",))}
    ref = lambda n: "${steps.p__" + str(n) + ".output}"  # noqa: E731
    assert actions[2].step_args(ref) == {"expression": "${steps.p__1.output.n} * 2"}
    schema = plan_schema(catalog)
    jsonschema.validate(json.loads(text), schema)  # a constrained decoder may write it
    answer = json.dumps({"actions": [{"id": 1, "tool": "search", "args": {"query": "a"}}],
                         "answer": "$1.n"})
    problems = [e for e in run(answer, catalog) if isinstance(e, PlanProblem)]
    assert problems[0].code == "bad_reference"  # the answer is a whole action's result


def test_a_long_json_plan_parses_in_linear_time(catalog: ToolCatalog) -> None:
    import time

    n = 8_000
    text = json.dumps({"actions": [{"id": i, "tool": "search",
                                    "args": {"query": f"query number {i} about something"}}
                                   for i in range(1, n + 1)]}, indent=1)
    started = time.perf_counter()
    parser = JsonPlanParser(PlanBuilder(catalog))
    events = [e for i in range(0, len(text), 4) for e in parser.feed(text[i:i + 4])]
    events += parser.close()
    # each action's line was counted from the start of the text, and each token copied
    # the whole text: 6 s on a developer's machine, under 1 s now
    assert time.perf_counter() - started < 4
    assert sum(isinstance(e, Action) for e in events) == n
    assert not [e for e in events if isinstance(e, PlanProblem)]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-1e999"])
def test_a_number_that_is_not_finite_is_bad_args(catalog: ToolCatalog, value: str) -> None:
    # Python's JSON reader takes NaN and Infinity, and reads 1e999 as infinite: none is
    # JSON the trace or a tool's input can hold
    open_catalog = ToolCatalog(catalog.tools, open=True)
    plan = '{"actions": [{"id": 1, "tool": "anything", "args": {"x": [VALUE]}}]}'
    events = run(plan.replace("VALUE", value), open_catalog)
    problems = [e for e in events if isinstance(e, PlanProblem)]
    assert problems and problems[0].code == "bad_args"
    assert "not a finite number" in problems[0].message
    assert not [e for e in events if isinstance(e, Action)]


@pytest.mark.parametrize("where", ["id", "args"])
def test_a_number_too_long_for_int_is_a_problem_not_a_crash(catalog: ToolCatalog,
                                                            where: str) -> None:
    # json.loads raised ValueError ("Exceeds the limit (4300 digits)") out of feed()
    huge = "9" * 5000
    first = '{"id": 1, "tool": "search", "args": {"query": "a"}}'
    second = (f'{{"id": {huge}, "tool": "search", "args": {{"query": "a"}}}}' if where == "id"
              else f'{{"id": 2, "tool": "search", "args": {{"query": {huge}}}}}')
    text = '{"actions": [' + first + ",\n" + second + "]}"
    for chunks in ([text], [text[i:i + 997] for i in range(0, len(text), 997)]):
        parser = JsonPlanParser(PlanBuilder(catalog))
        found = [e for c in chunks for e in parser.feed(c)] + parser.close()
        problems = [(p.code, p.message, p.line) for p in found if isinstance(p, PlanProblem)]
        assert problems == [("bad_json", "the JSON plan holds a number of 5000 digits, too "
                                         "long to read", 2)]


def test_an_id_of_many_digits_is_shown_cut(catalog: ToolCatalog) -> None:
    text = json.dumps({"actions": [{"id": int("9" * 4000), "tool": "search",
                                    "args": {"query": "a"}},
                                   {"id": 2, "tool": "search", "args": {"query": "b"}}]})
    problems = [e.message for e in run(text, catalog) if isinstance(e, PlanProblem)]
    # the next action was measured against the long id ("action id 2 goes back to a
    # number: expected 10000000000000000000...00000000"); it is against the plan's 1
    assert problems == ["action id 99999999999999999999...99999999 skips numbers: expected 1",
                        "action id 2 skips a number: expected 1"]
