"""A run killed while a plan step is in flight, resumed: the plan ends with the answer of
an uninterrupted run, on every store backend, and what its interrupted attempt had
finished is not done again: the planner's and joiner's answers recorded (``plan_call``)
are taken instead of asking again, and an action the same as one that had succeeded
takes its output (``meta.reused_from``)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator import Workflow
from orchestrator.runtime.durable import recorded_children, resume
from orchestrator.runtime.engine import compile_graph, execute
from orchestrator.runtime.registry import Registry
from orchestrator.spec.loader import load_yaml
from orchestrator.store import MemoryStore, RunFilter, StoreHook, TraceStore, open_store
from planners.testing import ScriptedLLM
from tests.store.conftest import pg_server, pg_url, store_url  # noqa: F401  (each backend)

pytestmark = pytest.mark.anyio

PLAN = """Thought: two look-ups, then a sum
1. count("Paris")
2. count("Rome")
3. calc("$1 + $2")
4. join()
<END_OF_PLAN>"""
JOINER = ("Actions and observations", "Finish($3)")


@pytest.fixture
async def trace_store(store_url: str) -> AsyncIterator[TraceStore]:  # noqa: F811
    """An opened, empty store of each backend (memory, SQLite, PostgreSQL)."""
    async with await open_store(store_url) as opened:
        yield opened


def _workflow(llm: ScriptedLLM, calls: Counter[str],
              plan: dict[str, Any] | None = None) -> Workflow:
    """One plan step (``plan``; default: LLMCompiler ``p``) with a tool that counts its
    calls by city."""
    def count(city: str) -> int:
        """A number about a city; counts its calls."""
        calls[city] += 1
        return len(city) * 100

    step = plan or {"id": "p", "kind": "plan", "goal": "the question",
                    "tools": ["count", "calc"]}
    doc = {"name": "resumed", "models": {"default": {"backend": "scripted"}},
           "steps": [step], "outputs": {"answer": f"${{steps.{step['id']}.output}}"}}
    wf = Workflow.from_yaml_text(yaml.safe_dump(doc))
    wf.register_backend("scripted", llm.factory)
    wf.register_tool(count, "count")
    return wf


async def _cut_mid_plan(store: TraceStore) -> tuple[list[Any], Any]:
    """The events of a run cut once actions 1 to 3 had succeeded, the joiner not yet
    asked (the plan step in flight), and the uninterrupted run's result."""
    whole = await _workflow(ScriptedLLM([JOINER, ("Question", PLAN)]), Counter()).run(
        hooks=[StoreHook(store)])
    assert whole.ok, whole.error
    events = await store.events(whole.run_id)
    cut = next(e.seq for e in events if e.kind == "step_succeeded" and e.step_id == "p__3")
    return [e for e in events if e.seq <= cut], whole


async def test_a_run_killed_mid_plan_resumes_to_the_same_answer(
        trace_store: TraceStore) -> None:
    kept, whole = await _cut_mid_plan(trace_store)
    assert not any(e.kind == "step_succeeded" and e.step_id == "p" for e in kept)
    llm = ScriptedLLM([JOINER, ("Question", PLAN)])
    resumed = await resume(kept, registry=_workflow(llm, Counter()).registry)
    assert resumed.ok, resumed.error
    assert resumed.run_id == whole.run_id and resumed.output == whole.output == {"answer": 900}
    steps = {s.id: s for s in resumed.steps}
    assert steps["p"].status == "succeeded", steps["p"]
    # the plan step's next attempt takes the recorded plan: the planner is not asked
    # again, its actions take the outputs they had (under ids of the new attempt)
    assert not llm.prompts("Number new actions")
    assert len(llm.prompts("Actions and observations")) == 1  # not recorded: asked
    reused = {sid: s.meta.get("reused_from") for sid, s in steps.items() if sid.startswith("p__a2_")}
    assert reused == {"p__a2_1": "p__1", "p__a2_2": "p__2", "p__a2_3": "p__3"}
    # the tokens of the plan recorded count once: as many as the uninterrupted run's
    assert resumed.usage == whole.usage


async def test_a_resumed_plan_does_not_run_its_finished_actions_again(
        trace_store: TraceStore) -> None:
    kept, _ = await _cut_mid_plan(trace_store)
    calls: Counter[str] = Counter()
    llm = ScriptedLLM([JOINER, ("Question", PLAN)])
    resumed = await resume(kept, registry=_workflow(llm, calls).registry)
    assert resumed.ok, resumed.error
    assert calls == Counter()


async def test_a_plan_whose_answer_was_not_recorded_is_asked_again(
        trace_store: TraceStore) -> None:
    """Cut before the planner's answer was recorded (its first actions, started while the
    plan streamed, had finished): the planner is asked again; the actions of the same
    plan that had succeeded still take their outputs."""
    whole = await _workflow(ScriptedLLM([JOINER, ("Question", PLAN)]), Counter()).run(
        hooks=[StoreHook(trace_store)])
    events = await trace_store.events(whole.run_id)
    cut = max(e.seq for e in events
              if e.kind == "step_succeeded" and e.step_id in ("p__1", "p__2"))
    kept = [e for e in events if e.seq <= cut and e.kind != "plan_call"]
    calls: Counter[str] = Counter()
    llm = ScriptedLLM([JOINER, ("Question", PLAN)])
    resumed = await resume(kept, registry=_workflow(llm, calls).registry)
    assert resumed.ok, resumed.error
    assert resumed.output == whole.output
    assert len(llm.prompts("Number new actions")) == 1
    assert calls == Counter()


async def test_an_action_whose_input_changed_runs_again(trace_store: TraceStore) -> None:
    """Asked again, the planner plans otherwise: an action of another definition runs,
    and so does one of the same definition that reads it (its input differs)."""
    whole = await _workflow(ScriptedLLM([JOINER, ("Question", PLAN)]), Counter()).run(
        hooks=[StoreHook(trace_store)])
    events = await trace_store.events(whole.run_id)
    plan_call = next(e.seq for e in events if e.kind == "plan_call")
    cut = next(e.seq for e in events if e.kind == "step_succeeded" and e.step_id == "p__3")
    kept = [e for e in events if e.seq <= cut and e.seq != plan_call]
    calls: Counter[str] = Counter()
    other = PLAN.replace('count("Paris")', 'count("Oslo")')
    resumed = await resume(kept, registry=_workflow(
        ScriptedLLM([JOINER, ("Question", other)]), calls).registry)
    assert resumed.ok, resumed.error
    assert calls == Counter({"Oslo": 1})  # Rome's look-up is the same: taken
    steps = {s.id: s for s in resumed.steps}
    assert steps["p__a2_2"].meta.get("reused_from") == "p__2"
    assert "reused_from" not in steps["p__a2_3"].meta  # $1 + $2 with another $1
    assert resumed.output == {"answer": 400 + 400}


REPLAN = """Thought: one look-up
1. count("Paris")
2. join()
<END_OF_PLAN>"""
REPLAN_2 = """Thought: the other
2. count("Rome")
3. calc("$1 + $2")
4. join()
<END_OF_PLAN>"""


async def test_a_recorded_joiner_decision_and_its_replan_are_taken(
        trace_store: TraceStore) -> None:
    """Cut in the second round: the first round's plan, its action and the joiner's
    replan are taken from the recording; the second plan (recorded) too."""
    def script() -> ScriptedLLM:
        return ScriptedLLM([
            ("Actions and observations[\\s\\S]*count\\(.Rome", "Finish($3)"),
            ("another city", REPLAN_2),
            ("Actions and observations", "Replan(need another city)"),
            ("Question", REPLAN)])
    whole = await _workflow(script(), Counter()).run(hooks=[StoreHook(trace_store)])
    assert whole.ok and whole.output == {"answer": 900}, whole.error
    events = await trace_store.events(whole.run_id)
    cut = next(e.seq for e in events if e.kind == "step_succeeded" and e.step_id == "p__3")
    kept = [e for e in events if e.seq <= cut]
    calls: Counter[str] = Counter()
    llm = script()
    resumed = await resume(kept, registry=_workflow(llm, calls).registry)
    assert resumed.ok, resumed.error
    assert resumed.output == whole.output
    assert calls == Counter()
    assert not llm.prompts("Number new actions")
    # only the last joiner call, never recorded, is asked
    assert len(llm.prompts("Actions and observations")) == 1
    p = next(s for s in resumed.steps if s.id == "p")
    assert [d["action"] for d in p.meta["decisions"]] == ["replan", "finish"]
    assert resumed.usage == whole.usage


def _agot(llm: ScriptedLLM) -> Workflow:
    doc = {"name": "thoughts", "models": {"default": {"backend": "scripted"}},
           "steps": [{"id": "g", "kind": "plan", "planner": "agot", "goal": "the question",
                      "options": {"max_layers": 2}}],
           "outputs": {"answer": "${steps.g.output}"}}
    wf = Workflow.from_yaml_text(yaml.safe_dump(doc))
    wf.register_backend("scripted", llm.factory)
    return wf


def _thoughts() -> ScriptedLLM:
    def layer(*thoughts: dict[str, Any]) -> str:
        return json.dumps({"strategy": "s", "thoughts": list(thoughts)})

    return ScriptedLLM([
        ("Layer 1 of 2", layer({"thought": "alpha"}, {"thought": "beta"})),
        ("Layer 2 of 2", layer({"thought": "both", "parents": [1, 2], "final": True})),
        ("Is this thought complex", '{"complex": false}'),
        ("Thought: both[\\s\\S]*Answer this", "alpha and beta"),
        ("Thought: alpha[\\s\\S]*Answer this", "a"),
        ("Thought: beta[\\s\\S]*Answer this", "b"),
    ])


async def test_a_resumed_graph_of_thoughts_takes_its_recorded_layers_and_thoughts(
        trace_store: TraceStore) -> None:
    whole = await _agot(_thoughts()).run(hooks=[StoreHook(trace_store)])
    assert whole.ok and whole.output == {"answer": "alpha and beta"}, whole.error
    events = await trace_store.events(whole.run_id)
    cut = max(e.seq for e in events
              if e.kind == "step_succeeded" and e.step_id in ("g__t1", "g__t2"))
    kept = [e for e in events if e.seq <= cut]
    assert not any(e.kind == "step_succeeded" and e.step_id == "g" for e in kept)
    llm = _thoughts()
    resumed = await resume(kept, registry=_agot(llm).registry)
    assert resumed.ok, resumed.error
    assert resumed.output == whole.output
    assert not llm.prompts("Layer 1 of 2")
    assert not llm.prompts("Thought: alpha[\\s\\S]*Answer this")
    assert not llm.prompts("Thought: beta[\\s\\S]*Answer this")
    steps = {s.id: s for s in resumed.steps}
    assert steps["g__a2_t1"].meta.get("reused_from") == "g__t1"
    assert steps["g__a2_t2"].meta.get("reused_from") == "g__t2"
    assert resumed.usage == whole.usage


async def test_a_resumed_plan_cut_again_resumes_without_asking_again(
        trace_store: TraceStore) -> None:
    """The resumed attempt records the answers and outputs it took as its own: cut in
    turn, the attempt after it takes them too."""
    kept, whole = await _cut_mid_plan(trace_store)
    added: list[Any] = []

    async def collect(events: Any) -> None:
        added.extend(events)

    await resume(kept, registry=_workflow(ScriptedLLM([JOINER, ("Question", PLAN)]),
                                          Counter()).registry, hooks=[collect])
    cut = next(e.seq for e in added if e.kind == "step_succeeded" and e.step_id == "p__a2_3")
    again = [*kept, *(e for e in added if e.seq <= cut)]
    calls: Counter[str] = Counter()
    llm = ScriptedLLM([JOINER, ("Question", PLAN)])
    resumed = await resume(again, registry=_workflow(llm, calls).registry)
    assert resumed.ok, resumed.error
    assert resumed.output == whole.output
    assert calls == Counter() and not llm.prompts("Number new actions")
    steps = {s.id: s for s in resumed.steps}
    assert steps["p__a3_1"].meta.get("reused_from") == "p__a2_1"
    assert resumed.usage == whole.usage


async def test_a_resumed_static_plan_takes_the_outputs_of_its_finished_steps(
        trace_store: TraceStore) -> None:
    calls: Counter[str] = Counter()
    plan = {"id": "s", "kind": "plan", "planner": "static", "goal": "sum",
            "options": {"output": "total", "steps": [
                {"id": "a", "kind": "tool", "tool": "count", "args": {"city": "Paris"}},
                {"id": "b", "kind": "tool", "tool": "count", "args": {"city": "Rome"}},
                {"id": "total", "kind": "tool", "tool": "calc",
                 "args": {"expression": "${steps.a.output} + ${steps.b.output}"}}]}}

    def static(counted: Counter[str]) -> Workflow:
        return _workflow(ScriptedLLM([]), counted, plan)

    whole = await static(Counter()).run(hooks=[StoreHook(trace_store)])
    assert whole.ok and whole.output == {"answer": 900}, whole.error
    events = await trace_store.events(whole.run_id)
    cut = max(e.seq for e in events
              if e.kind == "step_succeeded" and e.step_id in ("s__a", "s__b"))
    resumed = await resume([e for e in events if e.seq <= cut], registry=static(calls).registry)
    assert resumed.ok, resumed.error
    assert resumed.output == whole.output
    assert calls == Counter()
    assert {s.id: s.meta.get("reused_from") for s in resumed.steps
            if s.id in ("s__a2_a", "s__a2_b")} == {"s__a2_a": "s__a", "s__a2_b": "s__b"}


def _nested(counted: Counter[str]) -> Workflow:
    """A static plan ``s`` whose step ``inner`` is a static plan of two look-ups."""
    inner = {"id": "inner", "kind": "plan", "planner": "static", "goal": "inner", "after": ["a"],
             "options": {"output": "y", "steps": [
                 {"id": "x", "kind": "tool", "tool": "count", "args": {"city": "Rome"}},
                 {"id": "y", "kind": "tool", "tool": "count", "args": {"city": "Oslo"},
                  "after": ["x"]}]}}
    plan = {"id": "s", "kind": "plan", "planner": "static", "goal": "outer",
            "options": {"output": "inner", "steps": [
                {"id": "a", "kind": "tool", "tool": "count", "args": {"city": "Paris"}},
                inner]}}
    return _workflow(ScriptedLLM([]), counted, plan)


async def test_a_plan_inside_a_plan_in_flight_takes_its_recorded_actions(
        trace_store: TraceStore) -> None:
    """Cut while the inner plan was in flight (its first look-up done): the outer plan's
    next attempt adds it under a new id (``s__a2_inner``), which goes on from the cut
    one: its finished look-up is not done again."""
    whole = await _nested(Counter()).run(hooks=[StoreHook(trace_store)])
    assert whole.ok and whole.output == {"answer": 400}, whole.error
    events = await trace_store.events(whole.run_id)
    cut = next(e.seq for e in events
               if e.kind == "step_succeeded" and e.step_id == "s__inner__x")
    kept = [e for e in events if e.seq <= cut]
    assert not any(e.kind == "step_succeeded" and e.step_id == "s__inner" for e in kept)
    calls: Counter[str] = Counter()
    resumed = await resume(kept, registry=_nested(calls).registry)
    assert resumed.ok, resumed.error
    assert resumed.output == whole.output
    assert calls == Counter({"Oslo": 1})
    steps = {s.id: s for s in resumed.steps}
    assert steps["s__a2_a"].meta.get("reused_from") == "s__a"
    assert steps["s__a2_inner__x"].meta.get("reused_from") == "s__inner__x"


def _complex_thought() -> ScriptedLLM:
    def layer(*thoughts: dict[str, Any]) -> str:
        return json.dumps({"strategy": "s", "thoughts": list(thoughts)})

    return ScriptedLLM([
        ("Layer 1 of 2", layer({"thought": "hard one", "final": True})),
        ("Layer 1 of 1", layer({"thought": "part x"}, {"thought": "part y", "parents": [1]})),
        ("Thought: hard one[\\s\\S]*Is this thought complex", '{"complex": true}'),
        ("Thought: part x[\\s\\S]*Answer this", "x done"),
        ("Thought: part y[\\s\\S]*Answer this", "y done"),
        ("final answer to the question", "nested final"),
    ])


async def test_a_complex_thought_in_flight_takes_its_recorded_layer_and_thoughts(
        trace_store: TraceStore) -> None:
    """Cut while a complex thought's nested graph (a plan inside the plan) was in flight,
    its first thought answered: resumed, the nested graph (``g__a2_t1``) takes its
    recorded layer and that thought's answer instead of asking again."""
    whole = await _agot(_complex_thought()).run(hooks=[StoreHook(trace_store)])
    assert whole.ok and whole.output == {"answer": "nested final"}, whole.error
    events = await trace_store.events(whole.run_id)
    cut = next(e.seq for e in events if e.kind == "step_succeeded" and e.step_id == "g__t1__t1")
    kept = [e for e in events if e.seq <= cut]
    llm = _complex_thought()
    resumed = await resume(kept, registry=_agot(llm).registry)
    assert resumed.ok, resumed.error
    assert resumed.output == whole.output
    assert not llm.prompts("Layer 1 of 2") and not llm.prompts("Is this thought complex")
    assert not llm.prompts("Layer 1 of 1")
    assert not llm.prompts("Thought: part x[\\s\\S]*Answer this")
    assert len(llm.prompts("Thought: part y[\\s\\S]*Answer this")) == 1
    steps = {s.id: s for s in resumed.steps}
    assert steps["g__a2_t1__t1"].meta.get("reused_from") == "g__t1__t1"
    assert resumed.usage == whole.usage


LEAF = """\
name: leaf
inputs:
  x: {type: integer}
steps:
  - {id: l1, kind: tool, tool: count, args: {city: "l1-${inputs.x}"}}
  - {id: l2, kind: tool, tool: count, args: {city: "l2-${steps.l1.output}"}}
outputs:
  y: ${steps.l2.output}
"""

SUB_PLAN = """\
name: main
steps:
  - id: s
    kind: plan
    planner: static
    goal: go
    options:
      output: w
      steps:
        - {id: a, kind: tool, tool: count, args: {city: Paris}}
        - {id: w, kind: workflow, workflow: leaf.yaml, inputs: {x: "${steps.a.output}"}}
outputs:
  s: ${steps.s.output}
"""


async def test_a_plans_sub_workflow_in_flight_continues_its_child_run(
        tmp_path: Path, trace_store: TraceStore) -> None:
    """Cut while a plan's sub-workflow action ran (its child past its first step): the
    plan's next attempt adds the action under a new id (``s__a2_w``), which goes on
    with the recorded child run instead of starting a new one."""
    (tmp_path / "leaf.yaml").write_text(LEAF)
    (tmp_path / "main.yaml").write_text(SUB_PLAN)
    calls: Counter[str] = Counter()
    registry = Registry.default()

    def count(city: str) -> int:
        """A number about a city; counts its calls."""
        calls[city] += 1
        return len(city) * 100

    registry.add_tool(count, "count")
    spec, smap = load_yaml(tmp_path / "main.yaml")
    graph = compile_graph(spec, smap, registry=registry, base_dir=tmp_path)
    whole_store = MemoryStore()
    whole = await execute(graph, {}, registry=registry, hooks=[StoreHook(whole_store)],
                          source=str(tmp_path / "main.yaml"))
    assert whole.ok and whole.output == {"s": {"y": 600}}, whole.error
    runs = {r.id: await whole_store.events(r.id) for r in await whole_store.list_runs()}
    (child_id,) = [rid for rid in runs if rid != whole.run_id]

    def before(events: list[Any], step_id: str) -> list[Any]:
        return [e for e in events if e.seq < next(
            x.seq for x in events if x.kind == "step_succeeded" and x.step_id == step_id)]

    parent_cut = before(runs[whole.run_id], "s__w")
    await trace_store.append(parent_cut + before(runs[child_id], "l2"))
    calls.clear()
    resumed = await resume(parent_cut, registry=registry, hooks=[StoreHook(trace_store)],
                           children=recorded_children(trace_store))
    assert resumed.ok and resumed.output == whole.output, resumed.error
    assert calls == Counter({"l2-600": 1})  # Paris and l1 were done
    children = await trace_store.list_runs(RunFilter(parent_run_id=whole.run_id))
    assert [(c.id, c.status) for c in children] == [(child_id, "succeeded")]
    w = next(e for e in await trace_store.events(whole.run_id)
             if e.kind == "step_succeeded" and e.step_id == "s__a2_w")
    assert w.meta["child_run_id"] == child_id


async def test_a_plan_inside_a_plan_cut_twice_takes_what_both_cuts_had(
        trace_store: TraceStore) -> None:
    """The inner plan that went on (``s__a2_inner``) records what it took as its own: cut
    in turn, the next attempt's inner plan (``s__a3_inner``) takes it from there."""
    whole = await _nested(Counter()).run(hooks=[StoreHook(trace_store)])
    events = await trace_store.events(whole.run_id)
    cut = next(e.seq for e in events
               if e.kind == "step_succeeded" and e.step_id == "s__inner__x")
    kept = [e for e in events if e.seq <= cut]
    added: list[Any] = []

    async def collect(batch: Any) -> None:
        added.extend(batch)

    await resume(kept, registry=_nested(Counter()).registry, hooks=[collect])
    cut = next(e.seq for e in added
               if e.kind == "step_succeeded" and e.step_id == "s__a2_inner__x")
    calls: Counter[str] = Counter()
    resumed = await resume([*kept, *(e for e in added if e.seq <= cut)],
                           registry=_nested(calls).registry)
    assert resumed.ok and resumed.output == whole.output, resumed.error
    assert calls == Counter({"Oslo": 1})
    steps = {s.id: s for s in resumed.steps}
    assert steps["s__a3_inner__x"].meta.get("reused_from") == "s__a2_inner__x"


#: a plan step whose planner's answer is cut at its max_tokens of 8 (in action 3, with 1
#: and 2 complete), then repaired: see :func:`cut_answer_llm`
CUT_PLAN_STEP = {"id": "p", "kind": "plan", "goal": "the question",
                 "tools": ["count", "calc"], "max_tokens": 8}


def cut_answer_llm() -> ScriptedLLM:
    """The model of :data:`CUT_PLAN_STEP`: the plan cut at max_tokens, the repair asked
    for it, then the joiner."""
    plan = PLAN.split("\n", 1)[1]
    repair = '3. calc("$1 + $2")\n4. join()\n<END_OF_PLAN>'
    return ScriptedLLM([JOINER, ("stopped at max_tokens", repair), ("Question", plan)],
                       max_tokens_cut=True)


async def test_a_plan_cut_at_max_tokens_resumes_without_asking_its_repair_again(
        trace_store: TraceStore) -> None:
    """A planner's answer cut at max_tokens is recorded as cut (``finish_reason``): the
    resumed attempt takes it as cut, words its problem as the first attempt did, and so
    finds the repair's answer recorded. It was taken as finished, the problem worded as
    an unclosed call, and the repair asked again."""
    llm, step = cut_answer_llm, CUT_PLAN_STEP
    whole = await _workflow(llm(), Counter(), step).run(hooks=[StoreHook(trace_store)])
    assert whole.ok, whole.error
    events = await trace_store.events(whole.run_id)
    assert [e.code for e in events if e.kind == "plan_error"] == ["truncated"]
    first, repaired = [e for e in events if e.kind == "plan_call"][:2]
    assert (first.finish_reason, repaired.finish_reason) == ("length", "stop")
    kept = [e for e in events if e.seq <= repaired.seq]  # killed after the repair call
    again = llm()
    resumed = await resume(kept, registry=_workflow(again, Counter(), step).registry)
    assert resumed.ok, resumed.error
    assert resumed.output == whole.output
    assert not again.prompts("Question: the question\n\nActions already run")
    assert len(again.calls) == 1 and again.prompts(JOINER[0])  # only the joiner, not recorded


async def test_a_plan_call_of_a_trace_without_finish_reason_reads_as_stopped() -> None:
    from orchestrator.runtime.events import EVENT_ADAPTER

    old = {"kind": "plan_call", "run_id": "r", "seq": 3, "ts": 1.0, "step_id": "p",
           "attempt": 1, "key": "k", "text": "1. search(\"a\")"}
    assert EVENT_ADAPTER.validate_python(old).finish_reason == "stop"
