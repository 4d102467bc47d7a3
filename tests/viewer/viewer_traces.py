"""Traces for the viewer's tests: real runs of tool workflows, and hand-built traces.

Real runs show the viewer reads what the scheduler writes; hand-built traces give
what tool runs cannot (LLM prompts and tokens, retries, planners' patches and
replans, ten thousand steps, hostile strings) with fixed timings.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable, Collection, Sequence
from typing import Any

import anyio

from orchestrator import Workflow
from orchestrator.runtime import events as ev
from orchestrator.runtime._process import host_name, process_start
from orchestrator.store import (
    MemoryStore,
    RunFilter,
    RunInfo,
    StoredEvent,
    StoreHook,
    StoreUnavailable,
    TraceStore,
)

T0 = 1_790_000_000.0  # a fixed start time for hand-built traces

XSS_SCRIPT = "<script>window.__xss=1</script>"
XSS_IMG = '<img src=x onerror="window.__xss=1;alert(1)">'
XSS_SVG = '<svg onload="window.__xss=1"></svg>'
XSS = f"{XSS_SCRIPT}{XSS_IMG}"


def demo_workflow(name: str = "demo") -> Workflow:
    """A workflow of built-in tools: a chain, a parallel sleep, a map, a join of both."""
    wf = Workflow(name)
    wf.tool("a", "calc", expression="1 + 2")
    wf.tool("nap", "sleep", seconds=0.05)
    wf.tool("c", "calc", expression="${steps.a.output} * 3")
    wf.map("m", over=[1, 2, 3], step={"kind": "tool", "tool": "calc",
                                      "args": {"expression": "${item} * 2"}})
    wf.tool("d", "calc", expression="${steps.c.output} + ${steps.nap.output}")
    wf.tool("pick", "extract", text="answer: 42", pattern=r"\d+")
    return wf


DEMO_STEPS = {"a", "nap", "c", "m", "m[0]", "m[1]", "m[2]", "d", "pick"}


def failing_workflow(name: str = "broken") -> Workflow:
    """A workflow whose second step fails (division by zero)."""
    wf = Workflow(name)
    wf.tool("x", "calc", expression="2 + 2")
    wf.tool("y", "calc", expression="${steps.x.output} / 0")
    return wf


async def run_into(store: TraceStore, wf: Workflow, run_id: str | None = None) -> str:
    """Run ``wf`` with its events going to ``store``; returns the run id."""
    result = await wf.run({}, hooks=[StoreHook(store)], run_id=run_id)
    return result.run_id


class TraceBuilder:
    """Builds a run's events by hand, with times given in seconds after :data:`T0`;
    steps may be written one after the other, the events come out in time order.

    :param run_id: the run.
    :param workflow: its workflow name.
    """

    def __init__(self, run_id: str, workflow: str = "research", t0: float = T0) -> None:
        self.run_id = run_id
        self.workflow = workflow
        self.t0 = t0
        self._added: list[Any] = []
        self._sorted: list[Any] | None = None

    @property
    def events(self) -> list[Any]:
        """The events in time order (as a scheduler writes them), ``seq`` from 0."""
        if self._sorted is None:
            order = sorted(self._added, key=lambda e: e.ts)  # stable: ties keep their order
            self._sorted = [e.model_copy(update={"seq": i}) for i, e in enumerate(order)]
        return self._sorted

    def _add(self, cls: type[Any], at: float, **fields: Any) -> None:
        self._added.append(cls(run_id=self.run_id, seq=len(self._added), ts=self.t0 + at,
                               **fields))
        self._sorted = None

    def start(self, steps: list[dict[str, Any]], at: float = 0.0, **fields: Any) -> TraceBuilder:
        spec = {"name": self.workflow, "steps": steps}
        self._add(ev.RunStarted, at, workflow=self.workflow, inputs=fields.pop("inputs", {}),
                  spec=spec, **fields)
        return self

    def patch(self, source: str, steps: list[dict[str, Any]], at: float,
              reason: str = "plan") -> TraceBuilder:
        self._add(ev.GraphPatched, at, source_step=source, reason=reason, steps=steps)
        return self

    def run_step(self, step_id: str, kind: str, start: float, end: float, *,
                 output: Any = None, input: dict[str, Any] | None = None, raw: str | None = None,
                 tokens: tuple[int, int] = (0, 0), fail: str | None = None,
                 retries: Sequence[tuple[float, str]] = (), scheduled: float | None = None,
                 ) -> TraceBuilder:
        """One step from scheduling to its end; ``retries``: (time, error) of failed attempts."""
        self._add(ev.StepScheduled, start if scheduled is None else scheduled, step_id=step_id,
                  step_kind=kind, pool=kind, priority=1.0)
        attempt, t = 1, start
        for when, error in retries:
            self._add(ev.StepStarted, t, step_id=step_id, step_kind=kind, attempt=attempt,
                      input=input or {})
            self._add(ev.StepRetrying, when, step_id=step_id, attempt=attempt, error=error,
                      error_type="BackendHTTPError", delay_s=0.1)
            attempt, t = attempt + 1, when + 0.1
        self._add(ev.StepStarted, t, step_id=step_id, step_kind=kind, attempt=attempt,
                  input=input or {})
        usage = ev.UsageModel(prompt_tokens=tokens[0], completion_tokens=tokens[1])
        if fail is not None:
            self._add(ev.StepFailed, end, step_id=step_id, attempt=attempt, error=fail,
                      error_type="StepError", raw=raw, usage=usage)
        else:
            self._add(ev.StepSucceeded, end, step_id=step_id, attempt=attempt, output=output,
                      raw=raw, usage=usage, latency_s=end - t, meta={})
        return self

    def skip(self, step_id: str, at: float, reason: str, cause: str | None = None) -> TraceBuilder:
        self._add(ev.StepSkipped, at, step_id=step_id, reason=reason, cause_step=cause)
        return self

    def finish(self, at: float, status: str = "succeeded", output: Any = None,
               error: str | None = None, tokens: tuple[int, int] = (0, 0)) -> TraceBuilder:
        self._add(ev.RunFinished, at, status=status, output=output, error=error,
                  usage=ev.UsageModel(prompt_tokens=tokens[0], completion_tokens=tokens[1]),
                  duration_s=at)
        return self


def _llm(prompt: str) -> dict[str, Any]:
    return {"prompt": prompt, "model": "default", "max_tokens": 256}


def research_trace(run_id: str = "research-1") -> TraceBuilder:
    """An LLMCompiler-style run: a plan streams steps, one retries, a joiner replans,
    an AGoT-style nested graph expands one step, and a final answer."""
    b = TraceBuilder(run_id, "research")
    b.start([
        {"id": "question", "prompt": "Restate: {{ inputs.q }}"},
        {"id": "plan", "planner": "llmcompiler", "goal": "{{ steps.question.output }}"},
        {"id": "answer", "prompt": "Answer using {{ steps.plan.output }}"},
    ], inputs={"q": "How many moons do Mars and Jupiter have together?"})
    b.run_step("question", "llm", 0.0, 0.6, output="Count the moons of Mars and Jupiter.",
               input={"prompt": "Restate: How many moons do Mars and Jupiter have together?"},
               raw="Count the moons of Mars and Jupiter.", tokens=(42, 11))
    b._add(ev.StepStarted, 0.6, step_id="plan", step_kind="plan", attempt=1,
           input={"goal": "Count the moons of Mars and Jupiter."})
    b.patch("plan", [
        {"id": "plan.1", "kind": "tool", "deps": [], "parent": "plan",
         "spec": {"tool": "search", "args": {"q": "moons of Mars"}}},
        {"id": "plan.2", "kind": "tool", "deps": [], "parent": "plan",
         "spec": {"tool": "search", "args": {"q": "moons of Jupiter"}}},
    ], at=0.9)
    b.patch("plan", [{"id": "plan.3", "kind": "tool", "deps": ["plan.1", "plan.2"],
                      "parent": "plan", "spec": {"tool": "calc"}}], at=1.1)
    b.run_step("plan.1", "tool", 0.95, 1.4, output={"moons": 2},
               input={"tool": "search", "args": {"q": "moons of Mars"}})
    b.run_step("plan.2", "tool", 0.95, 2.9, output={"moons": 95},
               input={"tool": "search", "args": {"q": "moons of Jupiter"}},
               retries=[(1.6, "HTTP 503 from the search backend")])
    b.run_step("plan.3", "tool", 2.95, 3.0, output=97,
               input={"tool": "calc", "args": {"expression": "2 + 95"}})
    b.patch("plan", [
        {"id": "plan.join", "kind": "llm", "deps": ["plan.3"], "parent": "plan",
         "spec": _llm("Is 97 a final answer?")},
    ], at=3.0, reason="joiner")
    b.run_step("plan.join", "llm", 3.0, 3.8, output={"decision": "replan"},
               input={"prompt": "Results: $1={moons: 2}, $2={moons: 95}, $3=97. Finish or replan?"},
               raw='{"decision": "replan", "why": "check the count date"}', tokens=(180, 24))
    b._add(ev.PlanDecision, 3.8, step_id="plan", round=1, action="replan",
           reason="the count may be out of date", raw='{"action": "replan"}')
    b._add(ev.PlanError, 3.82, step_id="plan", round=2, attempt=1, code="unknown_tool",
           error="line 1: tool 'wikipedia' is not allowed", line=1,
           raw='1. wikipedia("moons")', will_retry=True, by="planner")
    b._add(ev.PlanError, 5.77, step_id="plan", round=2, attempt=1, code="bad_joiner",
           error="neither Finish nor Replan", raw="97?", will_retry=True, by="joiner")
    b._add(ev.PlanDecision, 5.78, step_id="plan", round=2, action="finish", answer="97")
    b.patch("plan", [
        {"id": "plan.4", "kind": "llm", "deps": ["plan.3"], "parent": "plan",
         "spec": _llm("Verify {{ steps['plan.3'].output }}")},
        {"id": "plan.4.a", "kind": "llm", "deps": [], "parent": "plan.4",
         "spec": _llm("Mars moons as of 2025?")},
        {"id": "plan.4.b", "kind": "llm", "deps": [], "parent": "plan.4",
         "spec": _llm("Jupiter moons as of 2025?")},
        {"id": "plan.4.c", "kind": "llm", "deps": ["plan.4.a", "plan.4.b"], "parent": "plan.4",
         "spec": _llm("Sum them")},
    ], at=3.85, reason="replan 1")
    b._add(ev.StepStarted, 3.9, step_id="plan.4", step_kind="llm", attempt=1,
           input={"prompt": "Verify 97 (expanded: complex)"})
    b.run_step("plan.4.a", "llm", 3.95, 4.6, output="2", tokens=(60, 3),
               input={"prompt": "Mars moons as of 2025?"}, raw="2")
    b.run_step("plan.4.b", "llm", 3.95, 5.3, output="95", tokens=(60, 4),
               input={"prompt": "Jupiter moons as of 2025?"}, raw="95")
    b.run_step("plan.4.c", "llm", 5.3, 5.7, output="97", tokens=(40, 3),
               input={"prompt": "Sum 2 and 95"}, raw="97")
    b._add(ev.StepSucceeded, 5.75, step_id="plan.4", attempt=1, output="97 (verified)",
           usage=ev.UsageModel(prompt_tokens=90, completion_tokens=12), latency_s=1.85)
    b._add(ev.StepSucceeded, 5.8, step_id="plan", attempt=1, output="97",
           usage=ev.UsageModel(prompt_tokens=310, completion_tokens=96), latency_s=5.2)
    b.run_step("answer", "llm", 5.8, 6.6, output="Mars and Jupiter have 97 moons together.",
               input={"prompt": "Answer using 97",
                      "system": "You are a careful astronomer."},
               raw="Mars and Jupiter have 97 moons together.", tokens=(120, 14))
    b.finish(6.65, output="Mars and Jupiter have 97 moons together.", tokens=(902, 167))
    return b


REPLAN_CASES = [
    ("replan", True), ("Replan 2", True), ("llmcompiler replan", True), ("plan", False),
    ("map", False), ("agot expand", False), ("llmcompiler plan 1", False),
    ("llmcompiler plan 2", True), ("static plan 12", True), ("spawn 3 children", False),
    ("sample n=4", False),
]
"""``graph_patched`` reasons, and whether the viewer marks their steps as replanned."""

RESEARCH_REPLANNED = {"plan.4", "plan.4.a", "plan.4.b", "plan.4.c"}


def big_trace(run_id: str, n_steps: int, *, seed: int = 7, width: int = 100) -> TraceBuilder:
    """A planner run of ``n_steps`` steps in layers of about ``width``, each step
    depending on one to three steps of the layer before; every step succeeds."""
    rng = random.Random(seed)
    b = TraceBuilder(run_id, "big-plan")
    b.start([{"id": "plan", "planner": "llmcompiler", "goal": "everything"}])
    b._add(ev.StepStarted, 0.0, step_id="plan", step_kind="plan", attempt=1, input={})
    ids = [f"s{i}" for i in range(n_steps)]
    layers = [ids[i:i + width] for i in range(0, n_steps, width)]
    patch: list[dict[str, Any]] = []
    for li, layer in enumerate(layers):
        for sid in layer:
            deps = rng.sample(layers[li - 1], k=min(len(layers[li - 1]), rng.randint(1, 3))) \
                if li else []
            patch.append({"id": sid, "kind": "tool", "deps": deps, "parent": None,
                          "spec": {"tool": "calc"}})
    b.patch("plan", patch, at=0.01)
    t = 0.02
    for layer in layers:
        for sid in layer:
            dur = rng.uniform(0.01, 0.05)
            b.run_step(sid, "tool", t, t + dur, output=rng.randint(0, 1000),
                       input={"tool": "calc", "args": {"expression": "1+1"}})
        t += 0.06
    b._add(ev.StepSucceeded, t, step_id="plan", attempt=1, output="done")
    b.finish(t + 0.01)
    return b


def xss_trace(run_id: str = "xss-run") -> TraceBuilder:
    """A run whose every string field carries script and event-handler payloads."""
    b = TraceBuilder(run_id, f"evil{XSS}")
    b.start([{"id": "step_a", "prompt": f"hello {XSS}"}], inputs={"q": XSS})
    b.run_step("step_a", "llm", 0.0, 0.5, output={"html": XSS, "svg": XSS_SVG},
               input={"prompt": f"Rendered prompt {XSS}", "system": XSS_SVG}, raw=XSS,
               tokens=(5, 5))
    b.patch("step_a", [{"id": f"x{XSS}", "kind": "tool", "deps": ["step_a"],
                        "parent": "step_a", "spec": {"tool": XSS}}], at=0.5,
            reason=f"replan {XSS}")
    b.run_step(f"x{XSS}", "tool", 0.6, 0.9, fail=f"tool failed: {XSS}",
               input={"tool": XSS, "args": {"html": XSS_IMG}})
    b.finish(1.0, status="failed", error=f"run failed {XSS}")
    return b


async def append_all(store: TraceStore, events: list[Any], batch: int = 2000) -> None:
    """Write hand-built events in batches, as the scheduler would."""
    for i in range(0, len(events), batch):
        await store.append(events[i:i + batch])


def stopped_run(run_id: str, *, writer_alive: bool, t0: float = T0, **parent: Any
                ) -> list[Any]:
    """A run stored as running, written by this process (``writer_alive``) or by one
    that has ended (then it is interrupted); it never finishes. It starts at ``t0``.
    ``parent``: its ``run_started``'s parent fields (a sub-workflow's run:
    ``parent_run_id``, ``parent_step_id``, ``parent_attempt``)."""
    if writer_alive:
        pid = os.getpid()
    else:
        proc = subprocess.Popen([sys.executable, "-c", "pass"])
        proc.wait()
        pid = proc.pid
    b = TraceBuilder(run_id, "stopped", t0=t0)
    b.start([{"id": "a", "tool": "calc", "args": {"expression": "1"}},
             {"id": "b", "tool": "sleep", "args": {"seconds": 60}}],
            writer_host=host_name(), writer_pid=pid, writer_start=process_start(pid), **parent)
    b.run_step("a", "tool", 0.0, 0.1, output=1)
    return b.events


def resumed_run(run_id: str, t0: float = T0) -> list[Any]:
    """A run cancelled (its step b cancelled, the run finished as cancelled), then resumed
    by this process, which runs b again (and a step c, added) and has not finished; its
    times are seconds after ``t0``."""
    pid = os.getpid()
    writer = {"writer_host": host_name(), "writer_pid": pid, "writer_start": process_start(pid)}
    b = TraceBuilder(run_id, "resumed", t0=t0)
    steps = [{"id": "a", "tool": "calc", "args": {"expression": "1"}},
             {"id": "b", "tool": "sleep", "args": {"seconds": 60}}]
    b.start(steps, **writer)
    b.run_step("a", "tool", 0.0, 0.1, output=1, tokens=(3, 1))
    b._add(ev.StepStarted, 0.2, step_id="b", step_kind="tool", attempt=1, input={})
    b._add(ev.StepCancelled, 0.5, step_id="b", reason="run cancelled")
    b.finish(0.5, status="cancelled", tokens=(3, 1))
    b.start(steps, at=5.0, resumed=True, **writer)
    b._add(ev.StepStarted, 5.1, step_id="b", step_kind="tool", attempt=2, input={})
    b.patch("b", [{"id": "c", "kind": "tool", "deps": [], "spec": {"tool": "calc"}}], at=5.1)
    b.run_step("c", "tool", 5.1, 5.2, output=2, tokens=(2, 2))
    return b.events


def many_runs(n: int, workflow: Callable[[int], str] = lambda i: f"wf{i % 3}") -> list[Any]:
    """Events of ``n`` small finished runs, started one second apart (run-0000 first)."""
    events: list[Any] = []
    for i in range(n):
        b = TraceBuilder(f"run-{i:04d}", workflow(i), t0=T0 + i)
        b.start([{"id": "only", "tool": "calc", "args": {"expression": "1"}}])
        b.run_step("only", "tool", 0.0, 0.1, output=1)
        b.finish(0.2, status="failed" if i % 5 == 0 else "succeeded")
        events.extend(b.events)
    return events


def run_sync(fn: Callable[[], Any]) -> Any:
    """Run an async callable to completion (for scripts)."""
    return anyio.run(fn)


class FlakyStore(MemoryStore):
    """A MemoryStore whose reads fail while :attr:`down` holds a reason, as a database
    server that restarts does."""

    down: str | None = None

    def _check_up(self) -> None:
        if self.down is not None:
            raise StoreUnavailable(self.down, url="flaky://")

    async def events(self, run_id: str, *, after_seq: int | None = None,
                     kinds: Collection[str] | None = None) -> list[Any]:
        self._check_up()
        return await super().events(run_id, after_seq=after_seq, kinds=kinds)

    async def events_page(self, run_id: str, *, after_seq: int | None = None,
                          limit: int) -> list[StoredEvent]:
        self._check_up()
        return await super().events_page(run_id, after_seq=after_seq, limit=limit)

    async def last_event(self, run_id: str, *, after_seq: int | None = None
                         ) -> StoredEvent | None:
        self._check_up()
        return await super().last_event(run_id, after_seq=after_seq)

    async def run_info(self, run_id: str) -> RunInfo | None:
        self._check_up()
        return await super().run_info(run_id)

    async def list_runs(self, filters: RunFilter | None = None, *, limit: int = 50,
                        offset: int = 0) -> list[RunInfo]:
        self._check_up()
        return await super().list_runs(filters, limit=limit, offset=offset)

    async def set_down(self, reason: str | None) -> None:
        self.down = reason


class CountingReader:
    """A TraceReader over a store that records each call that reads events: (run id,
    after_seq) for ``events`` and ``events_page``, with the page's ``limit`` in
    :attr:`pages`, and for ``last_event`` in :attr:`lasts`; and the reads of run rows:
    ``list_runs``'s filters in :attr:`listings`, ``run_info``'s run ids in :attr:`infos`."""

    def __init__(self, store: TraceStore) -> None:
        self.store = store
        self.calls: list[tuple[str, int | None]] = []
        self.pages: list[int] = []
        self.whole: list[str] = []  # the runs read by `events`, with no limit
        self.lasts: list[tuple[str, int | None]] = []
        self.listings: list[RunFilter | None] = []
        self.infos: list[str] = []

    async def list_runs(self, filters: RunFilter | None = None, *, limit: int = 50,
                        offset: int = 0) -> list[RunInfo]:
        self.listings.append(filters)
        return await self.store.list_runs(filters, limit=limit, offset=offset)

    async def events(self, run_id: str, *, after_seq: int | None = None,
                     kinds: Collection[str] | None = None) -> list[StoredEvent]:
        self.calls.append((run_id, after_seq))
        self.whole.append(run_id)
        return await self.store.events(run_id, after_seq=after_seq, kinds=kinds)

    async def events_page(self, run_id: str, *, after_seq: int | None = None,
                          limit: int) -> list[StoredEvent]:
        self.calls.append((run_id, after_seq))
        self.pages.append(limit)
        return await self.store.events_page(run_id, after_seq=after_seq, limit=limit)

    async def last_event(self, run_id: str, *, after_seq: int | None = None
                         ) -> StoredEvent | None:
        self.lasts.append((run_id, after_seq))
        return await self.store.last_event(run_id, after_seq=after_seq)

    async def run_info(self, run_id: str) -> RunInfo | None:
        self.infos.append(run_id)
        return await self.store.run_info(run_id)
