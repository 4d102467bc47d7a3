"""Issue #4's list of malformed plans, each written in the text and the JSON format, run
through a plan step: every one is a recorded ``plan_error`` whose message names the
line and the offending text, the planner is asked again with it, and when the repairs
run out the step fails with the raw plan kept. The results of the actions that ran
before the bad line are never lost."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.store import StoreHook, TraceStore, open_store
from planners.testing import ScriptedLLM
from tests.store.conftest import pg_server, pg_url, store_url  # noqa: F401  (each backend)

pytestmark = pytest.mark.anyio
PlanWorkflow = Callable[..., Workflow]
Recorder = Any

JOINER = "Actions and observations"
FINISH = '{"action": "finish", "answer": "ok"}'
REPAIRED = {"text": '1. search("a")\n2. join()\n<END_OF_PLAN>',
            "json": '{"actions": [{"id": 1, "tool": "search", "args": {"query": "a"}}]}'}


def act(id_: int, tool: str = "search", **args: Any) -> dict[str, Any]:
    return {"id": id_, "tool": tool, "args": args or {"query": "a"}}


def js(*actions: dict[str, Any], after: str = "") -> str:
    """A JSON plan, one action a line (the object opens on line 1, action N on N + 1)."""
    return ('{"actions": [\n' + ",\n".join(json.dumps(a) for a in actions) + "\n]}"
            + after)


# (name, text plan, JSON plan, code, line of the text plan's problem, of the JSON one's,
#  whether action 1 (search "a") was valid and ran before the problem). A JSON plan
#  whose object never closes (its "no join()", most garbage) is bad_json.
CASES: list[tuple[str, str, str, str, int | None, int | None, bool]] = [
    ("unknown tool", '1. search("a")\n2. frobnicate("b")\n3. join()',
     js(act(1), act(2, "frobnicate")), "unknown_tool", 2, 3, True),
    ("too few arguments", '1. search("a")\n2. lookup()\n3. join()',
     js(act(1), {"id": 2, "tool": "lookup", "args": {}}), "bad_args", 2, 3, True),
    ("too many arguments", '1. search("a")\n2. search("b", "c")\n3. join()',
     js(act(1), {"id": 2, "tool": "search", "args": ["b", "c"]}), "bad_args", 2, 3, True),
    ("wrong type", '1. search("a")\n2. calc(5)\n3. join()',
     js(act(1), act(2, "calc", expression=5)), "bad_args", 2, 3, True),
    ("self reference", '1. search("a")\n2. calc("$2")\n3. join()',
     js(act(1), act(2, "calc", expression="$2")), "bad_reference", 2, 3, True),
    ("later reference", '1. search("a")\n2. calc("$3")\n3. search("b")\n4. join()',
     js(act(1), act(2, "calc", expression="$3"), act(3)), "bad_reference", 2, 3, True),
    ("missing reference", '1. search("a")\n2. calc("$7 + 1")\n3. join()',
     js(act(1), act(2, "calc", expression="$7 + 1")), "bad_reference", 2, 3, True),
    ("skipped id", '1. search("a")\n3. search("b")\n4. join()',
     js(act(1), act(3)), "bad_id", 2, 3, True),
    ("repeated id", '1. search("a")\n1. search("b")\n2. join()',
     js(act(1), act(1, query="b")), "bad_id", 2, 3, True),
    ("negative id", '1. search("a")\n-1. search("b")\n2. join()',
     js(act(1), act(-1)), "bad_id", 2, 3, True),
    ("two joins", '1. search("a")\n2. join()\n3. join()',
     js(act(1), {"id": 2, "tool": "join", "args": {}}, {"id": 3, "tool": "join", "args": {}}),
     "two_joins", 3, 4, True),
    ("no join", '1. search("a")\n2. search("b")\n<END_OF_PLAN>',
     '{"actions": [\n' + json.dumps(act(1)) + ",\n" + json.dumps(act(2)),
     "no_join", 3, 3, True),
    ("text after the end", '1. search("a")\n2. join()\n<END_OF_PLAN>\n3. search("b")',
     js(act(1), after='\n{"actions": [' + json.dumps(act(2)) + "]}"), "after_end", 4, 4, True),
    ("empty plan", "join()\n<END_OF_PLAN>", '{"actions": []}', "empty_plan", 1, 1, False),
    ("cycle", '1. calc("$2")\n2. calc("$1")\n3. join()',
     js(act(1, "calc", expression="$2"), act(2, "calc", expression="$1")),
     "bad_reference", 1, 2, False),
    ("garbage", "\x00\x01 }{ )( $$$ ?", "\x00\x01 }{ )( $$$ ?", "garbage", 1, 1, False),
    ("prose only", "I would look it up on the web.", "I would look it up on the web.",
     "garbage", 1, 1, False),
]
IDS = [c[0] for c in CASES]


def _readable(message: str) -> None:
    assert "Traceback" not in message and "object at 0x" not in message, message
    assert "Error(" not in message and "\\x00" not in message.replace("'\\x00", ""), message


def _code(code: str, fmt: str, plan: str) -> str:
    opened = plan.find("{")
    unclosed = opened != -1 and plan.count("{", opened) > plan.count("}", opened)
    return "bad_json" if fmt == "json" and unclosed else code


def _kept(raw: str | None, plan: str, line: int | None) -> None:
    """The raw plan is kept as far as the model wrote it: the planner stops the stream at
    the first problem, so what follows the bad line was never generated."""
    assert raw is not None and plan.startswith(raw)
    if line is not None:
        assert plan.splitlines()[line - 1] in raw


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize(("name", "text", "js_plan", "code", "line", "js_line", "ran"), CASES,
                         ids=IDS)
async def test_a_malformed_plan_is_recorded_and_asked_again(
        plan_workflow: PlanWorkflow, recorder: Recorder, fmt: str, name: str, text: str,
        js_plan: str, code: str, line: int | None, js_line: int | None, ran: bool) -> None:
    plan, where = (text, line) if fmt == "text" else (js_plan, js_line)
    code = _code(code, fmt, plan)
    llm = ScriptedLLM([(JOINER, FINISH), ("rejected", REPAIRED[fmt]), ("Question", plan)])
    result = await plan_workflow(llm, format=fmt).run(hooks=[recorder])
    assert result.ok, (name, result.error)
    error = recorder.of("plan_error")[0]
    assert (error.code, error.line, error.will_retry) == (code, where, True)
    _kept(error.raw, plan, where)
    _readable(error.error)
    assert error.error.startswith(f"line {where}: " if where else "the plan")
    # the repair prompt quotes the error, so the model can mend it
    assert error.error in llm.prompts("rejected")[0]
    if ran:
        assert recorder.first("step_succeeded", "p__1").output == "result for a"


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize(("name", "text", "js_plan", "code", "line", "js_line", "ran"), CASES,
                         ids=IDS)
async def test_when_repairs_run_out_the_step_fails_readably_keeping_results(
        plan_workflow: PlanWorkflow, recorder: Recorder, fmt: str, name: str, text: str,
        js_plan: str, code: str, line: int | None, js_line: int | None, ran: bool) -> None:
    plan = text if fmt == "text" else js_plan
    code = _code(code, fmt, plan)
    llm = ScriptedLLM([(JOINER, FINISH), ("Question", plan)])
    result = await plan_workflow(llm, format=fmt, max_plan_repairs=1).run(hooks=[recorder])
    assert result.status == "failed", name
    errors = recorder.of("plan_error")
    assert [(e.code, e.will_retry) for e in errors] == [(code, True), (code, False)]
    failed = recorder.first("step_failed", "p")
    assert failed.error_type == "PlanFailed"
    _kept(failed.raw, plan, line if fmt == "text" else js_line)
    assert "rejected 2 times (max_plan_repairs=1)" in failed.error
    _readable(failed.error)
    assert len(llm.prompts("Question")) == 2
    if ran:  # the valid first action ran once, and its result is kept
        assert [e.output for e in recorder.of("step_succeeded")
                if e.step_id == "p__1"] == ["result for a"]


@pytest.mark.parametrize(("fmt", "plan", "message"), [
    ("text", "join()", "line 1: the plan has no actions before join()"),
    # a JSON plan writes no join(): the message named one
    ("json", '{"actions": []}', "line 1: the plan's \"actions\" list is empty"),
    ("json", '{"actions": [\n{"id": 1, "tool": "join", "args": {}}\n]}',
     "line 2: the plan has no actions before join()"),
])
async def test_an_empty_plan_is_named_in_its_format_s_words(
        plan_workflow: PlanWorkflow, recorder: Recorder, fmt: str, plan: str,
        message: str) -> None:
    llm = ScriptedLLM([(JOINER, FINISH), ("Question", plan)])
    result = await plan_workflow(llm, format=fmt, max_plan_repairs=0).run(hooks=[recorder])
    assert result.status == "failed"
    assert [e.error for e in recorder.of("plan_error")] == [message]


@pytest.fixture
async def trace_store(store_url: str) -> AsyncIterator[TraceStore]:  # noqa: F811
    async with await open_store(store_url) as opened:
        yield opened


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_the_trace_keeps_the_plan_error_its_raw_plan_and_the_results(
        plan_workflow: PlanWorkflow, trace_store: TraceStore, fmt: str) -> None:
    """On every store backend: the stored run shows why each try was rejected, with the
    model's text, and the results of the actions that ran."""
    name, text, js_plan, code, line, js_line, _ = CASES[0]  # an unknown tool on action 2
    plan = text if fmt == "text" else js_plan
    llm = ScriptedLLM([(JOINER, FINISH), ("Question", plan)])
    result = await plan_workflow(llm, format=fmt, max_plan_repairs=1).run(
        hooks=[StoreHook(trace_store)])
    assert result.status == "failed", name
    stored = await trace_store.events(result.run_id)
    errors: list[Any] = [e for e in stored if e.kind == "plan_error"]
    assert [(e.code, e.line, e.will_retry) for e in errors] == [
        (code, line if fmt == "text" else js_line, True),
        (code, line if fmt == "text" else js_line, False)]
    assert all(e.raw is not None and plan.startswith(e.raw) for e in errors)
    failed: Any = next(e for e in stored if e.kind == "step_failed"
                       and getattr(e, "step_id", None) == "p")
    assert "frobnicate" in failed.error and failed.raw is not None
    kept = [getattr(e, "output", None) for e in stored
            if e.kind == "step_succeeded" and getattr(e, "step_id", None) == "p__1"]
    assert kept == ["result for a"]
