"""Trace store benchmark: what persisting events costs a run, and whether concurrent
writers lose anything.

1. Overhead: one run of ``--steps`` steps, 4 events per step (graph_patched,
   step_scheduled, step_started, step_succeeded with a realistic prompt and output),
   cut into batches of 1-8 events the way a busy scheduler hands them to its hooks,
   appended through :class:`StoreHook` (so each batch is committed before the next).
   Reported per step (wall and CPU time, all threads: on a shared machine, compare
   CPU), per event, and per batch (the latency a step waits on its hook), with the
   time to read the run's events back and to fold them (``ponder show``).
2. Concurrency: ``--runs`` runs of ``--run-steps`` steps, each run its own task, all
   through one SqlStore on SQLite; every run's events are then read back and checked.
3. With ``--pg URL``: the overhead on PostgreSQL, and the concurrency check with
   ``--pg-procs`` processes, each with its own store, sharing the runs between them.

Usage::

    python bench/store_bench.py [--steps 10000] [--runs 200] [--run-steps 50]
                                [--pg postgresql+psycopg://user@host/db] [--pg-procs 4]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio

from orchestrator.runtime import events as ev
from orchestrator.store import (
    RunFilter,
    StoredEvent,
    StoreHook,
    TraceStore,
    fold_events,
    open_store,
)

PROMPT = "You are a careful planner. " * 16  # about 430 characters, like a rendered prompt


def run_events(run_id: str, n_steps: int) -> list[StoredEvent]:
    """A run of ``n_steps`` steps: run_started, 4 events per step, run_finished."""
    seq = iter(range(1_000_000_000))
    t = time.time()
    out: list[StoredEvent] = [
        ev.RunStarted(run_id=run_id, seq=next(seq), ts=t, workflow="bench", inputs={"q": "x"})
    ]
    usage = ev.UsageModel(prompt_tokens=120, completion_tokens=48)
    for i in range(n_steps):
        sid = f"s{i}"
        out += [
            ev.GraphPatched(run_id=run_id, seq=next(seq), ts=t, source_step="plan",
                            reason="plan", steps=[{"id": sid, "kind": "llm", "deps": ["plan"],
                                                   "parent": "plan", "spec": {"model": "m"}}]),
            ev.StepScheduled(run_id=run_id, seq=next(seq), ts=t, step_id=sid, step_kind="llm",
                             pool="llm", priority=float(n_steps - i)),
            ev.StepStarted(run_id=run_id, seq=next(seq), ts=t, step_id=sid, step_kind="llm",
                           attempt=1, input={"prompt": PROMPT, "system": "Be brief."}),
            ev.StepSucceeded(run_id=run_id, seq=next(seq), ts=t, step_id=sid, attempt=1,
                             output={"answer": f"step {i} says " + "ok " * 60}, raw="ok",
                             usage=usage, latency_s=0.8, meta={"model": "m", "ttft_s": 0.1}),
        ]  # fmt: skip
    out.append(ev.RunFinished(run_id=run_id, seq=next(seq), ts=t, status="succeeded", usage=usage))
    return out


def batches(events: list[StoredEvent], rng: random.Random) -> Iterator[list[StoredEvent]]:
    """Cut events into batches of 1 to 8, as a scheduler's hook calls would."""
    i = 0
    while i < len(events):
        size = rng.randint(1, 8)
        yield events[i : i + size]
        i += size


@dataclass
class Overhead:
    backend: str
    steps: int
    events: int
    batches: int
    seconds: float
    cpu_seconds: float
    latencies: list[float]
    read_s: float
    fold_s: float

    def row(self) -> str:
        lat = sorted(self.latencies)
        p50 = statistics.median(lat) * 1e6
        p99 = lat[int(len(lat) * 0.99)] * 1e6
        return (
            f"{self.backend:<10} {self.steps:>7} {self.events:>7} {self.batches:>7} "
            f"{self.seconds * 1e6 / self.steps:>10.1f} {self.cpu_seconds * 1e6 / self.steps:>10.1f} "
            f"{self.seconds * 1e6 / self.events:>10.1f} "
            f"{p50:>10.1f} {p99:>10.1f} {self.seconds:>8.2f} {self.read_s * 1e3:>9.0f} "
            f"{self.fold_s * 1e3:>9.0f}"
        )


async def measure_overhead(name: str, url: str, n_steps: int, seed: int) -> Overhead:
    events = run_events(f"bench-{uuid.uuid4().hex[:8]}", n_steps)
    chunks = list(batches(events, random.Random(seed)))
    latencies: list[float] = []
    async with await open_store(url) as store:
        hook = StoreHook(store)
        start, cpu_start = time.perf_counter(), time.process_time()
        for chunk in chunks:
            t0 = time.perf_counter()
            await hook(chunk)
            latencies.append(time.perf_counter() - t0)
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start
        t0 = time.perf_counter()
        back = await store.events(events[0].run_id)
        read_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        run = fold_events(back)
        fold_s = time.perf_counter() - t0
        assert len(back) == len(events) and len(run.steps) == n_steps
        await store.delete_runs([events[0].run_id])
    return Overhead(
        name, n_steps, len(events), len(chunks), seconds, cpu_seconds, latencies, read_s, fold_s
    )


async def append_runs(store: TraceStore, run_ids: list[str], n_steps: int, seed: int) -> None:
    """Append every run concurrently, one task per run, in scheduler-sized batches."""

    async def one(run_id: str, rng: random.Random) -> None:
        for chunk in batches(run_events(run_id, n_steps), rng):
            await store.append(chunk)

    async with anyio.create_task_group() as tg:
        for i, run_id in enumerate(run_ids):
            tg.start_soon(one, run_id, random.Random(seed + i))


async def verify(store: TraceStore, run_ids: list[str], n_steps: int) -> int:
    """How many events are missing or out of place across the runs."""
    expected = 4 * n_steps + 2
    lost = 0
    for run_id in run_ids:
        seqs = [e.seq for e in await store.events(run_id)]
        lost += expected - sum(1 for i, s in enumerate(seqs) if s == i)
    return lost


async def concurrent_sqlite(url: str, n_runs: int, n_steps: int, seed: int) -> str:
    prefix = uuid.uuid4().hex[:8]
    run_ids = [f"{prefix}-{i}" for i in range(n_runs)]
    async with await open_store(url) as store:
        start = time.perf_counter()
        await append_runs(store, run_ids, n_steps, seed)
        seconds = time.perf_counter() - start
        lost = await verify(store, run_ids, n_steps)
        finished = len(await store.list_runs(RunFilter(workflow="bench", finished=True),
                                             limit=n_runs * 2))  # fmt: skip
    n_events = n_runs * (4 * n_steps + 2)
    return (
        f"sqlite     1 proc  {n_runs} runs x {n_steps} steps = {n_events} events in "
        f"{seconds:.2f}s ({n_events / seconds:,.0f} events/s, "
        f"{seconds * 1e6 / (n_runs * n_steps):.0f} us/step); lost events: {lost}; "
        f"finished runs listed: {finished}"
    )


def _pg_worker(url: str, run_ids: list[str], n_steps: int, seed: int) -> float:
    async def main() -> float:
        async with await open_store(url) as store:
            start = time.perf_counter()
            await append_runs(store, run_ids, n_steps, seed)
            return time.perf_counter() - start

    return anyio.run(main)


async def concurrent_pg(url: str, n_runs: int, n_steps: int, procs: int, seed: int) -> str:
    prefix = uuid.uuid4().hex[:8]
    run_ids = [f"{prefix}-{i}" for i in range(n_runs)]
    async with await open_store(url, auto_upgrade=True):
        pass  # create the schema once, before the workers race to
    shares = [run_ids[i::procs] for i in range(procs)]
    start = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(procs) as pool:
        args = [(url, share, n_steps, seed + 1000 * i) for i, share in enumerate(shares)]
        await anyio.to_thread.run_sync(lambda: pool.starmap(_pg_worker, args))
    seconds = time.perf_counter() - start
    async with await open_store(url) as store:
        lost = await verify(store, run_ids, n_steps)
        await store.delete_runs(run_ids)
    n_events = n_runs * (4 * n_steps + 2)
    return (
        f"postgres   {procs} proc  {n_runs} runs x {n_steps} steps = {n_events} events in "
        f"{seconds:.2f}s incl. process start ({n_events / seconds:,.0f} events/s); "
        f"lost events: {lost}"
    )


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="ponder-bench-") as tmp:
        targets = [("memory", "memory://"), ("sqlite", f"sqlite:///{tmp}/o.db")]
        if args.pg:
            targets.append(("postgres", args.pg))
        print(f"Persistence overhead: 1 run, {args.steps} steps, 4 events/step, "
              "batches of 1-8 events, each awaited through StoreHook")  # fmt: skip
        print(f"{'backend':<10} {'steps':>7} {'events':>7} {'batches':>7} {'us/step':>10} "
              f"{'cpu us/st':>10} {'us/event':>10} {'p50 us/b':>10} {'p99 us/b':>10} {'total s':>8} "
              f"{'read ms':>9} {'fold ms':>9}")  # fmt: skip
        for name, url in targets:
            print((await measure_overhead(name, url, args.steps, args.seed)).row(), flush=True)
        print()
        print("Concurrent appends (one task per run, batches of 1-8 events):")
        sqlite_url = f"sqlite:///{Path(tmp) / 'c.db'}"
        print(await concurrent_sqlite(sqlite_url, args.runs, args.run_steps, args.seed))
        if args.pg:
            print(await concurrent_pg(args.pg, args.runs, args.run_steps, args.pg_procs,
                                      args.seed))  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10_000, help="steps of the overhead run")
    parser.add_argument("--runs", type=int, default=200, help="concurrent runs")
    parser.add_argument("--run-steps", type=int, default=50, help="steps per concurrent run")
    parser.add_argument("--pg", metavar="URL", help="also benchmark this PostgreSQL database")
    parser.add_argument("--pg-procs", type=int, default=4, help="writer processes on PostgreSQL")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


if __name__ == "__main__":
    anyio.run(main, parse_args())
