"""The scheduler through the SDK with a scripted executor: dataflow, retries, timeouts,
failure isolation, cancellation, priority, durability ordering."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import anyio
import pytest
from fakes import ScriptedExecutor

from orchestrator import Workflow
from orchestrator.runtime import events as ev

pytestmark = pytest.mark.anyio


def make(steps: list[dict[str, Any]], **spec: Any) -> tuple[Workflow, ScriptedExecutor]:
    wf = Workflow.from_yaml_text(_yaml({"name": "t", "steps": steps, **spec}))
    fake = ScriptedExecutor()
    wf.register_executor("tool", fake)
    return wf, fake


def _yaml(data: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(data)


def tool(sid: str, **args: Any) -> dict[str, Any]:
    after = args.pop("after", [])
    return {"id": sid, "kind": "tool", "tool": "calc", "args": args, "after": after}


class Recorder:
    def __init__(self) -> None:
        self.events: list[Any] = []

    async def __call__(self, batch: Sequence[Any]) -> None:
        self.events.extend(batch)

    def kinds(self, step_id: str) -> list[str]:
        return [e.kind for e in self.events if getattr(e, "step_id", None) == step_id]


async def test_no_superstep_barrier() -> None:
    # short -> after_short runs while `long` (same layer as short) is still running
    wf, fake = make([tool("short", ms=10), tool("long", ms=300),
                     tool("after_short", ms=10, after=["short"]),
                     tool("join", after=["after_short", "long"])])
    result = await wf.run()
    assert result.ok, result.error
    calls = {c.step_id: c for c in fake.calls}
    assert calls["after_short"].end < calls["long"].end - 0.15
    assert calls["join"].start >= calls["long"].end


async def test_independent_steps_run_in_parallel() -> None:
    wf, _ = make([tool(f"s{i}", ms=200) for i in range(10)])
    t0 = time.monotonic()
    assert (await wf.run()).ok
    assert time.monotonic() - t0 < 1.0  # sequentially it would take 2 s


async def test_retryable_errors_are_retried_with_backoff_then_succeed() -> None:
    wf, fake = make([tool("a", flaky=2)],
                    defaults={"retry": {"max_attempts": 3, "initial_backoff_s": 0.01}})
    rec = Recorder()
    result = await wf.run(hooks=[rec])
    assert result.ok
    assert [c.attempt for c in fake.calls] == [1, 2, 3]
    assert rec.kinds("a").count("step_retrying") == 2
    assert next(s for s in result.steps if s.id == "a").attempts == 3


async def test_non_retryable_failure_skips_dependents_and_keeps_other_results() -> None:
    wf, fake = make([tool("bad", fail=True), tool("after_bad", after=["bad"]),
                     tool("good", value=42), tool("after_good", after=["good"])])
    rec = Recorder()
    result = await wf.run(hooks=[rec])
    assert result.status == "failed"
    by_id = {s.id: s for s in result.steps}
    assert by_id["bad"].status == "failed" and by_id["bad"].attempts == 1
    assert "failed on purpose" in (by_id["bad"].error or "")
    assert by_id["after_bad"].status == "skipped"
    assert "bad" in (by_id["after_bad"].error or "")
    assert by_id["good"].status == by_id["after_good"].status == "succeeded"
    skipped = [e for e in rec.events if e.kind == "step_skipped"]
    assert skipped[0].cause_step == "bad"
    assert len([c for c in fake.calls if c.step_id == "bad"]) == 1


async def test_timeout_is_retryable_and_recorded() -> None:
    wf, _fake = make([{**tool("slow", ms=500), "timeout_s": 0.05,
                      "retry": {"max_attempts": 2, "initial_backoff_s": 0}}])
    result = await wf.run()
    step = result.steps[0]
    assert step.status == "failed" and step.attempts == 2
    assert "timed out after 0.05s" in (step.error or "")


async def test_cancel_records_cancelled_steps() -> None:
    wf, _ = make([tool("a", ms=5000), tool("b", after=["a"])])
    rec = Recorder()
    holder: dict[str, Any] = {}

    async def cancel_soon() -> None:
        await anyio.sleep(0.1)
        holder["s"].cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(cancel_soon)
        t0 = time.monotonic()
        result = await wf.run(hooks=[rec], on_scheduler=lambda s: holder.__setitem__("s", s))
    assert time.monotonic() - t0 < 2
    assert result.status == "cancelled"
    assert {e.step_id for e in rec.events if e.kind == "step_cancelled"} == {"a", "b"}
    assert rec.events[-1].kind == "run_finished" and rec.events[-1].status == "cancelled"


async def test_a_run_cancelled_from_outside_is_recorded_cancelled_not_failed() -> None:
    """A cancel scope around the run (a timeout the caller set, Ctrl-C during `ponder
    resume`) records the run as cancelled, which resume continues: it was recorded as
    failed ("step 'a' cancelled: cancelled"), which nothing can resume."""
    wf, _ = make([tool("a", ms=5000), tool("b", after=["a"])])
    rec = Recorder()
    with anyio.move_on_after(0.1):
        await wf.run(hooks=[rec])
    finished = rec.events[-1]
    assert finished.kind == "run_finished"
    assert (finished.status, finished.error) == ("cancelled", "run cancelled")
    assert {e.step_id for e in rec.events if e.kind == "step_cancelled"} == {"a", "b"}


async def test_priority_prefers_the_longest_remaining_critical_path() -> None:
    # one slot: `x` heads a 3-step chain, `y` is alone; x must go first although y is first
    steps = [tool("y"), tool("x"), tool("x2", after=["x"]), tool("x3", after=["x2"])]
    wf, fake = make(steps, defaults={"tool_concurrency": 1})
    assert (await wf.run()).ok
    assert fake.order().index("x") < fake.order().index("y")


async def test_results_are_delivered_to_hooks_before_dependents_start() -> None:
    wf, _ = make([tool("a"), tool("b", after=["a"])])
    order: list[str] = []

    async def slow_hook(batch: Sequence[Any]) -> None:
        for e in batch:
            if e.kind in ("step_succeeded", "step_started"):
                order.append(f"{e.kind}:{e.step_id}")
        await anyio.sleep(0.01)  # a slow store: b must still wait for a's commit

    assert (await wf.run(hooks=[slow_hook])).ok
    assert order.index("step_succeeded:a") < order.index("step_started:b")


async def test_events_are_typed_in_order_and_validate() -> None:
    wf, _ = make([tool("a"), tool("b", after=["a"])])
    rec = Recorder()
    await wf.run(hooks=[rec])
    assert [e.seq for e in rec.events] == list(range(len(rec.events)))
    assert rec.events[0].kind == "run_started" and rec.events[-1].kind == "run_finished"
    for e in rec.events:  # each event survives a JSON round trip through the union
        again = ev.EVENT_ADAPTER.validate_json(e.model_dump_json())
        assert again == e


async def test_map_respects_its_concurrency_limit() -> None:
    running = 0
    peak = 0

    wf, fake = make([{"id": "m", "kind": "map", "over": [1, 2, 3, 4, 5, 6], "concurrency": 2,
                      "step": {"kind": "tool", "tool": "calc",
                               "args": {"ms": 30, "value": "${item}"}}}])

    def on_start(task: Any) -> None:
        nonlocal running, peak
        running = sum(1 for c in fake.calls if c.end == 0.0)
        peak = max(peak, running)

    fake.on_start = on_start
    result = await wf.run()
    assert result.ok
    assert result.output == [1, 2, 3, 4, 5, 6]
    assert peak == 2


async def test_stream_yields_every_event() -> None:
    wf, _ = make([tool("a"), tool("b", after=["a"])])
    kinds = [e.kind async for e in wf.stream()]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("step_succeeded") == 2


async def test_steps_in_flight_when_the_run_is_cancelled_keep_the_tokens_they_used() -> None:
    """Cancelling a run (Ctrl-C) records on each step_cancelled event the tokens its
    attempt had used, as a step cancelled on its own does, and the run's totals count
    them: an LLM step and a fan-out's samples, cut mid-decode."""
    models = {"default": {"backend": "simulated", "options": {
        "time_scale": 1, "decode_s_per_token": 0.01, "output_tokens": "max"}}}
    wf = Workflow.from_yaml_text(_yaml({"name": "t", "models": models, "steps": [
        {"id": "a", "kind": "llm", "prompt": "go on", "max_tokens": 1000},
        {"id": "s", "kind": "sample", "prompt": "more", "n": 2, "max_tokens": 1000,
         "requests": "separate"}]}))
    rec = Recorder()
    holder: dict[str, Any] = {}

    async def cancel_soon() -> None:
        await anyio.sleep(0.4)
        holder["s"].cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(cancel_soon)
        result = await wf.run(hooks=[rec], on_scheduler=lambda s: holder.__setitem__("s", s))
    assert result.status == "cancelled"
    cancelled = {e.step_id: e.usage for e in rec.events if e.kind == "step_cancelled"}
    assert set(cancelled) == {"a", "s", "s[0]", "s[1]"}
    for sid in ("a", "s[0]", "s[1]"):
        assert cancelled[sid].completion_tokens > 10, sid
    spent = sum(u.prompt_tokens + u.completion_tokens for u in cancelled.values())
    assert result.usage.prompt_tokens + result.usage.completion_tokens == spent
