"""What the plan-step driver does for every planner: the `tools:` allowlist, tagging each
planner and joiner LLM call with its run, step and priority, and counting the tokens of
calls that failed or were stopped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator import Workflow
from orchestrator.spec.models import ToolStep, WorkflowSpec, WorkflowStep
from planners.allowlist import Allowlist
from planners.testing import ScriptedLLM, forever
from tests.planners.conftest import TEST_TOOLS

pytestmark = pytest.mark.anyio
PlanWorkflow = Callable[..., Workflow]
Recorder = Any

JOINER = "Actions and observations"
FINISH = '{"action": "finish", "answer": "ok"}'
GOOD = '1. search("a")\n2. join()\n<END_OF_PLAN>'


# -- the allowlist, for planners other than LLMCompiler -----------------------------------
@pytest.mark.parametrize(("step", "shown"), [
    ({"id": "b", "kind": "tool", "tool": "search", "args": {"query": "x"}},
     "step 'p__b' calls tool 'search'"),
    ({"id": "b", "kind": "map", "over": [1, 2],
      "step": {"kind": "tool", "tool": "search", "args": {"query": "${item}"}}},
     "step 'p__b' calls tool 'search'"),
    ({"id": "b", "kind": "plan", "goal": "g", "planner": "static",
      "options": {"steps": [{"id": "c", "kind": "tool", "tool": "search",
                             "args": {"query": "x"}}]}},
     "step 'p__b' is a plan that may call '(any tool)'"),
])
async def test_a_static_step_outside_the_allowlist_is_a_plan_error(
        plan_workflow: PlanWorkflow, recorder: Recorder, step: dict[str, Any],
        shown: str) -> None:
    steps = [{"id": "a", "kind": "tool", "tool": "calc", "args": {"expression": "1 + 1"}},
             step]
    wf = plan_workflow(ScriptedLLM(), planner="static", tools=["calc", "lookup"],
                       max_plan_repairs=0, options={"steps": steps, "output": "a"})
    result = await wf.run(hooks=[recorder])
    assert result.status == "failed"
    (error,) = recorder.of("plan_error")
    assert error.code == "unknown_tool"
    assert shown in error.error and "(allowed: calc, lookup)" in error.error
    assert shown in (result.error or "")
    started = {e.step_id for e in recorder.of("step_started")}
    assert "p__b" not in started and not any(s.startswith("p__b") for s in started)
    assert recorder.first("step_succeeded", "p__a").output == 2  # kept


async def test_static_steps_inside_the_allowlist_run(plan_workflow: PlanWorkflow) -> None:
    steps = [{"id": "a", "kind": "tool", "tool": "calc", "args": {"expression": "1 + 1"}},
             {"id": "b", "kind": "plan", "goal": "g", "planner": "static", "tools": ["calc"],
              "options": {"steps": [{"id": "c", "kind": "tool", "tool": "calc",
                                     "args": {"expression": "2 * 3"}}]}}]
    wf = plan_workflow(ScriptedLLM(), planner="static", tools=["calc"],
                       options={"steps": steps})
    result = await wf.run()
    assert result.ok and result.output == 6, result.error


# -- the allowlist through sub-workflows -----------------------------------------------------
SUBWORKFLOWS = {
    "search.yaml": "name: search_top\nsteps:\n"
                   "  - {id: look, kind: tool, tool: search, args: {query: x}}\n",
    "lib/search.yaml": "name: search_lib\nsteps:\n"
                       "  - {id: deep, kind: tool, tool: search, args: {query: y}}\n",
    # allowed itself; its own sub-workflow is found next to it, in lib/
    "lib/nested.yaml": "name: nested\nsteps:\n"
                       "  - {id: fine, kind: tool, tool: calc, args: {expression: '2'}}\n"
                       "  - {id: inner, kind: workflow, workflow: search.yaml}\n",
    "lib/ok.yaml": "name: ok\nsteps:\n"
                   "  - {id: n, kind: tool, tool: lookup, args: {city: paris}}\n"
                   "  - {id: q, kind: plan, planner: static, goal: g, tools: [calc],\n"
                   "     options: {steps: [{id: c, kind: tool, tool: calc,\n"
                   "                        args: {expression: '3 * 4'}}]}}\n"
                   "outputs: {total: '${steps.q.output}'}\n",
}
ALLOWED = "(allowed: calc, lookup)"


def static_plan_in_folder(folder: Path, step: dict[str, Any],
                          registered: dict[str, str] | None = None) -> Workflow:
    """A workflow file in ``folder`` (with the sub-workflows above) whose static plan,
    allowed calc and lookup, adds the step ``a`` (calc) and then ``step``."""
    for name, text in SUBWORKFLOWS.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    doc = {"name": "main", "models": {"default": {"backend": "scripted"}}, "steps": [
        {"id": "p", "kind": "plan", "planner": "static", "goal": "g",
         "tools": ["calc", "lookup"], "max_plan_repairs": 0,
         "options": {"steps": [{"id": "a", "kind": "tool", "tool": "calc",
                                "args": {"expression": "1 + 1"}}, step],
                     "output": step["id"]}}]}
    (folder / "main.yaml").write_text(yaml.safe_dump(doc))
    wf = Workflow.from_yaml(folder / "main.yaml")
    wf.register_backend("scripted", ScriptedLLM().factory)
    for name, fn in TEST_TOOLS.items():
        wf.register_tool(fn, name)
    for name, text in (registered or {}).items():
        wf.registry.workflows[name] = Workflow.from_yaml_text(text)
    return wf


SEARCH_VIA = "runs sub-workflow 'search.yaml', whose step 'look' calls tool 'search'"


@pytest.mark.parametrize(("step", "shown"), [
    ({"id": "b", "kind": "workflow", "workflow": "search.yaml"}, f"step 'p__b' {SEARCH_VIA}"),
    ({"id": "b", "kind": "map", "over": [1, 2],
      "step": {"kind": "workflow", "workflow": "search.yaml"}}, f"step 'p__b' {SEARCH_VIA}"),
    ({"id": "b", "kind": "spawn", "messages": ["m"], "workflow": "search.yaml"},
     f"step 'p__b' {SEARCH_VIA}"),
    ({"id": "b", "kind": "workflow", "workflow": "lib/nested.yaml"},
     "step 'p__b' runs sub-workflow 'lib/nested.yaml', whose step 'inner' runs sub-workflow "
     "'search.yaml', whose step 'deep' calls tool 'search'"),
    ({"id": "b", "kind": "workflow", "workflow": "helper"},
     "step 'p__b' runs sub-workflow 'helper', whose step 'h' calls tool 'search'"),
    ({"id": "b", "kind": "tool", "tool": "lookup", "args": {"city": "rome"}}, None),
], ids=["workflow", "map", "spawn", "nested", "registered", "control"])
async def test_a_sub_workflow_calling_a_tool_outside_the_allowlist_is_a_plan_error(
        tmp_path: Path, recorder: Recorder, step: dict[str, Any], shown: str | None) -> None:
    wf = static_plan_in_folder(tmp_path, step, registered={
        "helper": "name: helper\nsteps:\n  - {id: h, kind: tool, tool: search, "
                  "args: {query: z}}\n"})
    result = await wf.run(hooks=[recorder])
    if shown is None:  # the same plan without a sub-workflow runs
        assert result.ok, result.error
        return
    assert result.status == "failed"
    (error,) = recorder.of("plan_error")
    assert error.code == "unknown_tool"
    assert error.error == f"{shown}, which is not allowed here {ALLOWED}"
    started = {e.step_id for e in recorder.of("step_started")}
    assert not any(s.startswith("p__b") for s in started)  # nothing of it ran
    assert not [e for e in recorder.of("run_started") if e.run_id != result.run_id]
    assert recorder.first("step_succeeded", "p__a").output == 2  # kept


async def test_a_join_scoring_with_a_tool_outside_the_allowlist_is_a_plan_error(
        tmp_path: Path, recorder: Recorder) -> None:
    wf = static_plan_in_folder(tmp_path, {"id": "j", "kind": "join", "of": "a",
                                          "reducer": "best_of_n",
                                          "scorer": {"tool": "search"}})
    result = await wf.run(hooks=[recorder])
    assert result.status == "failed"
    (error,) = recorder.of("plan_error")
    assert error.error == f"step 'p__j' calls tool 'search', which is not allowed here {ALLOWED}"


async def test_a_sub_workflow_that_cannot_be_loaded_is_a_plan_error(
        tmp_path: Path, recorder: Recorder) -> None:
    wf = static_plan_in_folder(tmp_path, {"id": "b", "kind": "workflow",
                                          "workflow": "nowhere.yaml"})
    result = await wf.run(hooks=[recorder])
    assert result.status == "failed"
    (error,) = recorder.of("plan_error")
    assert error.code == "unknown_workflow"
    assert error.error.startswith("step 'p__b' runs sub-workflow 'nowhere.yaml', which cannot "
                                  "be loaded to check the tools it calls: ")
    assert "nowhere.yaml: No such file or directory" in error.error
    assert "\n" not in error.error


async def test_a_sub_workflow_inside_the_allowlist_runs(tmp_path: Path,
                                                        recorder: Recorder) -> None:
    # it calls lookup and runs a plan allowed calc
    wf = static_plan_in_folder(tmp_path, {"id": "b", "kind": "workflow",
                                          "workflow": "lib/ok.yaml"})
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == {"total": 12}
    assert not recorder.of("plan_error")


def test_an_empty_allowlist_checks_nothing(tmp_path: Path) -> None:
    def unreadable(ref: str, base_dir: Path) -> tuple[WorkflowSpec, Path]:
        raise AssertionError("not loaded")

    step = ToolStep(id="x", tool="anything")
    assert Allowlist([], tmp_path, unreadable).problem("x", step) is None
    assert Allowlist(["calc"], tmp_path, unreadable).problem("x", step) is not None


def test_a_sub_workflow_that_calls_itself_is_read_and_checked_once(tmp_path: Path) -> None:
    loop = WorkflowSpec.model_validate({"name": "loop", "steps": [
        {"id": "again", "kind": "workflow", "workflow": "loop"},
        {"id": "c", "kind": "tool", "tool": "calc"}]})
    loads: list[str] = []

    def load(ref: str, base_dir: Path) -> tuple[WorkflowSpec, Path]:
        loads.append(ref)
        return loop, base_dir

    allowlist = Allowlist(["calc"], tmp_path, load)
    assert allowlist.problem("x", WorkflowStep(id="x", workflow="loop")) is None
    assert allowlist.problem("y", WorkflowStep(id="y", workflow="loop")) is None
    assert loads == ["loop"]
    problem = Allowlist(["lookup"], tmp_path, load).problem("x", WorkflowStep(id="x",
                                                                              workflow="loop"))
    assert problem is not None and problem.message == (
        "step 'x' runs sub-workflow 'loop', whose step 'c' calls tool 'calc', which is not "
        "allowed here (allowed: lookup)")


# -- run id, step id, priority ------------------------------------------------------------
async def test_planner_and_joiner_calls_carry_the_run_the_step_and_its_priority(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    llm = ScriptedLLM([(JOINER, FINISH), ("Question", GOOD)])
    wf = plan_workflow(llm)
    priority = wf.compile().remaining_critical_path()["p"]  # what its Task carries
    assert priority > 0
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert len(llm.calls) == 2  # the plan and the joiner
    assert [(c.run_id, c.step_id, c.priority) for c in llm.calls] == [
        (result.run_id, "p", priority)] * 2


# -- tokens of calls that failed or were stopped ------------------------------------------
async def test_a_failed_plan_step_reports_the_tokens_it_spent(plan_workflow: PlanWorkflow,
                                                              recorder: Recorder) -> None:
    # the joiner stalls: it is stopped at plan_timeout_s, and the step fails; its event
    # counts the plan's tokens and those the stopped joiner call had streamed
    llm = ScriptedLLM([(JOINER, forever("{")), ("Question", GOOD)], token_delay_s=0.002)
    wf = plan_workflow(llm, plan_timeout_s=0.3, max_plan_repairs=0)
    result = await wf.run(hooks=[recorder])
    assert result.status == "failed"
    failed = recorder.first("step_failed", "p")
    plan_prompt = sum(len(m["content"]) for m in llm.calls[0].messages) // 4
    joiner_prompt = sum(len(m["content"]) for m in llm.calls[1].messages) // 4
    assert failed.usage.prompt_tokens == plan_prompt + joiner_prompt
    assert failed.usage.completion_tokens > 5 + 20  # the plan's 5, the joiner's many
    assert llm.cancelled == 1


# -- the ids of the steps a plan adds ---------------------------------------------------------
async def test_a_workflow_step_named_like_a_plans_step_does_not_block_the_plan(
        plan_workflow: PlanWorkflow, recorder: Recorder) -> None:
    # a workflow step `p__1` took the id the plan's action 1 gets: every plan was
    # rejected ("step id 'p__1' is already in the graph"), the planner blamed for it
    llm = ScriptedLLM([(JOINER, "Finish($1)"), ("Question", GOOD)])
    own = {"id": "p__1", "kind": "tool", "tool": "search", "args": {"query": "mine"}}
    wf = plan_workflow(llm, extra_steps=[own],
                       outputs={"plan": "${steps.p.output}", "own": "${steps.p__1.output}"})
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == {"plan": "result for a", "own": "result for mine"}
    assert not recorder.of("plan_error")
    added = [s["id"] for p in recorder.of("graph_patched") for s in p.steps]
    assert added == ["p___1"]
