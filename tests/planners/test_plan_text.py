"""The text plan parser: every malformed plan is a typed problem with its line;
streaming gives the same result as parsing the whole text."""

from __future__ import annotations

import pytest

from planners.plan import Action, Joined, PlanBuilder, PlanProblem, PlanRef
from planners.plan_text import ArgSyntaxError, TextPlanParser, parse_call_args
from planners.tools import ToolCatalog


def parse(text: str, catalog: ToolCatalog, *, chunk: int | None = None, **builder: object
          ) -> tuple[list[Action], list[PlanProblem], list[Joined]]:
    parser = TextPlanParser(PlanBuilder(catalog, **builder))  # type: ignore[arg-type]
    events = []
    if chunk is None:
        events += parser.feed(text)
    else:
        for i in range(0, len(text), chunk):
            events += parser.feed(text[i:i + chunk])
    events += parser.close()
    return ([e for e in events if isinstance(e, Action)],
            [e for e in events if isinstance(e, PlanProblem)],
            [e for e in events if isinstance(e, Joined)])


GOOD = """Thought: two look-ups that do not depend on each other
1. lookup("Paris", "population")
2. lookup(city="Rome")
Thought: add them
3. calc("$1 + ${2}")
4. pair($1, $2)
5. total([$1, $2, 7])
6. describe({"a": $3, "b": [true, null, -1.5]})
7. join()
<END_OF_PLAN>
"""


def test_a_good_plan_parses_with_references_typed_and_interpolated(catalog: ToolCatalog) -> None:
    actions, problems, joins = parse(GOOD, catalog)
    assert problems == []
    assert [a.id for a in actions] == [1, 2, 3, 4, 5, 6]
    assert joins == [Joined(9)]
    a1, a2, a3, a4, a5, a6 = actions
    assert a1.args == {"city": "Paris", "attribute": "population"}
    assert a1.thought == "two look-ups that do not depend on each other" and a1.line == 2
    assert a2.args == {"city": "Rome"}
    assert a3.thought == "add them" and a3.deps == (1, 2)
    assert a4.args == {"a": PlanRef(1), "b": PlanRef(2)}
    assert a5.args == {"values": [PlanRef(1), PlanRef(2), 7]}
    assert a6.args == {"item": {"a": PlanRef(3), "b": [True, None, -1.5]}}
    ref = lambda n: "${steps.p__" + str(n) + ".output}"  # noqa: E731
    assert a3.step_args(ref) == {"expression": "${steps.p__1.output} + ${steps.p__2.output}"}
    assert a4.step_args(ref) == {"a": "${steps.p__1.output}", "b": "${steps.p__2.output}"}
    assert a5.step_args(ref) == {"values": [ref(1), ref(2), 7]}


COMMENTED = """# look up both cities first
Thought: two look-ups
1. lookup("Paris")  # the city's population
2. lookup(  # Rome's, too (the second city)
    "Rome",  # a comment's quote ' and bracket ] do not count
)
3. calc("$1 + $2 # not a comment")  # $9 in a comment refers to nothing
4. join()  # done
<END_OF_PLAN>
"""


@pytest.mark.parametrize("chunk", [None, 1, 5])
def test_comments_after_hash_are_ignored(catalog: ToolCatalog, chunk: int | None) -> None:
    actions, problems, joins = parse(COMMENTED, catalog, chunk=chunk)
    assert problems == []
    assert [(a.id, a.args, a.deps) for a in actions] == [
        (1, {"city": "Paris"}, ()), (2, {"city": "Rome"}, ()),
        (3, {"expression": "$1 + $2 # not a comment"}, (1, 2))]
    assert actions[0].thought == "two look-ups" and joins == [Joined(8)]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_streaming_in_any_chunks_gives_the_same_plan(catalog: ToolCatalog, chunk: int) -> None:
    whole = parse(GOOD, catalog)
    assert parse(GOOD, catalog, chunk=chunk) == whole


def test_each_action_is_reported_as_soon_as_its_line_is_complete(catalog: ToolCatalog) -> None:
    parser = TextPlanParser(PlanBuilder(catalog))
    assert parser.feed('1. search("a")') == []  # the line may still go on
    first = parser.feed("\n2. sea")
    assert [a.id for a in first if isinstance(a, Action)] == [1]
    assert [a.id for a in parser.feed('rch("b")\n') if isinstance(a, Action)] == [2]


def test_arguments_may_run_over_several_lines(catalog: ToolCatalog) -> None:
    text = '1. total([1,\n   2,\n   3])\n2. join()\n'
    actions, problems, _ = parse(text, catalog)
    assert problems == [] and actions[0].args == {"values": [1, 2, 3]} and actions[0].line == 1


def test_end_of_plan_may_be_missing_after_join_and_fences_are_ignored(catalog: ToolCatalog
                                                                       ) -> None:
    actions, problems, _ = parse('```\n1. search("x")\n2. join()\n```', catalog)
    assert problems == [] and len(actions) == 1


def test_replan_numbering_continues_and_may_use_earlier_results(catalog: ToolCatalog) -> None:
    actions, problems, _ = parse('3. calc("$1 + $3")\n', catalog, first_id=3, known_ids={1, 2})
    assert [p.code for p in problems] == ["bad_reference", "no_join"]
    actions, problems, _ = parse('3. calc("$1 * 2")\n4. join()', catalog, first_id=3,
                                 known_ids={1, 2})
    assert problems == [] and actions[0].deps == (1,)


MALFORMED = [
    # (name, plan, code, line)
    ("unknown tool", '1. delete_everything("/")\n2. join()', "unknown_tool", 1),
    ("too many arguments", '1. search("a", "b")\n2. join()', "bad_args", 1),
    ("missing argument", '1. lookup()\n2. join()', "bad_args", 1),
    ("unknown keyword", '1. search(q="a")\n2. join()', "bad_args", 1),
    ("wrong type", '1. calc(5)\n2. join()', "bad_args", 1),
    ("wrong type in a list", '1. total(["x"])\n2. join()', "bad_args", 1),
    ("not a literal", '1. search(Paris)\n2. join()', "bad_args", 1),
    ("a call in the arguments", '1. search(open("f"))\n2. join()', "bad_args", 1),
    ("self reference", '1. search("a")\n2. calc("$2")\n3. join()', "bad_reference", 2),
    ("later reference", '1. calc("$2")\n2. search("a")\n3. join()', "bad_reference", 1),
    ("missing reference", '1. search("a")\n2. calc("$7 + 1")\n3. join()', "bad_reference", 2),
    ("workflow reference", '1. search("${steps.secret.output}")\n2. join()',
     "bad_reference", 1),
    ("skipped id", '1. search("a")\n3. search("b")\n4. join()', "bad_id", 2),
    ("repeated id", '1. search("a")\n1. search("b")\n2. join()', "bad_id", 2),
    ("zero id", '0. search("a")\n1. join()', "bad_id", 1),
    ("two joins", '1. search("a")\n2. join()\njoin()', "two_joins", 3),
    ("answer that is no action", '1. search("a")\n2. join($5)', "bad_reference", 2),
    ("action after join", '1. search("a")\n2. join()\n3. search("b")', "after_join", 3),
    # no_join is at the line where the plan ends, where join() was due
    ("no join", '1. search("a")\n2. search("b")\n<END_OF_PLAN>', "no_join", 3),
    ("action after end", '1. search("a")\n2. join()\n<END_OF_PLAN>\nok\n3. search("b")',
     "after_end", 5),
    ("empty plan", "join()\n<END_OF_PLAN>", "empty_plan", 1),
    ("nothing at all", "", "empty_plan", None),
    ("garbage", "I think we should search for it.", "garbage", 1),
    ("unbalanced brackets", '1. search(["a")\n2. join()', "garbage", 1),
    ("never closed", '1. search("a"\n2. join()', "unterminated", 1),
    ("trailing text", '1. search("a") and more\n2. join()', "garbage", 1),
]


@pytest.mark.parametrize(("name", "text", "code", "line"), MALFORMED,
                         ids=[m[0] for m in MALFORMED])
def test_malformed_plans_are_typed_problems_with_their_line(
        catalog: ToolCatalog, name: str, text: str, code: str, line: int | None) -> None:
    _, problems, _ = parse(text, catalog)
    assert problems, name
    assert (problems[0].code, problems[0].line) == (code, line), problems


def test_a_cycle_is_named(catalog: ToolCatalog) -> None:
    _, problems, _ = parse('1. calc("$2")\n2. calc("$1")\n3. join()', catalog)
    assert [p.code for p in problems] == ["bad_reference", "cycle"]
    assert "$1 -> $2 -> $1" in problems[-1].message and problems[-1].line == 1


def test_too_many_actions(catalog: ToolCatalog) -> None:
    plan = "".join(f'{i}. search("q{i}")\n' for i in range(1, 5)) + "5. join()"
    actions, problems, _ = parse(plan, catalog, max_actions=3)
    assert len(actions) == 3
    assert (problems[0].code, problems[0].line) == ("too_many_steps", 4)


def test_every_error_of_a_text_is_reported(catalog: ToolCatalog) -> None:
    text = '1. nope()\n2. search(1)\n4. search("x")\nsearch("y")\n5. join()\njoin()'
    _, problems, _ = parse(text, catalog)
    assert [(p.code, p.line) for p in problems] == [
        ("unknown_tool", 1), ("bad_args", 2), ("bad_id", 3), ("garbage", 4), ("two_joins", 6)]


def test_call_arguments_accept_json_and_python_spellings() -> None:
    pos, kw = parse_call_args('"a", 1, -2.5, [true, False, null, None], x={"k": $3}, y=${4}')
    assert pos == ["a", 1, -2.5, [True, False, None, None]]
    assert kw == {"x": {"k": PlanRef(3)}, "y": PlanRef(4)}
    assert parse_call_args("'$1 and \\'$2\\''") == (["$1 and '$2'"], {})


def test_a_repair_may_repeat_started_actions_unchanged_or_continue(catalog: ToolCatalog
                                                                   ) -> None:
    started = {"known_ids": {1, 2}, "first_id": 3,
               "reusable": {1: 'search("a")', 2: 'search( "b" )'}}
    text = '1. search("a")\n2. search("b")\n3. calc("$1")\n4. join()'
    actions, problems, _ = parse(text, catalog, **started)
    assert problems == []
    assert [(a.id, a.reused) for a in actions] == [(1, True), (2, True), (3, False)]
    actions, problems, _ = parse('3. calc("$2")\n4. join()', catalog, **started)
    assert problems == [] and [a.id for a in actions] == [3]
    _, problems, _ = parse('1. search("z")\n2. join()', catalog, **started)
    assert problems[0].code == "bad_id" and "already ran as" in problems[0].message


@pytest.mark.parametrize("join", ["3. join($2)", "join(${2})", "3. JOIN( $2 )"])
def test_a_plan_may_name_its_answer_in_join(catalog: ToolCatalog, join: str) -> None:
    _, problems, joined = parse(f'1. lookup("Rome")\n2. calc("$1 * 2")\n{join}\n', catalog)
    assert problems == [] and [j.answer for j in joined] == [2]
    _, _, plain = parse('1. lookup("Rome")\n2. join()\n', catalog)
    assert [j.answer for j in plain] == [None]


def test_an_answer_may_name_an_earlier_rounds_action(catalog: ToolCatalog) -> None:
    _, problems, joined = parse("3. join($1)", catalog, first_id=3, known_ids={1, 2},
                                allow_empty=True)
    assert problems == [] and joined[0].answer == 1


@pytest.mark.parametrize(("text", "codes"), [
    ("what now\njoin()", ["garbage"]),
    ('1. search(Paris)\n2. join()', ["bad_args"]),
    ('1. search(["a")\n2. join()', ["garbage"]),
    ('1. search("a") and more\n2. join()', ["garbage"]),
    ('1. search("a"\n', ["unterminated", "no_join"]),
    ("join()", ["empty_plan"]),  # truly empty: still an error
    ("", ["empty_plan"]),
])
def test_a_rejected_line_is_one_error_not_also_an_empty_plan(
        catalog: ToolCatalog, text: str, codes: list[str]) -> None:
    _, problems, _ = parse(text, catalog)
    assert [p.code for p in problems] == codes, problems


def test_a_double_dollar_is_a_literal_dollar(catalog: ToolCatalog) -> None:
    text = '1. search("a")\n2. search("costs $$5, not $1; $$$1 each")\n3. join()'
    actions, problems, _ = parse(text, catalog)
    assert not problems, problems
    assert actions[1].deps == (1,)
    args = actions[1].step_args(lambda n: "${steps.p__" + str(n) + ".output}")
    assert args == {"query": "costs $5, not ${steps.p__1.output}; $${steps.p__1.output} each"}


@pytest.mark.parametrize("value", ["$${1}", "$${steps.secret.output}"])
def test_an_escape_cannot_write_a_workflow_reference(catalog: ToolCatalog, value: str) -> None:
    _, problems, _ = parse(f'1. search("{value}")\n2. join()', catalog)
    assert [(p.code, p.line) for p in problems] == [("bad_reference", 1)]
    assert "a literal $ is $$" in problems[0].message


@pytest.mark.parametrize("args", ["-" * 100_000 + "1", "1+" * 30_000 + "1"])
def test_arguments_too_deep_for_python_s_parser_say_so(args: str) -> None:
    with pytest.raises(ArgSyntaxError, match="nested too deeply"):
        parse_call_args(args)


# -- what real models write around and inside a plan ------------------------------------
LENIENT_PLAN = [
    ("prose and a fence around it",
     'Sure! Here is the plan:\n```\n1. lookup("Paris")\n2. lookup("Rome")\n3. join()\n```\n'
     "<END_OF_PLAN>\nThis looks up both cities in parallel."),
    ("a closing remark after join()",
     '1. lookup("Paris")\n2. lookup("Rome")\n3. join()\nThe answer is their sum.'),
    ("a remark between actions",
     '1. lookup("Paris")\nNow the second city:\n2. lookup("Rome")\n3. join()'),
    ("numbered with a parenthesis", '1) lookup("Paris")\n2) lookup("Rome")\n3) join()'),
    ("numbered as Action N:",
     'Action 1: lookup("Paris")\nAction 2: lookup("Rome")\nAction 3: join()'),
    ("numbered as Step N.", 'Step 1. lookup("Paris")\nstep 2: lookup("Rome")\n3. join()'),
    ("a Markdown list in bold with calls in backticks",
     '- **1.** `lookup("Paris")`\n- **2.** `lookup("Rome")`\n- **3.** `join()`'),
    ("typographic quotes", "1. lookup(\u201cParis\u201d)\n2. lookup(city=\u2018Rome\u2019)\n"
                           "3. join()"),
]


@pytest.mark.parametrize(("name", "text"), LENIENT_PLAN, ids=[p[0] for p in LENIENT_PLAN])
@pytest.mark.parametrize("chunk", [None, 3])
def test_what_models_write_around_a_plan_is_read_as_they_mean_it(
        catalog: ToolCatalog, name: str, text: str, chunk: int | None) -> None:
    actions, problems, joins = parse(text, catalog, chunk=chunk)
    assert problems == [], name
    assert [(a.id, a.args) for a in actions] == [(1, {"city": "Paris"}), (2, {"city": "Rome"})]
    assert len(joins) == 1


@pytest.mark.parametrize(("text", "line"), [
    ('search("x")\n1. join()', 1),  # a call without a number
    ('1. search("x")\n2 search("y")\n3. join()', 2),  # a number without its dot
    ('1. search("x")\nStep 2: look up Rome\n3. join()', 2),  # a step written in prose
])
def test_a_line_that_starts_like_an_action_but_is_none_is_still_an_error(
        catalog: ToolCatalog, text: str, line: int) -> None:
    _, problems, _ = parse(text, catalog)
    assert (problems[0].code, problems[0].line) == ("garbage", line), problems


def test_a_text_of_only_prose_names_its_first_line(catalog: ToolCatalog) -> None:
    _, problems, _ = parse("I cannot help with that.\nSorry.", catalog)
    assert [(p.code, p.line) for p in problems] == [("garbage", 1), ("no_join", 2)]
    assert "I cannot help with that." in problems[0].message


def test_typographic_quotes_inside_a_string_are_kept(catalog: ToolCatalog) -> None:
    actions, problems, _ = parse('1. search("the \u201cbest\u201d (one)")\n'
                                 "2. search(\u201cit\u2019s (here)\u201d)\n3. join()", catalog)
    assert problems == []
    assert [a.args["query"] for a in actions] == ["the \u201cbest\u201d (one)",
                                                  "it\u2019s (here)"]


def test_an_f_string_is_a_string_whose_braced_results_are_references(
        catalog: ToolCatalog) -> None:
    text = ('1. lookup("Paris")\n2. search(f"people: {$1}, {{braces}} and {${1}}")\n'
            "3. search(f'first: {$2[0]}')\n4. join()")
    actions, problems, _ = parse(text, catalog)
    assert problems == []
    assert actions[1].deps == (1,) and actions[2].deps == (2,)
    ref = lambda n: "${steps.p__" + str(n) + ".output}"  # noqa: E731
    assert actions[1].step_args(ref) == {
        "query": "people: ${steps.p__1.output}, {braces} and ${steps.p__1.output}"}
    assert actions[2].step_args(ref) == {"query": "first: ${steps.p__2.output[0]}"}
    _, problems, _ = parse('1. search(f"in {city}")\n2. join()', catalog)
    assert problems[0].code == "bad_args" and "'{city}' is not a result" in problems[0].message


def test_a_path_picks_a_part_of_a_result(catalog: ToolCatalog) -> None:
    text = ('1. search("a")\n2. pair($1["n"], $1.m)\n3. total($1["values"][-1])\n'
            '4. calc("${1.n} + $1[\'m\'] * $1[0]")\n5. describe({"k": "$1.n"})\n6. join()')
    actions, problems, _ = parse(text, catalog)
    assert problems == []
    assert actions[1].args == {"a": PlanRef(1, ("n",)), "b": PlanRef(1, ("m",))}
    assert actions[2].args == {"values": PlanRef(1, ("values", -1))}
    ref = lambda n: "${steps.p__" + str(n) + ".output}"  # noqa: E731
    assert actions[2].step_args(ref) == {"values": "${steps.p__1.output.values[-1]}"}
    assert actions[3].step_args(ref) == {
        "expression": "${steps.p__1.output.n} + ${steps.p__1.output.m} * ${steps.p__1.output[0]}"}
    assert actions[4].step_args(ref) == {"item": {"k": "${steps.p__1.output.n}"}}


@pytest.mark.parametrize(("args", "message"), [
    ("$1[x]", "an index must be a whole number or a quoted key"),
    ("$1[1:2]", "an index must be a whole number or a quoted key"),
    ('$1["a}b"]', "cannot be used in a path"),
    ("abs($1)", "is not a literal"),
])
def test_a_path_that_a_step_reference_cannot_hold_is_bad_args(catalog: ToolCatalog, args: str,
                                                                message: str) -> None:
    _, problems, _ = parse(f'1. search("a")\n2. total({args})\n3. join()', catalog)
    assert problems[0].code == "bad_args" and message in problems[0].message, problems


def test_a_long_plan_parses_in_linear_time(catalog: ToolCatalog) -> None:
    import time

    n = 40_000
    text = "".join(f'{i}. search("query number {i} about something")\n'
                   for i in range(1, n + 1)) + f"{n + 1}. join()\n"
    started = time.perf_counter()
    actions, problems, _ = parse(text, catalog)
    # whole-text feeding re-sliced and re-searched the rest of the text for every line:
    # 14 s on a developer's machine, under 2 s once read line by line in place
    assert time.perf_counter() - started < 7
    assert problems == [] and len(actions) == n


@pytest.mark.parametrize(("args", "shown"), [
    # an overflowing literal is infinite: JSON (the trace, the tool's input) has no such
    # number, and it reached the tool
    ("1e999", "holds inf, which is not a finite number"),
    ('{"x": [-1e999]}', "holds -inf, which is not a finite number"),
    # Python's parser lets a repeated keyword through: the last one silently won
    ('query="a", query="b"', "argument 'query' is given twice"),
])
def test_arguments_json_cannot_hold_or_given_twice_are_bad_args(
        catalog: ToolCatalog, args: str, shown: str) -> None:
    open_catalog = ToolCatalog(catalog.tools, open=True)
    actions, problems, _ = parse(f"1. anything({args})\n2. join()\n", open_catalog)
    assert actions == []
    (problem,) = problems
    assert problem.code == "bad_args" and shown in problem.message and problem.line == 1


@pytest.mark.parametrize("line, digits", [
    ("1. calc($99999999999)", "99999999999"),
    ("1. calc(${99999999999})", "99999999999"),
    ("1. pair($1, $99999999999[0])", "99999999999"),
    ('1. calc(f"in {$99999999999}")', "99999999999"),
    ('1. calc("$99999999999 + 1")', "99999999999"),
    ('1. calc("${99999999999}")', "99999999999"),
])
def test_a_reference_of_ten_or_more_digits_names_no_action(
        catalog: ToolCatalog, line: str, digits: str) -> None:
    # the parser read at most 9 digits after `$`: the rest was a syntax error
    _, problems, _ = parse(f"{line}\n2. join()\n", catalog)
    assert [(p.code, p.message) for p in problems] == [
        ("bad_reference", f"action 1: no such action ${digits}")]


@pytest.mark.parametrize("join", ["join($9999999999)", "join(${9999999999})"])
def test_a_join_answer_of_ten_or_more_digits_names_no_action(catalog: ToolCatalog,
                                                             join: str) -> None:
    _, problems, _ = parse(f'1. search("x")\n2. {join}\n', catalog)
    assert [(p.code, p.message, p.line) for p in problems] == [
        ("bad_reference", "the answer join($9999999999): no such action $9999999999", 2)]


@pytest.mark.parametrize(("join", "shown"), [
    ("join($0)", "0"), ("join(${0})", "0"), ("join($-1)", "-1"), ("join(${-1})", "-1"),
    ("join($7)", "7"),
])
def test_a_join_answer_no_action_has_is_no_such_action(catalog: ToolCatalog, join: str,
                                                       shown: str) -> None:
    # join($-1) was read as an action calling a tool `join`, with a syntax error
    _, problems, _ = parse(f'1. search("x")\n2. {join}\n', catalog)
    assert [(p.code, p.message, p.line) for p in problems] == [
        ("bad_reference", f"the answer join(${shown}): no such action ${shown}", 2)]


@pytest.mark.parametrize(("call", "shown"), [
    ("search($0)", "0"), ("search(${0})", "0"), ('search("in ${0}")', "0"),
    ("search($-1)", "-1"), ("search(${-1})", "-1"), ('search("$-1")', "-1"),
    ('search("in ${-1}")', "-1"), ('search(f"in {$-1}")', "-1"), ("pair($-1[0], 1)", "-1"),
])
def test_a_reference_no_action_can_have_is_no_such_action(catalog: ToolCatalog, call: str,
                                                          shown: str) -> None:
    # $-1 was "cannot parse the arguments '$-1': invalid syntax"; $0 "refers to $0, but
    # there is no action 0"
    _, problems, _ = parse(f'1. search("x")\n2. {call}\n3. join()\n', catalog)
    assert [(p.code, p.message) for p in problems] == [
        ("bad_reference", f"action 2: no such action ${shown}")]


def test_a_reference_of_thousands_of_digits_is_a_problem_not_a_crash(
        catalog: ToolCatalog) -> None:
    # int() refuses more than 4300 digits: the parser raised ValueError
    digits = "9" * 5000
    for line in (f'1. calc("${digits}")', f"1. calc(${digits})", f"2. join(${digits})"):
        _, problems, _ = parse(f'{line}\n', catalog)
        assert "no such action $99999999999999999999...99999999" in problems[0].message


@pytest.mark.parametrize(("args", "message"), [
    # the name a $N becomes inside the parser was shown: `__ponder_ref_1___000`
    ("$1_000", "`$1_000` is not a reference: $N is a number only"),
    ("$1abc", "`$1abc` is not a reference: $N is a number only"),
    # and written by the plan, that name was read as $3
    ("__ponder_ref_3__", "`__ponder_ref_3__` is not a literal"),
    ("[1, __ponder_ref_3__]", "`__ponder_ref_3__` is not a literal"),
])
def test_a_reference_joined_to_a_name_is_named_as_written(args: str, message: str) -> None:
    with pytest.raises(ArgSyntaxError) as info:
        parse_call_args(args)
    assert str(info.value).startswith(message), info.value
    assert "__ponder_ref_" not in str(info.value) or "__ponder_ref_3__" in args


def test_the_parser_s_own_name_in_a_string_is_text() -> None:
    assert parse_call_args('"__ponder_ref_3__", x="$1_000"') == (
        ["__ponder_ref_3__"], {"x": "$1_000"})


@pytest.mark.parametrize("digits", ["9999999999", "9" * 5000])
def test_an_action_id_of_ten_or_more_digits_is_a_bad_id(catalog: ToolCatalog,
                                                        digits: str) -> None:
    # `9999999999. search("a")` was "expected `N. tool(arguments)` ..., got ...": the
    # numbering read at most 9 digits
    actions, problems, joins = parse(f'{digits}. search("a")\n1. search("b")\n2. join()\n',
                                     catalog)
    shown = digits if len(digits) <= 40 else digits[:20] + "..." + digits[-8:]
    assert [(p.code, p.message, p.line) for p in problems] == [
        ("bad_id", f"action id {shown} skips numbers: expected 1", 1)]
    assert [a.id for a in actions] == [1] and len(joins) == 1


@pytest.mark.parametrize(("args", "said"), [
    # Python's words: "Exceeds the limit (4300 digits) for integer string conversion: ...
    # use sys.set_int_max_str_digits() to increase the limit"
    ("9" * 5000, "a number of 5000 digits is too long to read"),
    ("x=-" + "1" * 4400, "a number of 4400 digits is too long to read"),
    # "source code string cannot contain null bytes"
    ('"a\x00b"', "a NUL character (\\x00) cannot be part of a call"),
    ('"' + "9" * 5000 + '" x', "invalid syntax"),  # a long string is not the problem
])
def test_arguments_python_cannot_read_are_named_in_a_plan_s_words(args: str, said: str) -> None:
    with pytest.raises(ArgSyntaxError) as info:
        parse_call_args(args)
    assert str(info.value).startswith("cannot parse the arguments ")
    assert str(info.value).split("': ", 1)[1].startswith(said), info.value
    assert "sys." not in str(info.value) and "source code" not in str(info.value)
