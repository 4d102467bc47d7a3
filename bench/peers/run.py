"""Ponder next to LangGraph on the same workflows, in one process, round after round.

Usage: python bench/peers/run.py [--rounds 7] [--quick]

Needs the `bench` extra (``pip install -e '.[bench]'``, which installs langgraph).

Prints two Markdown tables:

1. framework overhead per node, zero-latency nodes: 3-node chain, 100-node chain,
   fan-out of 5 and of 100 with a join. Each sample times a batch of invocations;
   the table shows the median over rounds of microseconds per node. LangGraph is
   timed both with ``ainvoke`` (async nodes) and ``invoke`` (sync nodes), and the
   ratio uses whichever is faster. Ponder is timed compiled once (like LangGraph's
   ``compile()``) and, for reference, through ``Workflow.run`` (compiled once, checked each run).
2. makespan with latency: uneven branches (sleeps) and a ParallelQA-style workflow
   on the shared simulated engine, next to the critical path and the sum of each
   superstep's slowest node (what a superstep engine must wait).

The frameworks alternate within each round (A-B, then B-A) so that drift in the
machine's speed affects both alike.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from langgraph_side import LangGraphRunner, LangGraphSyncRunner
from ponder_side import PonderRunner, PonderSdkRunner
from workloads import Workload, chain, fan_out, parallel_qa, uneven

from executors.llm.simulated import SimulatedBackend
from orchestrator.spec.models import ModelConfig

# batch_slowdown 0: a call's latency does not depend on what else runs, so the critical
# path is the same for every schedule and the makespans compare scheduling alone
ENGINE = {"prefill_s_per_token": 0.0002, "decode_s_per_token": 0.01, "capacity": 8,
          "batch_slowdown": 0.0, "time_scale": 1.0}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or cpu
    return (f"{os.cpu_count()} CPUs (nproc), {cpu}, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}; langgraph {version('langgraph')}, "
            f"ponder {version('ponder')}")


async def _time_async(fn: Callable[[], Awaitable[Any]], batch: int) -> float:
    t0 = time.perf_counter()
    for _ in range(batch):
        await fn()
    return (time.perf_counter() - t0) / batch


def _time_sync(fn: Callable[[], Any], batch: int) -> float:
    t0 = time.perf_counter()
    for _ in range(batch):
        fn()
    return (time.perf_counter() - t0) / batch


def sample(runner: Any, batch: int) -> float:
    """Seconds per invocation, over one batch (after one warm-up invocation)."""
    gc.collect()
    if isinstance(runner, LangGraphSyncRunner):
        runner.run()
        return _time_sync(runner.run, batch)

    async def go() -> float:
        await runner.run()
        return await _time_async(runner.run, batch)

    return anyio.run(go)


def measure(runners: dict[str, Any], rounds: int, batch: int) -> dict[str, float]:
    """Median seconds per invocation of each runner, alternating their order by round."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for r in range(rounds):
        for name in names if r % 2 == 0 else list(reversed(names)):
            times[name].append(sample(runners[name], batch))
    return {name: statistics.median(ts) for name, ts in times.items()}


def overhead_table(rounds: int, quick: bool) -> None:
    scale = 0.2 if quick else 1.0
    workloads = [chain(3, batch=int(400 * scale)), chain(100, batch=int(20 * scale)),
                 fan_out(5, batch=int(200 * scale)), fan_out(100, batch=int(10 * scale))]
    print("| workload | nodes | Ponder µs/node | Ponder `Workflow.run` µs/node | LangGraph "
          "`ainvoke` µs/node | LangGraph `invoke` µs/node | Ponder / LangGraph (best) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for w in workloads:
        n = len(w.nodes)
        med = measure({"ponder": PonderRunner(w), "sdk": PonderSdkRunner(w),
                       "lg_async": LangGraphRunner(w), "lg_sync": LangGraphSyncRunner(w)},
                      rounds, max(1, w.batch))
        best_lg = min(med["lg_async"], med["lg_sync"])
        us = {k: v / n * 1e6 for k, v in med.items()}
        print(f"| {w.name} | {n} | {us['ponder']:.1f} | {us['sdk']:.1f} | "
              f"{us['lg_async']:.1f} | {us['lg_sync']:.1f} | "
              f"{med['ponder'] / best_lg:.3f} (1/{best_lg / med['ponder']:.1f}) |",
              flush=True)


def makespan_table(rounds: int) -> None:
    print("| workload | critical path ms | sum of superstep maxima ms | Ponder ms | "
          "LangGraph ms | Ponder / critical path | LangGraph / critical path | "
          "Ponder / LangGraph |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    cases: list[tuple[Workload, bool]] = [(uneven(), False), (parallel_qa(), True)]
    for w, llm in cases:
        backend = SimulatedBackend(ModelConfig(backend="simulated", options=ENGINE)) if llm \
            else None
        ponder = PonderRunner(w, backend)
        med = measure({"ponder": ponder, "lg": LangGraphRunner(w, backend)}, rounds, 1)
        # LLM latencies (prefill + decode) measured per call; sleeps are known
        latency = anyio.run(ponder.step_latencies) if llm else None
        cp, layered = w.critical_path_s(latency), w.layered_s(latency)
        print(f"| {w.name} | {cp * 1e3:.0f} | {layered * 1e3:.0f} | {med['ponder'] * 1e3:.1f} | "
              f"{med['lg'] * 1e3:.1f} | {med['ponder'] / cp:.3f} | {med['lg'] / cp:.3f} | "
              f"{med['ponder'] / med['lg']:.3f} |", flush=True)
    print("\n(critical path and superstep sums from each node's own latency: the sleeps, or "
          "each LLM call's prefill + decode as measured on the simulated engine)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="smaller batches, 3 rounds")
    args = ap.parse_args()
    rounds = 3 if args.quick else args.rounds
    print(f"machine: {machine()}\nrounds: {rounds} (medians)\n")
    overhead_table(rounds, args.quick)
    print()
    makespan_table(rounds)


if __name__ == "__main__":
    main()
