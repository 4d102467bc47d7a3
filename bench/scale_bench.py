"""Scale: one run of up to 100,000 steps, and up to 1,000+ concurrent runs in one process.

Usage: python bench/scale_bench.py [--sizes 1000 10000 100000] [--runs 50 500 1000 5000]
                                   [--steps-per-run 20]

Two scenarios, zero-latency `tool` steps (so what is measured is Ponder itself):

* one run: a DAG of N steps (1k, 10k, 100k), each depending on one or two of the ten
  steps before it (data flows through a `${steps.X.output}` argument);
* concurrent runs: R runs of a 20-step DAG of the same kind, all started at once in
  one task group: 50, 500, 1,000 and 5,000 runs, i.e. 1k, 10k, 20k and 100k steps.

Each measurement runs in a fresh child process, because the process's maximum RSS
(``resource.getrusage``) only ever grows. The child compiles, runs once untraced
(time, max RSS) and once under ``tracemalloc`` (peak of Python allocations). The
tables show totals and per-step values, and how each grows from the smallest size to
the largest relative to the step count (1.00 = linear).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import anyio

from orchestrator.graph.compile import CompiledGraph, compile_workflow
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


def dag(n: int, seed: int = 0) -> WorkflowSpec:
    """`n` steps; step i depends on one or two of steps i-10 .. i-1."""
    rng = random.Random(seed)
    steps = []
    for i in range(n):
        window = list(range(max(0, i - 10), i))
        deps = sorted(rng.sample(window, min(len(window), rng.choice((1, 2)))))
        args = {"x": f"${{steps.s{deps[0]}.output}}"} if deps else {}
        steps.append(ToolStep(id=f"s{i}", tool="noop", args=args,
                              after=[f"s{d}" for d in deps[1:]]))
    spec = WorkflowSpec.model_validate({"name": f"dag{n}", "steps": [],
                                        "defaults": {"tool_concurrency": 1_000_000}})
    return spec.model_copy(update={"steps": steps})


def _rss_mib() -> float:
    """Maximum resident set size of this process so far (Linux: KiB, macOS: bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


async def _run_all(graph: CompiledGraph, runs: int) -> None:
    registry = Registry()
    registry.executors["tool"] = ZeroExecutor()
    failed: list[str] = []

    async def one() -> None:
        result = await execute(graph, {}, registry=registry)
        if not result.ok:
            failed.append(str(result.error))

    async with anyio.create_task_group() as tg:
        for _ in range(runs):
            tg.start_soon(one)
    assert not failed, failed[:3]


def child(scenario: str, total: int, per_run: int) -> dict[str, Any]:
    """One measurement (in a fresh process)."""
    size, runs = (total, 1) if scenario == "one run" else (per_run, total // per_run)
    t0 = time.perf_counter()
    graph = compile_workflow(dag(size), tool_names={"noop"})
    compile_s = time.perf_counter() - t0
    gc.collect()
    base_rss = _rss_mib()
    t0 = time.perf_counter()
    anyio.run(_run_all, graph, runs)
    run_s = time.perf_counter() - t0
    rss = _rss_mib()
    # a freshly compiled graph, so that what the first run caches on its graph (step
    # plans, compiled references, the spec's dump for run_started) is traced too
    graph = compile_workflow(dag(size), tool_names={"noop"})
    gc.collect()
    tracemalloc.start()
    anyio.run(_run_all, graph, runs)
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"scenario": scenario, "steps": size * runs, "runs": runs, "compile_s": compile_s,
            "run_s": run_s, "rss_mib": rss, "rss_growth_mib": rss - base_rss,
            "traced_peak_mib": traced_peak / 2**20}


def measure(scenario: str, total: int, per_run: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", scenario, str(total), str(per_run)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONHASHSEED": "0"})
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def table(rows: list[dict[str, Any]]) -> None:
    print("| scenario | steps | runs | compile s | run s | µs/step | max RSS MiB (growth "
          "during run) | traced peak MiB | traced KiB/step |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['scenario']} | {r['steps']:,} | {r['runs']:,} | {r['compile_s']:.2f} | "
              f"{r['run_s']:.2f} | {r['run_s'] / r['steps'] * 1e6:.1f} | {r['rss_mib']:.0f} "
              f"({r['rss_growth_mib']:+.0f}) | {r['traced_peak_mib']:.1f} | "
              f"{r['traced_peak_mib'] * 1024 / r['steps']:.2f} |", flush=True)


def growth(rows: list[dict[str, Any]]) -> None:
    print("\n| scenario | from → to steps | time growth / step growth | traced peak growth / "
          "step growth | RSS added by the run: growth / step growth |")
    print("|---|---|---:|---:|---:|")
    for scenario in dict.fromkeys(r["scenario"] for r in rows):
        mine = [r for r in rows if r["scenario"] == scenario]
        pairs = list(itertools.pairwise(mine))
        if len(mine) > 2:
            pairs.append((mine[0], mine[-1]))
        for lo, hi in pairs:
            k = hi["steps"] / lo["steps"]
            print(f"| {scenario} | {lo['steps']:,} → {hi['steps']:,} | "
                  f"{hi['run_s'] / lo['run_s'] / k:.2f} | "
                  f"{hi['traced_peak_mib'] / lo['traced_peak_mib'] / k:.2f} | "
                  f"{hi['rss_growth_mib'] / max(lo['rss_growth_mib'], 1.0) / k:.2f} |")
    print("\n(1.00 = linear; above 1 grows faster than the step count. The RSS a small run "
          "adds is a few MiB, mostly allocator slack, so ratios from 1k are rough.)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    ap.add_argument("--runs", type=int, nargs="+", default=[50, 500, 1_000, 5_000])
    ap.add_argument("--steps-per-run", type=int, default=20)
    ap.add_argument("--only", choices=["one", "concurrent"], help="run one scenario only")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        scenario, total, per_run = args.child
        print(json.dumps(child(scenario, int(total), int(per_run))))
        return
    cpu = next((ln.split(":", 1)[1].strip() for ln in
                Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    print(f"machine: {os.cpu_count()} CPUs (nproc), {cpu}, Python {platform.python_version()}\n")
    rows = []
    if args.only != "concurrent":
        rows += [measure("one run", n, args.steps_per_run) for n in args.sizes]
    if args.only != "one":
        per = args.steps_per_run
        rows += [measure(f"concurrent runs of {per}", r * per, per) for r in args.runs]
    table(rows)
    growth(rows)


if __name__ == "__main__":
    main()
