"""A step that an earlier execution of a run stopped in mid-attempt (the process killed)
runs again when the run is resumed. Its record then shows that attempt as ended,
interrupted (a ``step_cancelled`` written before its next ``step_started``), with the
tokens the trace recorded for it that no event had counted (a plan step's completed
calls): the step's tokens are every attempt's, once, the same in ``RunResult.steps``,
``ponder show`` (the store's fold), the viewer's replay and ``StepOutcome.usage``, and
they add up to the run's total, on every store backend."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.runtime.contracts import Usage
from orchestrator.runtime.durable import resume
from orchestrator.store import MemoryStore, StoreHook, TraceStore, open_store
from orchestrator.viewer._replay import ATTEMPTS, COMPLETION, ID, PROMPT, ReplayFold
from planners.testing import ScriptedLLM
from tests.orchestrator.runtime.cut_runs import cut_two
from tests.orchestrator.runtime.test_retry_usage import SLOW
from tests.planners.test_resume import (
    CUT_PLAN_STEP,
    JOINER,
    PLAN,
    _cut_mid_plan,
    _workflow,
    cut_answer_llm,
)

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[3]


def _tokens(step: Any) -> tuple[int, int]:
    return step.prompt_tokens, step.completion_tokens


def _pair(usage: Usage) -> tuple[int, int]:
    return usage.prompt_tokens, usage.completion_tokens


def _viewer_step(events: Sequence[Any], step_id: str) -> tuple[list[str], tuple[int, int]]:
    """The step as the viewer's run page replays it: its attempts' outcomes, its tokens."""
    fold = ReplayFold()
    for e in events:
        fold.add(e)
    doc = json.loads(fold.snapshot().to_json(fold))
    text = doc["strings"]
    (step,) = [s for s in doc["steps"] if s[ID] == step_id]
    return [text[a[3]] for a in step[ATTEMPTS]], (step[PROMPT], step[COMPLETION])


def _interrupted(events: Sequence[Any], step_id: str) -> list[Any]:
    return [e for e in events if e.kind == "step_cancelled" and e.step_id == step_id
            and e.reason.startswith("interrupted")]


def _show_json(run_id: str, db: Path) -> Any:
    """What `ponder show RUN_ID --json` prints of a run stored in the SQLite file ``db``."""
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "show", run_id, "--json",
                           "--db", str(db)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


async def _resume_into(store: TraceStore, kept: list[Any], **kw: Any) -> Any:
    await store.append(kept)
    return await resume(kept, hooks=[StoreHook(store)], **kw)


async def test_a_plan_steps_cut_attempt_counts_on_it_after_resume(
        trace_store: TraceStore) -> None:
    """Killed once its plan was answered (a ``plan_call``) and its actions had run: the
    resumed plan step takes the recorded plan without paying again, and its record has
    the tokens the cut attempt paid for it, as the uninterrupted run's step has."""
    recorder = MemoryStore()
    kept, whole = await _cut_mid_plan(recorder)
    paid = [e.usage for e in kept if e.kind == "plan_call" and e.step_id == "p"]
    cut_paid = (sum(u.prompt_tokens for u in paid), sum(u.completion_tokens for u in paid))
    assert cut_paid != (0, 0)
    resumed = await _resume_into(trace_store, kept, registry=_workflow(
        ScriptedLLM([JOINER, ("Question", PLAN)]), Counter()).registry)
    assert resumed.ok and resumed.output == whole.output, resumed.error
    events = await trace_store.events(resumed.run_id)
    after = events[len(kept):]
    # the cut attempt reads ended (interrupted), with what it paid, before attempt 2
    (marker,) = _interrupted(after, "p")
    assert marker.attempt == 1 and (marker.usage.prompt_tokens,
                                    marker.usage.completion_tokens) == cut_paid
    started = next(e for e in after if e.kind == "step_started" and e.step_id == "p")
    assert started.attempt == 2 and started.seq > marker.seq
    expected = _tokens({s.id: s for s in whole.steps}["p"])
    shown = await trace_store.read_run(resumed.run_id)  # what `ponder show` folds
    for steps in (resumed.steps, shown.steps):
        p = {s.id: s for s in steps}["p"]
        assert p.status == "succeeded" and p.attempts == 2
        assert _tokens(p) == expected
        total = (sum(s.prompt_tokens for s in steps), sum(s.completion_tokens for s in steps))
        assert total == _pair(resumed.usage) == _pair(whole.usage)  # counted once
    assert (shown.prompt_tokens, shown.completion_tokens) == _pair(whole.usage)
    assert _viewer_step(events, "p") == (["cancelled", "succeeded"], expected)


async def test_a_plan_cut_after_its_answer_was_cut_and_repaired_keeps_both_calls_tokens(
        trace_store: TraceStore) -> None:
    """The planner's answer cut at max_tokens, its repair answered, then the run killed:
    both calls' tokens show on the resumed plan step (its next attempt pays neither)."""
    llm, step = cut_answer_llm, CUT_PLAN_STEP
    recorder = MemoryStore()
    whole = await _workflow(llm(), Counter(), step).run(hooks=[StoreHook(recorder)])
    assert whole.ok, whole.error
    events = await recorder.events(whole.run_id)
    first, repaired = [e for e in events if e.kind == "plan_call"][:2]
    assert first.finish_reason == "length"
    kept = [e for e in events if e.seq <= repaired.seq]
    resumed = await _resume_into(trace_store, kept,
                                 registry=_workflow(llm(), Counter(), step).registry)
    assert resumed.ok and resumed.output == whole.output, resumed.error
    (marker,) = _interrupted((await trace_store.events(resumed.run_id))[len(kept):], "p")
    assert (marker.usage.prompt_tokens, marker.usage.completion_tokens) == (
        first.usage.prompt_tokens + repaired.usage.prompt_tokens,
        first.usage.completion_tokens + repaired.usage.completion_tokens)
    shown = await trace_store.read_run(resumed.run_id)
    for steps in (resumed.steps, shown.steps):
        assert _tokens({s.id: s for s in steps}["p"]) == _tokens(
            {s.id: s for s in whole.steps}["p"])
    assert resumed.usage == whole.usage


LLM = """\
name: one
models:
  default: {backend: simulated}
steps:
  - {id: say, kind: llm, prompt: "say something", max_tokens: 40}
  - {id: after, kind: tool, tool: calc, args: {expression: "1 + 1"}}
"""


async def test_an_llm_step_cut_mid_decode_runs_again_and_its_tokens_count_once(
        trace_store: TraceStore) -> None:
    """An ``llm`` step in flight when the process died runs again (at least once): its
    first attempt reads interrupted (no tokens were recorded for it), the second's
    tokens are the step's and the run's, once."""
    recorder = MemoryStore()
    whole = await Workflow.from_yaml_text(LLM).run(hooks=[StoreHook(recorder)])
    assert whole.ok, whole.error
    events = await recorder.events(whole.run_id)
    cut = next(e.seq for e in events if e.kind == "step_started" and e.step_id == "say")
    kept = [e for e in events if e.seq <= cut]
    resumed = await _resume_into(trace_store, kept, registry=Workflow.from_yaml_text(LLM).registry)
    assert resumed.ok and resumed.output == whole.output, resumed.error
    stored = await trace_store.events(resumed.run_id)
    (marker,) = _interrupted(stored[len(kept):], "say")
    assert marker.attempt == 1 and marker.usage.prompt_tokens == marker.usage.completion_tokens == 0
    (done,) = [e for e in stored if e.kind == "step_succeeded" and e.step_id == "say"]
    assert done.attempt == 2 and done.usage.completion_tokens > 0
    shown = await trace_store.read_run(resumed.run_id)
    for steps in (resumed.steps, shown.steps):
        say = {s.id: s for s in steps}["say"]
        assert say.attempts == 2 and say.status == "succeeded" and say.error is None
        assert _tokens(say) == (done.usage.prompt_tokens, done.usage.completion_tokens)
    assert _pair(resumed.usage) == (done.usage.prompt_tokens, done.usage.completion_tokens)
    assert _viewer_step(stored, "say") == (
        ["cancelled", "succeeded"], (done.usage.prompt_tokens, done.usage.completion_tokens))


async def test_a_tool_step_cut_mid_call_reads_interrupted_in_show(tmp_path: Path) -> None:
    """`ponder show` of a run resumed after its process died while a tool step ran: the
    step ran twice, its first attempt ended interrupted, nothing is left running."""
    run_id, kept = await cut_two(tmp_path, "step_started", "b")
    db = tmp_path / "runs.db"
    async with await open_store(f"sqlite:///{db}") as store:
        resumed = await _resume_into(store, kept)
        after = (await store.events(run_id))[len(kept):]
    assert resumed.ok and resumed.output == {"b": 3}
    (marker,) = _interrupted(after, "b")
    assert marker.attempt == 1
    assert "attempt 2" in marker.reason
    steps = {s["id"]: s for s in _show_json(run_id, db)["steps"]}
    assert (steps["b"]["status"], steps["b"]["attempts"], steps["b"]["error"]) == (
        "succeeded", 2, None)


MAPPED = """\
name: mapped
models:
  default: {backend: simulated, options: {time_scale: 0, output_tokens: text}}
steps:
  - id: m
    kind: map
    over: ["one", "two", "three"]
    concurrency: 1
    step: {kind: llm, prompt: "Say {{ item }}."}
  - {id: v, kind: join, of: m, reducer: concat}
outputs:
  v: ${steps.v.output}
"""


async def test_a_join_over_a_resumed_map_counts_every_items_tokens(
        trace_store: TraceStore) -> None:
    """Cut while the map's second item ran: resumed, the first keeps its recorded output
    and the second runs again. The join reads its items' tokens from how each ended
    (``StepOutcome.usage``): it counts the recorded item's too, as the uninterrupted
    run's join did and as the items' records say."""
    recorder = MemoryStore()
    whole = await Workflow.from_yaml_text(MAPPED).run(hooks=[StoreHook(recorder)])
    assert whole.ok, whole.error
    events = await recorder.events(whole.run_id)
    cut = next(e.seq for e in events if e.kind == "step_started" and e.step_id == "m[1]")
    kept = [e for e in events if e.seq <= cut]
    resumed = await _resume_into(trace_store, kept)
    assert resumed.ok and resumed.output == whole.output, resumed.error
    (marker,) = _interrupted((await trace_store.events(resumed.run_id))[len(kept):], "m[1]")
    assert marker.attempt == 1
    tokens = {s.id: s for s in whole.steps}["v"].meta["fanout"]["tokens"]
    shown = await trace_store.read_run(resumed.run_id)
    for steps in (resumed.steps, shown.steps):
        by_id = {s.id: s for s in steps}
        assert by_id["v"].meta["fanout"]["tokens"] == tokens
        items = [by_id[f"m[{i}]"] for i in range(3)]
        assert (sum(s.prompt_tokens for s in items), sum(s.completion_tokens for s in items)) \
            == (tokens["prompt_tokens"], tokens["completion_tokens"]) == _pair(resumed.usage)


async def test_a_resumed_steps_outcome_counts_its_attempts_before_the_cut(
        trace_store: TraceStore) -> None:
    """`think` times out and is retried (its first attempt's tokens in its step_retrying),
    then the process dies in its second attempt; resumed, its third fails too. What code
    waiting on it reads (``StepOutcome.usage``) counts the first attempt as well, as its
    record and the run's total do."""
    recorder = MemoryStore()
    first = await Workflow.from_yaml_text(SLOW).run(hooks=[StoreHook(recorder)])
    events = await recorder.events(first.run_id)
    cut = next(e.seq for e in events if e.kind == "step_started" and e.attempt == 2)
    kept = [e for e in events if e.seq <= cut]
    (retried,) = [e for e in kept if e.kind == "step_retrying"]
    assert retried.usage.completion_tokens > 0
    holder: dict[str, Any] = {}
    resumed = await _resume_into(trace_store, kept,
                                 on_scheduler=lambda s: holder.__setitem__("s", s))
    assert not resumed.ok
    outcome = holder["s"].outcome("think")
    assert outcome.status == "failed"
    shown = await trace_store.read_run(resumed.run_id)
    for steps in (resumed.steps, shown.steps):
        think = {s.id: s for s in steps}["think"]
        assert think.attempts == 3
        assert _pair(outcome.usage) == _tokens(think) == _pair(resumed.usage)
    assert outcome.usage.total > retried.usage.prompt_tokens + retried.usage.completion_tokens


async def test_a_run_cancelled_before_its_cut_plan_step_ran_again_keeps_its_tokens(
        trace_store: TraceStore) -> None:
    """Resumed and cancelled at once (before the cut plan step's next attempt starts): the
    cut attempt ends cancelled with what it paid. Its step_cancelled said 0 tokens, and a
    second resume, reading that attempt as ended, left its calls out of the run's total."""
    recorder = MemoryStore()
    kept, whole = await _cut_mid_plan(recorder)

    def registry() -> Any:
        return _workflow(ScriptedLLM([JOINER, ("Question", PLAN)]), Counter()).registry

    stopped = await _resume_into(trace_store, kept, registry=registry(),
                                 on_scheduler=lambda s: s.cancel())
    paid = [e.usage for e in kept if e.kind == "plan_call" and e.step_id == "p"]
    cut_paid = (sum(u.prompt_tokens for u in paid), sum(u.completion_tokens for u in paid))
    assert stopped.status == "cancelled" and _pair(stopped.usage) == cut_paid
    events = await trace_store.events(stopped.run_id)
    assert not [e for e in events[len(kept):] if e.kind == "step_started"]
    (ended,) = [e for e in events[len(kept):] if e.kind == "step_cancelled" and e.step_id == "p"]
    assert ended.attempt == 1
    assert (ended.usage.prompt_tokens, ended.usage.completion_tokens) == cut_paid
    again = await resume(events, registry=registry(), hooks=[StoreHook(trace_store)])
    assert again.ok and again.output == whole.output, again.error
    assert again.usage == whole.usage
    shown = await trace_store.read_run(again.run_id)
    for steps in (again.steps, shown.steps):
        assert _tokens({s.id: s for s in steps}["p"]) == _tokens(
            {s.id: s for s in whole.steps}["p"])
