"""A static plan recorded before quoted numbers were refused (`timeout_s: "30"` in a step
of its `options.steps`, which pydantic's lax mode then read as 30) is still a run: its
record resumes, forks and replays. The refusal is for workflows a user writes now (its
compile check, `ponder validate`), not for what a run recorded."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest
import yaml

from orchestrator import Workflow
from orchestrator.errors import ValidationFailed
from orchestrator.runtime.durable import replay, resume
from orchestrator.store import MemoryStore, StoreHook
from planners.static import StaticPlanner

pytestmark = pytest.mark.anyio

PLAN = {"id": "s", "kind": "plan", "planner": "static", "goal": "sum",
        "options": {"output": "total", "steps": [
            {"id": "a", "kind": "tool", "tool": "count", "args": {"city": "Paris"},
             "timeout_s": 30},
            {"id": "b", "kind": "tool", "tool": "count", "args": {"city": "Rome"}},
            {"id": "total", "kind": "tool", "tool": "calc", "timeout_s": 30.5,
             "args": {"expression": "${steps.a.output} + ${steps.b.output}"}}]}}


def _workflow(calls: Counter[str]) -> Workflow:
    def count(city: str) -> int:
        """A number about a city; counts its calls."""
        calls[city] += 1
        return len(city) * 100

    wf = Workflow.from_yaml_text(yaml.safe_dump(
        {"name": "old", "steps": [PLAN], "outputs": {"answer": "${steps.s.output}"}}))
    wf.register_tool(count, "count")
    return wf


def _as_recorded_before(events: list[Any]) -> list[Any]:
    """The events as a run recorded them before the refusal: the workflow's static plan
    with its numbers quoted, as the user wrote them (options are kept as read)."""
    out = []
    for e in events:
        if e.kind == "run_started":
            spec = copy.deepcopy(e.spec)
            steps = spec["steps"][0]["options"]["steps"]
            steps[0]["timeout_s"], steps[2]["timeout_s"] = "30", "30.5"
            e = e.model_copy(update={"spec": spec})
        out.append(e)
    return out


async def test_an_old_static_plan_with_quoted_numbers_resumes() -> None:
    store = MemoryStore()
    whole = await _workflow(Counter()).run(hooks=[StoreHook(store)])
    assert whole.ok and whole.output == {"answer": 900}, whole.error
    events = _as_recorded_before(await store.events(whole.run_id))
    # cut after the first of the two look-ups to finish: they run at once, and on a busy
    # machine Rome's (b) finished first now and then, which the test took for a's
    first = next(e for e in events if e.kind == "step_succeeded"
                 and e.step_id in ("s__a", "s__b"))
    calls: Counter[str] = Counter()
    resumed = await resume([e for e in events if e.seq <= first.seq],
                           registry=_workflow(calls).registry)
    assert resumed.ok, resumed.error
    assert resumed.output == whole.output
    assert calls == Counter({"Rome" if first.step_id == "s__a" else "Paris": 1})


async def test_an_old_static_plan_with_quoted_numbers_replays() -> None:
    store = MemoryStore()
    whole = await _workflow(Counter()).run(hooks=[StoreHook(store)])
    events = _as_recorded_before(await store.events(whole.run_id))
    calls: Counter[str] = Counter()
    again = await replay(events, registry=_workflow(calls).registry, from_step="s")
    assert again.ok, again.error
    assert again.output == whole.output and calls == Counter({"Paris": 1, "Rome": 1})


def test_a_workflow_written_now_is_still_refused() -> None:
    plan = copy.deepcopy(PLAN)
    plan["options"]["steps"][0]["timeout_s"] = "30"
    with pytest.raises(ValidationFailed, match=r"options.steps\[0\]: timeout_s: a number, "
                                               "not a string"):
        Workflow.from_yaml_text(yaml.safe_dump({"name": "new", "steps": [plan]})).compile()


def test_the_recorded_options_read_as_numbers_what_was_read_so() -> None:
    """Only where a number belongs: a tool's `tool` (a field named as its kind), its
    arguments and a prompt stay text; a nested static plan's steps and a map's body are
    read so too; a boolean is the number it was taken for."""
    options = {"output": "p", "steps": [
        {"id": "t", "kind": "tool", "tool": "calc", "args": {"expression": "3"},
         "timeout_s": "30", "retry": {"max_attempts": "2"}},
        {"id": "m", "kind": "map", "over": [1], "concurrency": "2",
         "step": {"kind": "llm", "prompt": "7", "max_tokens": "64"}},
        {"id": "p", "kind": "plan", "planner": "static", "goal": "g", "options": {"steps": [
            {"id": "s", "kind": "sample", "prompt": "5", "n": "3", "max_tokens": True,
             "temperature": "0.5"}]}}]}
    read = StaticPlanner.recorded_options(options)
    t, m, p = read["steps"]
    assert t == {"id": "t", "kind": "tool", "tool": "calc", "args": {"expression": "3"},
                 "timeout_s": 30.0, "retry": {"max_attempts": 2}}
    assert m["concurrency"] == 2 and m["step"] == {"kind": "llm", "prompt": "7",
                                                   "max_tokens": 64}
    assert p["options"]["steps"][0] == {"id": "s", "kind": "sample", "prompt": "5", "n": 3,
                                        "max_tokens": 1, "temperature": 0.5}
    assert StaticPlanner.option_problems(read) == []
    assert options["steps"][0]["timeout_s"] == "30"  # the record is not changed
