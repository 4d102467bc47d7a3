"""The workloads as Ponder workflows.

Zero-latency and sleeping nodes are `tool` steps run by a registered executor
(`ZeroExecutor` / `SleepExecutor`, as in bench/scheduler_bench.py); each step's
arguments reference its dependencies' outputs, so the data really flows. LLM nodes
are `llm` steps on a backend alias served by the shared SimulatedBackend object.
"""

from __future__ import annotations

import re
from typing import Any

import anyio
from workloads import Workload

from orchestrator.graph.compile import CompiledGraph, compile_workflow
from orchestrator.runtime.contracts import LLMBackend, Result, Task
from orchestrator.runtime.engine import execute
from orchestrator.runtime.registry import Registry
from orchestrator.sdk import Workflow
from orchestrator.spec.models import LLMStep, ToolStep, WorkflowSpec


class ZeroExecutor:
    """Returns at once: what remains is the framework's own cost."""

    async def execute(self, task: Task, ctx: Any) -> Result:
        return Result(output=1)

    def estimate_s(self, step: Any, model: Any) -> float:
        return 0.0


class SleepExecutor:
    """Sleeps for the step's `args.s` seconds."""

    async def execute(self, task: Task, ctx: Any) -> Result:
        await anyio.sleep(task.inputs["args"]["s"])
        return Result(output=task.step_id)

    def estimate_s(self, step: Any, model: Any) -> float:
        return float(step.args.get("s", 0.0))


def spec(w: Workload) -> WorkflowSpec:
    steps: list[Any] = []
    for n in w.nodes:
        if n.tokens:
            context = " ".join(f"{{{{ steps.{d}.output }}}}" for d in n.deps)
            steps.append(LLMStep(id=n.id, prompt=f"{n.id}: {context}".strip(),
                                 max_tokens=n.tokens))
        else:
            steps.append(ToolStep(id=n.id, tool="noop", args={
                "s": n.sleep_s, "deps": [f"${{steps.{d}.output}}" for d in n.deps]}))
    data: dict[str, Any] = {"name": re.sub(r"[^A-Za-z0-9_.-]+", "_", w.name), "steps": [],
                            "defaults": {"tool_concurrency": 100_000}}
    if any(n.tokens for n in w.nodes):
        data["models"] = {"default": {"backend": "shared", "concurrency": 64}}
    return WorkflowSpec.model_validate(data).model_copy(update={"steps": steps})


def registry(w: Workload, backend: LLMBackend | None) -> Registry:
    reg = Registry()
    sleeping = any(n.sleep_s for n in w.nodes)
    reg.executors["tool"] = SleepExecutor() if sleeping else ZeroExecutor()
    if backend is not None:
        reg.backends["shared"] = lambda cfg: backend
    return reg


class PonderRunner:
    """Compiles once (like LangGraph's ``compile()``), then runs the graph."""

    def __init__(self, w: Workload, backend: LLMBackend | None = None) -> None:
        self.registry = registry(w, backend)
        self.graph: CompiledGraph = compile_workflow(spec(w), tool_names={"noop"})

    async def run(self) -> Any:
        result = await execute(self.graph, {}, registry=self.registry)
        assert result.ok, result.error
        return result.output

    async def step_latencies(self) -> dict[str, float]:
        """Each step's own latency (executor time) in one run."""
        seen: dict[str, float] = {}

        async def hook(batch: Any) -> None:
            for e in batch:
                if e.kind == "step_succeeded":
                    seen[e.step_id] = e.latency_s

        result = await execute(self.graph, {}, registry=self.registry, hooks=[hook])
        assert result.ok, result.error
        return seen


class PonderSdkRunner:
    """Through the public SDK: ``Workflow.run`` (recompiles only when the workflow changed)."""

    def __init__(self, w: Workload, backend: LLMBackend | None = None) -> None:
        self.wf = Workflow.from_spec(spec(w))
        self.wf.registry = registry(w, backend)
        self.wf.register_tool(_noop, "noop")

    async def run(self) -> Any:
        result = await self.wf.run()
        assert result.ok, result.error
        return result.output


def _noop(s: float = 0.0, deps: list[Any] | None = None) -> int:
    """Never called (the tool executor is replaced); makes `noop` a known tool."""
    return 1
