"""The workloads both frameworks run, described once (shape and latencies).

A workload is a small DAG: each node has its dependencies and, for the timed ones,
its latency (a sleep, or LLM tokens on the shared simulated engine). The Ponder and
LangGraph builders turn the same description into each framework's own graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Node:
    """One node: its id, dependencies and work.

    :param sleep_s: seconds the node sleeps (``anyio.sleep`` / ``asyncio.sleep``).
    :param tokens: for LLM nodes, ``max_tokens`` on the simulated engine (0: not an LLM).
    """

    id: str
    deps: tuple[str, ...] = ()
    sleep_s: float = 0.0
    tokens: int = 0


@dataclass(frozen=True)
class Workload:
    name: str
    nodes: tuple[Node, ...]
    #: invocations per timed sample (small graphs are timed in batches)
    batch: int = 1
    notes: str = ""
    meta: dict[str, float] = field(default_factory=dict)

    def critical_path_s(self, latency: dict[str, float] | None = None) -> float:
        """Longest chain of node latencies (``latency``: measured, by node id; else sleeps)."""
        finish: dict[str, float] = {}
        for n in self.nodes:  # dependencies come first
            own = latency[n.id] if latency else n.sleep_s
            finish[n.id] = max((finish[d] for d in n.deps), default=0.0) + own
        return max(finish.values())

    def layered_s(self, latency: dict[str, float] | None = None) -> float:
        """Sum over supersteps of the slowest node in each (what a BSP engine waits)."""
        layer: dict[str, int] = {}
        for n in self.nodes:
            layer[n.id] = max((layer[d] + 1 for d in n.deps), default=0)
        worst: dict[int, float] = {}
        for n in self.nodes:
            own = latency[n.id] if latency else n.sleep_s
            worst[layer[n.id]] = max(worst.get(layer[n.id], 0.0), own)
        return sum(worst.values())


def chain(n: int, batch: int = 1) -> Workload:
    nodes = [Node("n0")] + [Node(f"n{i}", (f"n{i - 1}",)) for i in range(1, n)]
    return Workload(f"chain of {n}", tuple(nodes), batch)


def fan_out(n: int, batch: int = 1) -> Workload:
    """A source, `n` parallel branches, a join that reads all of them."""
    branches = [Node(f"b{i}", ("src",)) for i in range(n)]
    nodes = [Node("src"), *branches, Node("join", tuple(b.id for b in branches))]
    return Workload(f"fan-out {n} + join", tuple(nodes), batch)


def uneven(short_s: float = 0.02, long_s: float = 0.2) -> Workload:
    """short -> long, in parallel with one long step, then a join."""
    nodes = (Node("short", sleep_s=short_s), Node("other", sleep_s=long_s),
             Node("after_short", ("short",), sleep_s=long_s),
             Node("join", ("after_short", "other")))
    return Workload("uneven branches", nodes)


def parallel_qa() -> Workload:
    """ParallelQA-style: three look-up branches of different depth, then an answer.

    The branches ask the engine for different numbers of tokens, as look-ups of
    different entities would; a deeper branch extracts a number and computes with it.
    """
    nodes = (
        Node("lookup_a", tokens=30),
        Node("lookup_b", tokens=10),
        Node("extract_b", ("lookup_b",), tokens=16),
        Node("lookup_c", tokens=20),
        Node("extract_c", ("lookup_c",), tokens=6),
        Node("compare_c", ("extract_c",), tokens=6),
        Node("answer", ("lookup_a", "extract_b", "compare_c"), tokens=12),
    )
    return Workload("ParallelQA (simulated engine)", nodes)
