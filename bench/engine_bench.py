"""Engine pools under load, on simulated GPU engines and a virtual clock.

Usage: python bench/engine_bench.py [--runs 200] [--engines 4] [--concurrency 32] [--seed 0]
       [--loads 1.0 2.0] [--no-sweep]
       python bench/engine_bench.py --starvation-order [--runs 3000] [--engines 3]
       [--concurrency 16]

Each run is a small DAG of LLM calls with realistic token counts, executed the way the
scheduler would: a call starts when its inputs are done, carries its run id, step id,
remaining critical path (``LLMRequest.priority``) and, for calls that share a parent
context, a ``prefix_key``. Every call goes through one ``pool`` backend of ``--engines``
``sim-engine`` members (Llama-3-8B on an H100, see docs/engines.md), each limited to
``--concurrency`` calls at once, as an operator caps an engine for its latency target.
Everything runs on the virtual clock (``executors.engines.run_virtual``): the times are
engine time, the wall time is printed apart.

Run shapes:

- short (ParallelQA-style, LLMCompiler): plan (700-token prompt, 120 out) -> 2-4 parallel
  calls (250 in, 60 out) -> join (900 in, 80 out). The 600-token planner prompt is
  shared by every short run.
- long (AGoT-style): 3 layers; a layer proposes (200 out), then 3 thoughts each get a
  complexity check (20 out) and an answer (350 out); one thought per layer expands into
  a nested 2x2 graph (250 out each); a final answer (400 out). Calls of a layer share
  its context (question, strategy, earlier answers: 1-3k tokens).
- spawn (Adaptive-Parallel-Reasoning-style, spawn-heavy): a 3k-token parent context
  spawns 8 children (+100 tokens each, 150 out) and a 4-sample vote (n=4, 60 out) on the
  same context, then joins (200 out).

Tables: policies (fifo, critical_path, program_aware) on 200 mixed runs (70% short, 30%
long, arriving within the first 5 s); routing (prefix affinity vs least loaded) on
spawn-heavy runs; the same mixed runs arriving one by one as a Poisson stream at
``--loads`` times the burst's fifo throughput (an open system: every policy serves the
same arrivals, so latency is compared at equal throughput); and how the policy gain
moves with load and mix (``--no-sweep`` skips that one). The first row of the policy
table is each run alone on an idle engine: the latency no scheduler can beat. The row
under fifo is each run's longest path of engine times under fifo, as if none of its
calls had waited for a slot: about what any order of the pool's queue can reach at
fifo's throughput, since full batches make every engine step slower whatever the order.

``--starvation-order`` runs only one scenario instead (docs/engines.md, *Policies*,
anti-starvation): ``--runs`` runs (default 3,000) all arriving at once, each a chain of
three calls (100 tokens out, each call starting when the one before it is done), on
``--engines`` engines (default 3) of ``--concurrency`` calls (default 16), so
overloaded that every run starves under ``program_aware``. It compares starving calls
served oldest run first (the pool's option ``starving_order: run``, its default) with
served by the call's arrival (``starving_order: arrival``, the order before), with
``fifo`` as a reference, and prints median and mean run latency and
makespan for each.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio

from executors.engines import PoolBackend, run_virtual
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.spec.models import ModelConfig

SECONDS_PER_TOKEN_ESTIMATE = 0.02  # what the LLM executor's estimate_s uses
WORDS = ("alpha", "beta", "gamma", "delta", "river", "stone", "cloud", "ember", "north",
         "quiet", "amber", "orbit", "maple", "cedar", "lumen", "pixel", "vector", "prism")


def text(rng: random.Random, tokens: int) -> str:
    """About ``tokens`` tokens (four characters each) of filler text."""
    out: list[str] = []
    size = 0
    while size < tokens * 4:
        word = rng.choice(WORDS)
        out.append(word)
        size += len(word) + 1
    return " ".join(out)


@dataclass
class Node:
    id: str
    prompt: str
    max_tokens: int
    deps: list[str] = field(default_factory=list)
    n: int = 1
    prefix_key: str | None = None
    priority: float = 0.0


@dataclass
class Run:
    id: str
    kind: str
    arrival: float
    nodes: dict[str, Node]
    finished: float = 0.0

    def set_priorities(self) -> None:
        """Each node's remaining critical path, as the scheduler computes it."""
        children: dict[str, list[str]] = {k: [] for k in self.nodes}
        for node in self.nodes.values():
            for dep in node.deps:
                children[dep].append(node.id)
        memo: dict[str, float] = {}

        def remaining(node_id: str) -> float:
            if node_id not in memo:
                own = self.nodes[node_id].max_tokens * SECONDS_PER_TOKEN_ESTIMATE
                memo[node_id] = own + max((remaining(c) for c in children[node_id]),
                                          default=0.0)
            return memo[node_id]

        for node in self.nodes.values():
            node.priority = remaining(node.id)


def short_run(run_id: str, rng: random.Random, shared: dict[str, str]) -> dict[str, Node]:
    system = shared.setdefault("planner", text(random.Random(7), 600))
    question = text(rng, 100)
    nodes = {"plan": Node("plan", f"{system}\n{question}", 120)}
    k = rng.randint(2, 4)
    for i in range(k):
        nodes[f"call{i}"] = Node(f"call{i}", f"Answer briefly.\n{text(rng, 250)}", 60, ["plan"])
    nodes["join"] = Node("join", f"{system}\n{question}\n{text(rng, 300)}", 80,
                         [f"call{i}" for i in range(k)])
    return nodes


def long_run(run_id: str, rng: random.Random, shared: dict[str, str]) -> dict[str, Node]:
    system = shared.setdefault("agot", text(random.Random(8), 500))
    context = f"{system}\n{text(rng, 200)}"
    nodes: dict[str, Node] = {}
    previous: list[str] = []
    for layer in range(3):
        key = f"{run_id}/L{layer}"
        propose = f"L{layer}.propose"
        nodes[propose] = Node(propose, f"{context}\nPropose thoughts.", 200, previous, prefix_key=key)
        answers = []
        for t in range(3):
            check, answer = f"L{layer}.t{t}.check", f"L{layer}.t{t}.answer"
            thought = text(rng, 60)
            nodes[check] = Node(check, f"{context}\n{thought}\nIs this complex?", 20, [propose],
                                prefix_key=key)
            deps = [check]
            if t == 0:  # the complex thought: a nested graph of 2 layers x 2 thoughts
                nested_context = f"{context}\n{thought}"
                inner_prev = [check]
                for nl in range(2):
                    inner = []
                    for nt in range(2):
                        nid = f"L{layer}.t0.n{nl}.{nt}"
                        nodes[nid] = Node(nid, f"{nested_context}\n{text(rng, 40)}", 250,
                                          inner_prev, prefix_key=f"{key}/nested")
                        inner.append(nid)
                    inner_prev = inner
                    nested_context += "\n" + text(rng, 250)
                deps = inner_prev
            nodes[answer] = Node(answer, f"{context}\n{thought}\nAnswer it.", 350, deps,
                                 prefix_key=key)
            answers.append(answer)
        context += "\n" + text(rng, 3 * 350)
        previous = answers
    nodes["final"] = Node("final", f"{context}\nFinal answer.", 400, previous)
    return nodes


def spawn_run(run_id: str, rng: random.Random, shared: dict[str, str]) -> dict[str, Node]:
    context = text(rng, 3000)
    key = f"{run_id}/parent"
    nodes = {"parent": Node("parent", f"{context}\nPlan the search.", 100, prefix_key=key)}
    for i in range(8):
        nodes[f"child{i}"] = Node(f"child{i}", f"{context}\nExplore branch {i}: {text(rng, 100)}",
                                  150, ["parent"], prefix_key=key)
    nodes["vote"] = Node("vote", f"{context}\nAnswer directly.", 60, ["parent"], n=4,
                         prefix_key=key)
    nodes["join"] = Node("join", f"{context}\nChildren returned: {text(rng, 8 * 40)}", 200,
                         [f"child{i}" for i in range(8)] + ["vote"], prefix_key=key)
    return nodes


SHAPES: dict[str, Callable[[str, random.Random, dict[str, str]], dict[str, Node]]] = {
    "short": short_run, "long": long_run, "spawn": spawn_run}


def workload(mix: dict[str, int], seed: int, arrival_window_s: float) -> list[Run]:
    rng = random.Random(seed)
    shared: dict[str, str] = {}
    kinds = [k for k, count in mix.items() for _ in range(count)]
    rng.shuffle(kinds)
    runs = []
    for i, kind in enumerate(kinds):
        run = Run(f"run{i:03d}", kind, rng.uniform(0, arrival_window_s),
                  SHAPES[kind](f"run{i:03d}", rng, shared))
        run.set_priorities()
        runs.append(run)
    return runs


def poisson_arrivals(runs: list[Run], rate_per_s: float, seed: int) -> list[Run]:
    """The same runs (same shapes, same order) arriving as a Poisson stream of
    ``rate_per_s`` runs a second: an open system, where every policy serves the same
    arrivals and so the same throughput, and latency is compared at that rate."""
    rng = random.Random(seed + 1000)
    clock = 0.0
    out = []
    for run in runs:
        out.append(Run(run.id, run.kind, clock, run.nodes))
        clock += rng.expovariate(rate_per_s)
    return out


@dataclass
class Outcome:
    latencies: dict[str, float]  # by run id
    kinds: dict[str, str]
    no_wait: dict[str, float]  # by run id: its critical path of engine times (no pool wait)
    makespan: float
    prefill_tokens: int
    cached_tokens: int
    decode_tokens: int
    preemptions: int
    wall_s: float
    iteration_ms: float = 0.0  # mean engine iteration (decode step plus prefill chunks)


async def _execute(pool: PoolBackend, run: Run,
                   engine_s: dict[tuple[str, str], float] | None = None) -> None:
    await anyio.sleep(run.arrival)
    done = {node_id: anyio.Event() for node_id in run.nodes}

    async def call(node: Node) -> None:
        for dep in node.deps:
            await done[dep].wait()
        response = await pool.complete(LLMRequest(
            messages=[{"role": "user", "content": node.prompt}], max_tokens=node.max_tokens,
            n=node.n, temperature=0.7 if node.n > 1 else 0.0, priority=node.priority,
            run_id=run.id, step_id=node.id, request_id=f"{run.id}/{node.id}/1",
            prefix_key=node.prefix_key))
        if engine_s is not None:
            engine_s[run.id, node.id] = response.latency_s
        done[node.id].set()

    async with anyio.create_task_group() as tg:
        for node in run.nodes.values():
            tg.start_soon(call, node)
    run.finished = anyio.current_time()


def simulate(runs: list[Run], *, engines: int, concurrency: int, policy: str,
             routing: str, starving_order: Literal["run", "arrival"] = "run") -> Outcome:
    """Run ``runs`` through one pool on the virtual clock.

    :param starving_order: how ``program_aware`` orders starving calls: oldest run first
        (``run``, the pool's default) or by the call's arrival (``arrival``, the order
        before): the pool's ``starving_order`` option.
    """
    config = ModelConfig(backend="pool", model="llama-3-8b", options={
        "policy": policy, "routing": routing, "shared": False,
        "starving_order": starving_order,
        "members": [{"backend": "sim-engine", "name": "h100", "replicas": engines,
                     "concurrency": concurrency, "model": "llama-3-8b"}]})
    engine_s: dict[tuple[str, str], float] = {}

    async def main() -> Outcome:
        pool = PoolBackend(config)
        async with anyio.create_task_group() as tg:
            for run in runs:
                tg.start_soon(_execute, pool, run, engine_s)
        counters = [m.backend.counters for m in pool.members]  # type: ignore[attr-defined]
        await pool.aclose()
        return Outcome({r.id: r.finished - r.arrival for r in runs}, {r.id: r.kind for r in runs},
                       {r.id: _engine_path(r, engine_s) for r in runs},
                       anyio.current_time(), sum(c.prefill_tokens for c in counters),
                       sum(c.cached_tokens for c in counters),
                       sum(c.decode_tokens for c in counters),
                       sum(c.preemptions for c in counters), 0.0,
                       1000 * sum(c.busy_s for c in counters)
                       / max(1, sum(c.iterations for c in counters)))

    wall = time.perf_counter()
    outcome = run_virtual(main)
    outcome.wall_s = time.perf_counter() - wall
    return outcome


def _engine_path(run: Run, engine_s: dict[tuple[str, str], float]) -> float:
    """The run's longest path of engine times: its latency had none of its calls waited
    at the pool, each still taking as long at its engine as it did."""
    memo: dict[str, float] = {}

    def upto(node_id: str) -> float:
        if node_id not in memo:
            memo[node_id] = engine_s[run.id, node_id] + max(
                (upto(dep) for dep in run.nodes[node_id].deps), default=0.0)
        return memo[node_id]

    return max(upto(node_id) for node_id in run.nodes)


def isolated(runs: list[Run]) -> dict[str, float]:
    """Each run's latency alone on an idle engine: what no scheduler can beat."""
    config = ModelConfig(backend="pool", model="llama-3-8b", options={
        "shared": False, "members": [{"backend": "sim-engine", "model": "llama-3-8b"}]})

    async def main() -> dict[str, float]:
        out = {}
        for run in runs:
            pool = PoolBackend(config)  # a fresh engine: no warm prefix cache either
            start = anyio.current_time()
            await _execute(pool, Run(run.id, run.kind, 0.0, run.nodes))
            out[run.id] = anyio.current_time() - start
            await pool.aclose()
        return out

    return run_virtual(main)


def _latencies(outcome: Outcome, kind: str | None = None) -> list[float]:
    return [v for k, v in outcome.latencies.items()
            if kind is None or outcome.kinds[k] == kind]


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def policy_table(runs: list[Run], engines: int, concurrency: int) -> dict[str, Outcome]:
    print(f"### Policies: {len(runs)} mixed runs "
          f"({sum(r.kind == 'short' for r in runs)} short, "
          f"{sum(r.kind == 'long' for r in runs)} long), {engines} engines x "
          f"{concurrency} calls, prefix-affinity routing\n")
    print("| policy | mean run latency (s) | p95 (s) | mean short (s) | mean long (s) "
          "| makespan (s) | runs/min | output tok/s | engine iteration (ms) | wall (s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    alone = isolated(runs)
    lat = list(alone.values())
    short = [alone[r.id] for r in runs if r.kind == "short"]
    long = [alone[r.id] for r in runs if r.kind == "long"]
    print(f"| (each run alone on an idle engine) | {statistics.mean(lat):.1f} | "
          f"{_p95(lat):.1f} | {statistics.mean(short):.1f} | {statistics.mean(long):.1f} "
          "| | | | | |")
    outcomes = {}
    for policy in ("fifo", "critical_path", "program_aware"):
        o = simulate(runs, engines=engines, concurrency=concurrency, policy=policy,
                     routing="prefix_affinity")
        outcomes[policy] = o
        lat = _latencies(o)
        print(f"| {policy} | {statistics.mean(lat):.1f} | {_p95(lat):.1f} | "
              f"{statistics.mean(_latencies(o, 'short')):.1f} | "
              f"{statistics.mean(_latencies(o, 'long')):.1f} | {o.makespan:.1f} | "
              f"{60 * len(runs) / o.makespan:.1f} | {o.decode_tokens / o.makespan:,.0f} | "
              f"{o.iteration_ms:.1f} | {o.wall_s:.1f} |")
        if policy == "fifo":
            # What any order of the pool's queue could reach at fifo's throughput: every
            # call of every run served the moment it is ready (no wait for a slot), each
            # still taking as long at its engine as it did under fifo's full batches.
            lat = list(o.no_wait.values())
            print(f"| (fifo's engine times, no call ever waiting at the pool) | "
                  f"{statistics.mean(lat):.1f} | {_p95(lat):.1f} | "
                  f"{statistics.mean(_no_wait(o, 'short')):.1f} | "
                  f"{statistics.mean(_no_wait(o, 'long')):.1f} | | | | | |")
    print()
    return outcomes


def _no_wait(outcome: Outcome, kind: str) -> list[float]:
    return [v for k, v in outcome.no_wait.items() if outcome.kinds[k] == kind]


def sweep_table(args: argparse.Namespace) -> None:
    """Mean-latency gain of program_aware over fifo as load and mix change."""
    print(f"### Sensitivity: program_aware vs fifo, {args.runs} runs, {args.engines} engines\n")
    print("| short share | calls per engine | fifo mean (s) | program_aware mean (s) | gain "
          "| fifo short (s) | program_aware short (s) | makespan ratio |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for share in (0.7, 0.85):
        short = round(args.runs * share)
        runs = workload({"short": short, "long": args.runs - short}, args.seed,
                        args.arrival_window)
        for concurrency in (64, 32, 16):
            result = {}
            for policy in ("fifo", "program_aware"):
                o = simulate(runs, engines=args.engines, concurrency=concurrency,
                             policy=policy, routing="prefix_affinity")
                result[policy] = (statistics.mean(_latencies(o)),
                                  statistics.mean(_latencies(o, "short")), o.makespan)
            fifo, aware = result["fifo"], result["program_aware"]
            print(f"| {share:.0%} | {concurrency} | {fifo[0]:.1f} | {aware[0]:.1f} | "
                  f"{fifo[0] / aware[0]:.2f}x | {fifo[1]:.1f} | {aware[1]:.1f} | "
                  f"{aware[2] / fifo[2]:.2f} |")
    print()


def open_table(runs: list[Run], engines: int, concurrency: int, capacity_per_s: float,
               loads: tuple[float, ...], seed: int) -> dict[float, dict[str, Outcome]]:
    """The mixed runs arriving one by one (Poisson) at a share of the pool's capacity
    (the burst fifo run's throughput): latency at equal throughput, as serving papers
    compare schedulers."""
    print(f"### Open arrivals: the same {len(runs)} mixed runs arriving as a Poisson stream, "
          f"{engines} engines x {concurrency} calls; load = arrival rate / the burst's fifo "
          f"throughput ({60 * capacity_per_s:.0f} runs/min)\n")
    print("| load | runs/min | policy | mean run latency (s) | p95 (s) | mean short (s) "
          "| mean long (s) | last run done (s) | gain in mean vs fifo |")
    print("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    results: dict[float, dict[str, Outcome]] = {}
    for load in loads:
        arriving = poisson_arrivals(runs, load * capacity_per_s, seed)
        results[load] = {}
        for policy in ("fifo", "critical_path", "program_aware"):
            o = simulate(arriving, engines=engines, concurrency=concurrency, policy=policy,
                         routing="prefix_affinity")
            results[load][policy] = o
            mean = statistics.mean(_latencies(o))
            gain = statistics.mean(_latencies(results[load]["fifo"])) / mean
            print(f"| {load:.0%} | {60 * load * capacity_per_s:.0f} | {policy} | {mean:.1f} | "
                  f"{_p95(_latencies(o)):.1f} | {statistics.mean(_latencies(o, 'short')):.1f} | "
                  f"{statistics.mean(_latencies(o, 'long')):.1f} | {o.makespan:.1f} | "
                  f"{gain:.2f}x |")
    print()
    return results


def routing_table(runs: list[Run], engines: int, concurrency: int) -> dict[str, Outcome]:
    print(f"### Routing: {len(runs)} spawn-heavy runs, {engines} engines x {concurrency} calls, "
          "program_aware policy\n")
    print("| routing | prefill tokens | cached prompt tokens | prefix hit rate "
          "| mean run latency (s) | makespan (s) | wall (s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    outcomes = {}
    for routing in ("least_loaded", "prefix_affinity"):
        o = simulate(runs, engines=engines, concurrency=concurrency, policy="program_aware",
                     routing=routing)
        outcomes[routing] = o
        total = o.prefill_tokens + o.cached_tokens
        print(f"| {routing} | {o.prefill_tokens:,} | {o.cached_tokens:,} | "
              f"{o.cached_tokens / total:.1%} | {statistics.mean(_latencies(o)):.1f} | "
              f"{o.makespan:.1f} | {o.wall_s:.1f} |")
    print()
    return outcomes


def chain_runs(count: int, seed: int, steps: int = 3, tokens: int = 100) -> list[Run]:
    """``count`` runs arriving at once, each a chain of ``steps`` calls of ``tokens`` out
    after a short prompt (50 tokens of its own: no shared prefix)."""
    rng = random.Random(seed)
    runs = []
    for i in range(count):
        nodes: dict[str, Node] = {}
        for step in range(steps):
            node_id = f"s{step}"
            nodes[node_id] = Node(node_id, text(rng, 50), tokens,
                                  [f"s{step - 1}"] if step else [])
        run = Run(f"run{i:04d}", "chain", 0.0, nodes)
        run.set_priorities()
        runs.append(run)
    return runs


STARVATION_ROWS: tuple[tuple[str, str, Literal["run", "arrival"]], ...] = (
    ("fifo", "fifo", "run"),
    ("program_aware, starving calls by the call's arrival", "program_aware", "arrival"),
    ("program_aware, starving calls oldest run first", "program_aware", "run"))


def starvation_table(runs: list[Run], engines: int, concurrency: int) -> dict[str, Outcome]:
    """How ``program_aware`` orders starving calls, in a pool where every run starves.

    :returns: each row's outcome, by ``fifo``, ``arrival`` and ``run``.
    """
    calls = sum(len(r.nodes) for r in runs)
    print(f"### Starving calls: {len(runs)} runs of {calls // max(1, len(runs))} calls one "
          f"after another, all arriving at once, {engines} engines x {concurrency} calls, "
          "least-loaded routing\n")
    print("| order | median run latency (s) | mean (s) | p95 (s) | makespan (s) | wall (s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    outcomes: dict[str, Outcome] = {}
    for label, policy, order in STARVATION_ROWS:
        o = simulate(runs, engines=engines, concurrency=concurrency, policy=policy,
                     routing="least_loaded", starving_order=order)
        outcomes["fifo" if policy == "fifo" else order] = o
        lat = _latencies(o)
        print(f"| {label} | {statistics.median(lat):.1f} | {statistics.mean(lat):.1f} | "
              f"{_p95(lat):.1f} | {o.makespan:.1f} | {o.wall_s:.1f} |")
    print()
    return outcomes


def starvation_main(args: argparse.Namespace) -> dict[str, Any]:
    runs = chain_runs(args.runs if args.runs is not None else 3000, args.seed)
    outcomes = starvation_table(runs, args.engines if args.engines is not None else 3,
                                args.concurrency if args.concurrency is not None else 16)
    return {name: {"median_s": statistics.median(_latencies(o)), "makespan_s": o.makespan}
            for name, o in outcomes.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None,
                        help="200 (3,000 with --starvation-order)")
    parser.add_argument("--spawn-runs", type=int, default=100)
    parser.add_argument("--engines", type=int, default=None,
                        help="4 (3 with --starvation-order)")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="calls at once per engine: 32 (16 with --starvation-order)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arrival-window", type=float, default=5.0)
    parser.add_argument("--no-sweep", action="store_true", help="skip the sensitivity table")
    parser.add_argument("--loads", type=float, nargs="*", default=[1.0, 2.0],
                        help="open-arrival loads (shares of the burst's fifo throughput); "
                             "none skips that table")
    parser.add_argument("--starvation-order", action="store_true",
                        help="only compare how program_aware orders starving calls "
                             "(see the module docstring)")
    args = parser.parse_args(argv)
    for name, value in (("runs", args.runs), ("engines", args.engines),
                        ("concurrency", args.concurrency), ("spawn_runs", args.spawn_runs)):
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, not {value}")
    if args.starvation_order:
        return starvation_main(args)
    args.runs = 200 if args.runs is None else args.runs
    args.engines = 4 if args.engines is None else args.engines
    args.concurrency = 32 if args.concurrency is None else args.concurrency
    short = round(args.runs * 0.7)
    mixed = workload({"short": short, "long": args.runs - short}, args.seed, args.arrival_window)
    policies = policy_table(mixed, args.engines, args.concurrency)
    capacity = len(mixed) / policies["fifo"].makespan
    if args.loads:
        open_table(mixed, args.engines, args.concurrency, capacity, tuple(args.loads),
                   args.seed)
    spawn = workload({"spawn": args.spawn_runs}, args.seed + 1, args.arrival_window)
    routing = routing_table(spawn, args.engines, args.concurrency)
    if not args.no_sweep:
        sweep_table(args)

    fifo = statistics.mean(_latencies(policies["fifo"]))
    aware = statistics.mean(_latencies(policies["program_aware"]))
    fewer = routing["least_loaded"].prefill_tokens / max(1, routing["prefix_affinity"].prefill_tokens)
    tput = policies["program_aware"].makespan / policies["fifo"].makespan
    print("### Targets\n")
    print("| target | measured | met |")
    print("| --- | ---: | --- |")
    bound = fifo / statistics.mean(policies["fifo"].no_wait.values())
    own = fifo / statistics.mean(policies["program_aware"].no_wait.values())
    print(f"| program_aware >= 1.4x lower mean run latency than fifo | {fifo / aware:.2f}x "
          f"(makespan ratio {tput:.2f}; no call waiting at the pool would give {bound:.2f}x "
          f"at fifo's engine times, {own:.2f}x at program_aware's) | "
          f"{'yes' if fifo / aware >= 1.4 else 'no'} |")
    print(f"| prefix affinity >= 1.5x fewer prefill tokens than least loaded | {fewer:.2f}x | "
          f"{'yes' if fewer >= 1.5 else 'no'} |")
    return {"latency_ratio": fifo / aware, "prefill_ratio": fewer, "makespan_ratio": tput,
            "no_wait_ratio": bound}


if __name__ == "__main__":
    main()
