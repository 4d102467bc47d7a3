"""Runs under injected faults: transient ones are retried to the same output, permanent
ones fail exactly the faulted steps (and what depends on them) and keep every result."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from chaos.support import INPUTS, MIXED, downstream, layered, shout, step_deps, workflow

from executors.chaos import (
    ChaosBackend,
    ChaosExecutor,
    Faults,
    chaos_backend_factory,
    chaos_tool,
)
from executors.llm.simulated import SimulatedBackend
from executors.tool import ToolExecutor
from orchestrator import Workflow
from orchestrator.errors import (
    BackendHTTPError,
    BackendUnavailable,
    ConfigError,
    StepTimeout,
    is_retryable,
)
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio

TRANSIENT = {"error_rate": 0.18, "timeout_rate": 0.06, "drop_mid_stream_rate": 0.06,
             "latency_spike_rate": 0.1, "spike_s": 0.05}  # 30% of calls fail, 10% are slow


class Recorder:
    def __init__(self) -> None:
        self.events: list[Any] = []

    async def __call__(self, batch: Sequence[Any]) -> None:
        self.events.extend(batch)


def mixed(seed: int | None, **faults: Any) -> tuple[Workflow, list[Any]]:
    """The mixed workflow; with a seed, chaos around its backend, tool executor and tool."""
    wf = workflow(MIXED)
    if seed is None:
        wf.register_backend("chaos", SimulatedBackend)
        wf.register_tool(shout)
        return wf, []
    backend = chaos_backend_factory(SimulatedBackend, inner_backend="simulated", seed=seed,
                                    **faults)
    executor = ChaosExecutor(ToolExecutor(), seed=seed + 1000, **faults)
    tool = chaos_tool(shout, seed=seed + 2000, **faults)
    wf.register_backend("chaos", backend)
    wf.register_executor("tool", executor)
    wf.register_tool(tool)
    return wf, [backend, executor, tool]


def injected(wrappers: list[Any]) -> dict[str, int]:
    backend, executor, tool = wrappers
    total: dict[str, int] = {}
    stats = [b.stats for b in backend.instances] + [executor.stats, tool.chaos_stats]
    for s in stats:
        for kind, n in s.injected.items():
            total[kind] = total.get(kind, 0) + n
    total["calls"] = sum(s.calls for s in stats)
    return total


async def test_transient_faults_every_run_completes_with_the_same_output() -> None:
    baseline = await mixed(None)[0].run(INPUTS)
    assert baseline.ok, baseline.error
    expected = {s.id: s.output for s in baseline.steps}
    totals: dict[str, int] = {}
    for seed in range(30):
        wf, wrappers = mixed(seed, **TRANSIENT)
        rec = Recorder()
        result = await wf.run(INPUTS, hooks=[rec])
        assert result.ok, f"seed {seed}: {result.error}"
        assert result.output == baseline.output, f"seed {seed}"
        assert {s.id: s.output for s in result.steps} == expected, f"seed {seed}"
        # each step succeeded exactly once, whatever it took
        done = [e.step_id for e in rec.events if e.kind == "step_succeeded"]
        assert sorted(done) == sorted(expected)
        for kind, n in injected(wrappers).items():
            totals[kind] = totals.get(kind, 0) + n
    failures = sum(totals.get(k, 0) for k in ("error", "timeout", "drop"))
    # the faults really were injected, at about the asked-for rate
    assert 0.2 < failures / totals["calls"] < 0.4, totals
    assert min(totals.get(k, 0) for k in ("error", "timeout", "drop", "spike")) > 5, totals


async def test_spikes_past_the_step_timeout_are_retried_as_timeouts() -> None:
    retries = []
    for seed in range(6):
        wf, _ = mixed(seed, latency_spike_rate=0.5, spike_s=0.05)
        rec = Recorder()
        result = await wf.run(INPUTS, hooks=[rec])
        assert result.ok, result.error
        retries += [e for e in rec.events if e.kind == "step_retrying" and e.step_id == "ask2"]
    assert retries and {e.error_type for e in retries} == {"StepTimeout"}


@pytest.mark.parametrize("seed", range(12))
async def test_permanent_faults_fail_exactly_the_faulted_steps(seed: int) -> None:
    doc = layered(24)
    baseline_wf = workflow(doc)
    baseline = await baseline_wf.run()
    assert baseline.ok, baseline.error
    expected = {s.id: s.output for s in baseline.steps}

    wf = workflow(doc)
    # permanent errors on ~15% of steps, plus transient timeouts and drops that retry
    chaos = ChaosExecutor(ToolExecutor(), error_rate=0.15, timeout_rate=0.1,
                          drop_mid_stream_rate=0.1, permanent=True, seed=seed)
    wf.register_executor("tool", chaos)
    rec = Recorder()
    result = await wf.run(hooks=[rec])

    broken = {key for key, kind in chaos.stats.log if kind == "permanent"}
    assert broken, "pick seeds that break at least one step"
    assert result.status == "failed"
    status = {s.id: s.status for s in result.steps}
    skipped = downstream(step_deps(doc), sorted(broken))
    for sid in expected:
        if sid in broken:
            assert status[sid] == "failed", sid
        elif sid in skipped:
            assert status[sid] == "skipped", sid
        else:
            assert status[sid] == "succeeded", sid
    # every completed result is kept, in the result and in the events
    outputs = {s.id: s.output for s in result.steps if s.status == "succeeded"}
    assert outputs == {sid: expected[sid] for sid in outputs}
    from_events = {e.step_id: e.output for e in rec.events if e.kind == "step_succeeded"}
    assert from_events == outputs
    failed_events = {e.step_id: e.error_type for e in rec.events if e.kind == "step_failed"}
    assert set(failed_events) == broken
    assert set(failed_events.values()) <= {"ToolError", "BackendHTTPError", "BackendError"}
    # a permanent fault is not retried
    retried = {e.step_id for e in rec.events if e.kind == "step_retrying"}
    for sid in broken & retried:
        last = [e for e in rec.events if e.kind == "step_retrying" and e.step_id == sid][-1]
        assert last.error_type in ("StepTimeout", "BackendUnavailable")


async def test_permanent_backend_faults_fail_llm_steps_and_skip_dependents() -> None:
    wf, wrappers = mixed(3, error_rate=1.0, permanent=True)
    wf.register_executor("tool", ToolExecutor())  # only the LLM backend is broken
    result = await wf.run(INPUTS)
    assert result.status == "failed"
    status = {s.id: s.status for s in result.steps}
    assert status["ask"] == status["ask2"] == "failed"
    assert status["shouted"] == status["last"] == "skipped"
    for sid in ("a", "b", "total", "m"):
        assert status[sid] == "succeeded", sid
    assert wrappers[0].instances[0].stats.injected["permanent"] == 2  # no retry


# -- the wrapper itself ------------------------------------------------------------

def _request(text: str) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": text}], max_tokens=8)


def _sim() -> SimulatedBackend:
    return SimulatedBackend(ModelConfig(backend="simulated", options={"time_scale": 0.0}))


async def test_backend_draws_are_deterministic_and_transient_errors_are_retryable() -> None:
    seen: list[list[str]] = []
    for _ in range(2):
        backend = ChaosBackend(_sim(), error_rate=0.3, timeout_rate=0.1,
                               drop_mid_stream_rate=0.1, seed=5)
        kinds = []
        for i in range(200):
            try:
                await backend.complete(_request(f"q{i % 50}"))
                kinds.append("ok")
            except (BackendHTTPError, BackendUnavailable, StepTimeout) as exc:
                assert is_retryable(exc), exc
                kinds.append(type(exc).__name__ + str(getattr(exc, "status", "")))
        seen.append(kinds)
    assert seen[0] == seen[1]
    counts = {k: seen[0].count(k) for k in set(seen[0])}
    assert {"BackendHTTPError503", "BackendHTTPError429", "BackendUnavailable",
            "StepTimeout", "ok"} == set(counts)
    assert 0.4 < 1 - counts["ok"] / 200 < 0.6


async def test_permanent_backend_errors_are_not_retryable_and_stick() -> None:
    backend = ChaosBackend(_sim(), error_rate=0.5, permanent=True, seed=2)
    outcome: dict[str, list[bool]] = {}
    for _ in range(3):
        for i in range(40):
            try:
                await backend.complete(_request(f"q{i}"))
                outcome.setdefault(f"q{i}", []).append(True)
            except Exception as exc:
                assert not is_retryable(exc), exc
                outcome.setdefault(f"q{i}", []).append(False)
    assert all(len(set(v)) == 1 for v in outcome.values())  # sticky
    assert 5 < sum(not v[0] for v in outcome.values()) < 35


async def test_stream_drop_delivers_part_of_the_answer_then_fails() -> None:
    inner = _sim()
    backend = ChaosBackend(inner, drop_mid_stream_rate=1.0)
    got: list[str] = []
    with pytest.raises(BackendUnavailable):
        async for chunk in backend.stream(_request("hello there")):
            assert chunk.final is None
            got.append(chunk.text)
    assert got  # some text arrived first
    assert inner.stats.cancelled == 1  # the engine's work was abandoned, not leaked
    with pytest.raises(BackendUnavailable):
        await backend.complete(_request("hello there"))
    assert inner.stats.cancelled == 2
    assert backend.stats.injected["drop"] == 2


async def test_chaos_tool_keeps_signature_and_validation() -> None:
    from orchestrator.runtime.registry import tool_spec

    wrapped = chaos_tool(shout, error_rate=0.0)
    spec = tool_spec(wrapped)
    assert spec.name == "shout" and spec.arg_names == ["text"] and spec.is_async
    assert await wrapped(text="hi") == "HI"
    with pytest.raises(Exception, match="bad arguments"):
        spec.validate({"txt": "hi"})


@pytest.mark.parametrize("kwargs", [{"error_rate": 1.5}, {"timeout_rate": -0.1},
                                    {"error_rate": 0.6, "timeout_rate": 0.6},
                                    {"spike_s": -1}])
def test_bad_rates_are_config_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="chaos"):
        Faults(**kwargs)


def test_wrappers_satisfy_the_contracts() -> None:
    from orchestrator.runtime.contracts import Executor, LLMBackend

    assert isinstance(ChaosBackend(_sim()), LLMBackend)
    assert isinstance(ChaosExecutor(ToolExecutor()), Executor)
    assert ChaosBackend(_sim()).default_concurrency == 8  # the inner engine's capacity
