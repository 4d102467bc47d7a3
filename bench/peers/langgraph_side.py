"""The workloads as LangGraph graphs, written the way its documentation shows.

One ``StateGraph`` per workload; each node is a function returning a state update;
parallel writers share keys through reducers (``Annotated[list, operator.add]``,
a dict merge for LLM outputs); a node with several dependencies is joined with
``add_edge([a, b], node)``, which waits for all of them. Compiled once, invoked with
``ainvoke`` (async nodes) or ``invoke`` (sync nodes); no checkpointer, so nothing is
persisted (its fastest configuration). LLM nodes call the same SimulatedBackend
object as the Ponder steps, so both pay the same simulated engine latency.
"""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from workloads import Node, Workload

from orchestrator.runtime.contracts import LLMBackend, LLMRequest


def _merge(a: dict[str, str], b: dict[str, str]) -> dict[str, str]:
    return {**a, **b}


class State(TypedDict):
    out: Annotated[list[Any], operator.add]
    text: Annotated[dict[str, str], _merge]


def _async_node(n: Node, backend: LLMBackend | None) -> Any:
    if n.tokens:
        assert backend is not None

        async def llm(state: State) -> dict[str, Any]:
            context = " ".join(state["text"][d] for d in n.deps)
            prompt = f"{n.id}: {context}".strip()
            response = await backend.complete(LLMRequest(
                messages=[{"role": "user", "content": prompt}], max_tokens=n.tokens))
            return {"text": {n.id: response.text.strip()}}

        return llm
    if n.sleep_s:

        async def sleeper(state: State) -> dict[str, Any]:
            await asyncio.sleep(n.sleep_s)
            return {"out": [n.id]}

        return sleeper

    async def zero(state: State) -> dict[str, Any]:
        return {"out": [1]}

    return zero


def _sync_node(n: Node) -> Any:
    assert not n.tokens and not n.sleep_s

    def zero(state: State) -> dict[str, Any]:
        return {"out": [1]}

    return zero


def build(w: Workload, *, sync: bool = False, backend: LLMBackend | None = None) -> Any:
    """The compiled graph of a workload."""
    graph = StateGraph(State)
    for n in w.nodes:
        graph.add_node(n.id, _sync_node(n) if sync else _async_node(n, backend))
    has_successor = {d for n in w.nodes for d in n.deps}
    for n in w.nodes:
        if not n.deps:
            graph.add_edge(START, n.id)
        elif len(n.deps) == 1:
            graph.add_edge(n.deps[0], n.id)
        else:
            graph.add_edge(list(n.deps), n.id)  # waits for every dependency
        if n.id not in has_successor:
            graph.add_edge(n.id, END)
    return graph.compile()


class LangGraphRunner:
    """``ainvoke`` on a compiled graph (async nodes)."""

    def __init__(self, w: Workload, backend: LLMBackend | None = None) -> None:
        self.app = build(w, backend=backend)
        # one superstep per node of the longest chain, plus slack
        self.config = {"recursion_limit": len(w.nodes) + 10}

    async def run(self) -> Any:
        return await self.app.ainvoke({"out": [], "text": {}}, self.config)


class LangGraphSyncRunner:
    """``invoke`` on a compiled graph of sync nodes (zero-latency workloads only)."""

    def __init__(self, w: Workload) -> None:
        self.app = build(w, sync=True)
        self.config = {"recursion_limit": len(w.nodes) + 10}

    def run(self) -> Any:
        return self.app.invoke({"out": [], "text": {}}, self.config)
