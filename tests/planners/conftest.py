"""Fixtures of the planner tests: the anyio backend, a tool catalog, an event recorder,
and a factory of plan workflows served by the scripted LLM backend."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
import yaml

from orchestrator import Workflow
from orchestrator.runtime.registry import tool_spec
from planners.testing import ScriptedLLM
from planners.tools import ToolCatalog


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def search(query: str) -> str:
    """Search the web."""
    return f"result for {query}"


def lookup(city: str, attribute: str = "population") -> int:
    """A number about a city."""
    return {"paris": 2, "rome": 3, "berlin": 4}.get(city.lower(), 0) * 1000


def pair(a: int, b: int) -> list[int]:
    """Two numbers as a list."""
    return [a, b]


def total(values: list[int]) -> int:
    """The sum of a list."""
    return sum(values)


def describe(item: dict[str, Any]) -> str:
    """Describe an object."""
    return ",".join(f"{k}={v}" for k, v in sorted(item.items()))


TEST_TOOLS: dict[str, Callable[..., Any]] = {
    "search": search, "lookup": lookup, "pair": pair, "total": total, "describe": describe}


@pytest.fixture
def catalog() -> ToolCatalog:
    """calc (built-in) and the test tools, with their argument schemas."""
    from executors.builtin_tools import calc

    return ToolCatalog.of([tool_spec(calc, "calc"), *(tool_spec(f, n)
                                                      for n, f in TEST_TOOLS.items())])


class Recorder:
    """A hook keeping every event."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    async def __call__(self, batch: Sequence[Any]) -> None:
        self.events.extend(batch)

    def of(self, kind: str) -> list[Any]:
        return [e for e in self.events if e.kind == kind]

    def first(self, kind: str, step_id: str) -> Any:
        return next(e for e in self.events if e.kind == kind
                    and getattr(e, "step_id", None) == step_id)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


PlanWorkflow = Callable[..., Workflow]


@pytest.fixture
def plan_workflow() -> PlanWorkflow:
    """``plan_workflow(llm, **plan_fields)``: one plan step ``p`` over the test tools."""

    def make(llm: ScriptedLLM, *, extra_steps: Sequence[dict[str, Any]] = (),
             outputs: dict[str, Any] | None = None, **fields: Any) -> Workflow:
        step = {"id": "p", "kind": "plan", "goal": "the question", **fields}
        doc: dict[str, Any] = {"name": "t", "models": {"default": {"backend": "scripted"}},
                               "steps": [*extra_steps, step]}
        if outputs:
            doc["outputs"] = outputs
        wf = Workflow.from_yaml_text(yaml.safe_dump(doc))
        wf.register_backend("scripted", llm.factory)
        for name, fn in TEST_TOOLS.items():
            wf.register_tool(fn, name)
        return wf

    return make
