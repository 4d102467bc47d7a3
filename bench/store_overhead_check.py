"""End-to-end overhead of the SQLite trace store per step, against the in-memory store.

A workflow of ``--steps`` zero-latency tool steps, run by the engine with a
:class:`StoreHook`, as a CHAIN (each step waits on the last, so every step's events
are a batch of their own, committed before the next step starts) and as a FAN-OUT
(independent steps, whose events the scheduler hands over in large batches).

Each shape runs ``--repeat`` times on each store, alternating, and the medians are
reported: wall time and CPU time (all threads of the process) per step, and the
SQLite store's overhead over memory. On a machine shared with other jobs, wall time
is noisy: compare CPU time, and the overhead of runs made side by side.

The target (the store's issue): at most 100 us per step more than memory, on the
10k-step chain.

Usage::

    python bench/store_overhead_check.py [--steps 10000] [--repeat 3] [--synchronous FULL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).parent))

from scheduler_bench import ZeroExecutor, chain, fanout

from orchestrator.graph.compile import compile_workflow
from orchestrator.runtime.engine import execute
from orchestrator.runtime.registry import Registry
from orchestrator.store import StoreHook, open_store


async def run_once(spec: object, url: str) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``spec`` through the store at ``url``."""
    registry = Registry()
    registry.executors["tool"] = ZeroExecutor()
    graph = compile_workflow(spec, tool_names={"noop"})  # type: ignore[arg-type]
    store = await open_store(url)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        await execute(graph, {}, registry=registry, hooks=[StoreHook(store)])
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each store, alternating")
    parser.add_argument("--synchronous", help="SQLite's synchronous mode (default: NORMAL)")
    args = parser.parse_args()
    n: int = args.steps
    query = f"?synchronous={args.synchronous}" if args.synchronous else ""
    with tempfile.TemporaryDirectory(prefix="ponder-overhead-") as tmp:
        for make in (chain, fanout):
            spec = make(n)
            memory: list[tuple[float, float]] = []
            sqlite: list[tuple[float, float]] = []
            for i in range(args.repeat):
                memory.append(anyio.run(run_once, spec, "memory://"))
                url = f"sqlite:///{tmp}/{make.__name__}-{i}.db{query}"
                sqlite.append(anyio.run(run_once, spec, url))

            def us(runs: list[tuple[float, float]], k: int) -> float:
                return float(statistics.median(r[k] for r in runs)) / n * 1e6

            print(
                f"{make.__name__:<7} {n} steps, median of {args.repeat}: "
                f"memory {us(memory, 0):4.0f}us wall {us(memory, 1):4.0f}us cpu | "
                f"sqlite {us(sqlite, 0):4.0f}us wall {us(sqlite, 1):4.0f}us cpu | "
                f"overhead {us(sqlite, 0) - us(memory, 0):4.0f}us wall "
                f"{us(sqlite, 1) - us(memory, 1):4.0f}us cpu per step",
                flush=True,
            )


if __name__ == "__main__":
    main()
