"""Scheduler overhead per step with a zero-latency executor, and makespan vs critical path.

Usage: python bench/scheduler_bench.py [--sizes 1000 10000 100000] [--random-dags 20]

Prints two tables:
1. chain and wide fan-out of N steps: compile time, run time, µs per step (run only),
   and peak traced memory (tracemalloc) of the run.
2. random DAGs of sleeping steps with unlimited capacity: makespan vs the critical path
   computed from the same latencies, for short (5-60 ms) and LLM-scale (50-500 ms) steps.
   Each hop pays asyncio's timer granularity (~1 ms) besides the scheduler's own work.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
import tracemalloc
from typing import Any

import anyio

from orchestrator.graph.compile import compile_workflow
from orchestrator.runtime.contracts import Result, Task
from orchestrator.runtime.engine import execute
from orchestrator.runtime.registry import Registry
from orchestrator.spec.models import ToolStep, WorkflowSpec


class ZeroExecutor:
    """Returns at once: what remains is the scheduler's own cost."""

    async def execute(self, task: Task, ctx: Any) -> Result:
        return Result(output=1)

    def estimate_s(self, step: Any, model: Any) -> float:
        return 0.0


class SleepExecutor:
    """Sleeps for the step's `args.ms` milliseconds."""

    async def execute(self, task: Task, ctx: Any) -> Result:
        await anyio.sleep(task.inputs["args"]["ms"] / 1000)
        return Result(output=task.inputs["args"]["ms"])

    def estimate_s(self, step: Any, model: Any) -> float:
        return 0.0


def _spec(name: str, steps: list[ToolStep], tool_concurrency: int = 1_000_000) -> WorkflowSpec:
    return WorkflowSpec.model_validate({"name": name, "steps": [],
                                        "defaults": {"tool_concurrency": tool_concurrency}}
                                       ).model_copy(update={"steps": steps})


def chain(n: int) -> WorkflowSpec:
    steps = [ToolStep(id="s0", tool="noop")]
    steps += [ToolStep(id=f"s{i}", tool="noop", after=[f"s{i-1}"]) for i in range(1, n)]
    return _spec(f"chain{n}", steps)


def fanout(n: int) -> WorkflowSpec:
    steps = [ToolStep(id=f"s{i}", tool="noop") for i in range(n)]
    return _spec(f"fan{n}", steps)


async def _run(spec: WorkflowSpec, executor: Any) -> tuple[float, float, int, str]:
    reg = Registry()
    reg.executors["tool"] = executor
    t0 = time.perf_counter()
    graph = compile_workflow(spec, tool_names={"noop"})
    t1 = time.perf_counter()
    gc.collect()
    tracemalloc.start()
    result = await execute(graph, {}, registry=reg)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, peak, result.status


async def _run_untraced(spec: WorkflowSpec, executor: Any) -> float:
    return (await _timed(spec, executor))[0]


async def _timed(spec: WorkflowSpec, executor: Any) -> tuple[float, float]:
    """Wall and CPU seconds of one run (CPU time is robust to other load on the machine)."""
    reg = Registry()
    reg.executors["tool"] = executor
    graph = compile_workflow(spec, tool_names={"noop"})
    t0, c0 = time.perf_counter(), time.process_time()
    result = await execute(graph, {}, registry=reg)
    assert result.ok, result.error
    return time.perf_counter() - t0, time.process_time() - c0


def overhead_table(sizes: list[int]) -> None:
    print("| shape | steps | compile s | run s (wall) | µs/step (wall) | µs/step (CPU) | "
          "peak MiB (traced) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for shape, make in (("chain", chain), ("fan-out", fanout)):
        for n in sizes:
            spec = make(n)
            wall, cpu = min(anyio.run(_timed, spec, ZeroExecutor()) for _ in range(2))
            comp_s, _, peak, status = anyio.run(_run, spec, ZeroExecutor())
            assert status == "succeeded"
            print(f"| {shape} | {n} | {comp_s:.2f} | {wall:.2f} | {wall / n * 1e6:.1f} | "
                  f"{cpu / n * 1e6:.1f} | {peak / 2**20:.0f} |", flush=True)


def random_dag(rng: random.Random, n: int, p: float,
               lo_ms: int, hi_ms: int) -> tuple[WorkflowSpec, float, int]:
    ms = [rng.randint(lo_ms, hi_ms) for _ in range(n)]
    deps: list[list[int]] = []
    for i in range(n):
        deps.append([j for j in range(max(0, i - 10), i) if rng.random() < p])
    finish: list[float] = []
    hops: list[int] = []
    for i in range(n):
        prev = max(deps[i], key=lambda j: finish[j], default=None)
        finish.append((finish[prev] if prev is not None else 0.0) + ms[i])
        hops.append((hops[prev] if prev is not None else 0) + 1)
    steps = [ToolStep(id=f"s{i}", tool="noop", args={"ms": ms[i]}, after=[f"s{j}" for j in deps[i]])
             for i in range(n)]
    last = max(range(n), key=lambda i: finish[i])
    path = [last]
    while True:
        prev = max(deps[path[-1]], key=lambda j: finish[j], default=None)
        if prev is None:
            break
        path.append(prev)
    return _spec(f"rand{n}", steps), max(finish) / 1000, [ms[i] for i in reversed(path)]


async def _bare_chain(ms: list[int]) -> float:
    """The critical path slept step by step with plain anyio: the timer-only baseline."""
    t0 = time.perf_counter()
    for m in ms:
        await anyio.sleep(m / 1000)
    return time.perf_counter() - t0


def makespan_table(count: int, seed: int, lo_ms: int, hi_ms: int) -> None:
    rng = random.Random(seed)
    print(f"step latencies uniform in [{lo_ms}, {hi_ms}] ms, unlimited capacity\n")
    print("| dag | steps | steps on critical path | critical path s | bare sleeps s | "
          "makespan s | makespan / critical path | Ponder's own ms per hop |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    ratios = []
    warm, _, _ = random_dag(random.Random(-1), 10, 0.3, 1, 2)
    anyio.run(_run_untraced, warm, SleepExecutor())  # imports, entry points: not the scheduler's
    for k in range(count):
        spec, cp, path = random_dag(rng, rng.randint(20, 120), rng.uniform(0.1, 0.4), lo_ms, hi_ms)
        gc.collect()  # garbage of earlier runs is not this run's cost
        span = anyio.run(_run_untraced, spec, SleepExecutor())
        bare = anyio.run(_bare_chain, path)
        ratios.append(span / cp)
        print(f"| {k} | {len(spec.steps)} | {len(path)} | {cp:.3f} | {bare:.3f} | {span:.3f} | "
              f"{span / cp:.4f} | {(span - bare) / len(path) * 1000:.2f} |")
    print(f"\nmean makespan / critical path {sum(ratios) / len(ratios):.4f}, worst {max(ratios):.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    ap.add_argument("--random-dags", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    overhead_table(args.sizes)
    print()
    makespan_table(args.random_dags, args.seed, 5, 60)
    print()
    makespan_table(args.random_dags, args.seed, 50, 500)


if __name__ == "__main__":
    main()
