"""Fakes used by the core tests: executors with scripted behaviour, an LLM backend of
the tests' own."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict

from orchestrator.errors import BackendHTTPError, ToolError
from orchestrator.runtime.contracts import LLMChunk, LLMRequest, LLMResponse, Result, Task, Usage
from orchestrator.spec.models import ModelConfig


@dataclass
class Call:
    step_id: str
    attempt: int
    start: float
    end: float = 0.0


@dataclass
class ScriptedExecutor:
    """Runs `tool` steps by name: `args.ms` sleeps, `args.fail` raises, `args.flaky` fails N times.

    Records every call with its start and end time (monotonic seconds).
    """

    calls: list[Call] = field(default_factory=list)
    flaky_counts: dict[str, int] = field(default_factory=dict)
    on_start: Callable[[Task], None] | None = None

    async def execute(self, task: Task, ctx: Any) -> Result:
        call = Call(task.step_id, task.attempt, time.monotonic())
        self.calls.append(call)
        if self.on_start is not None:
            self.on_start(task)
        args = task.inputs.get("args", {})
        try:
            if args.get("ms"):
                await anyio.sleep(args["ms"] / 1000)
            if args.get("fail"):
                raise ToolError(f"{task.step_id} failed on purpose")
            flaky = args.get("flaky", 0)
            seen = self.flaky_counts.get(task.step_id, 0)
            if seen < flaky:
                self.flaky_counts[task.step_id] = seen + 1
                raise BackendHTTPError(f"503 from fake ({task.step_id})", status=503)
            return Result(output=args.get("value", task.step_id), usage=Usage(3, 2))
        finally:
            call.end = time.monotonic()

    def estimate_s(self, step: Any, model: Any) -> float:
        return 0.0

    def order(self) -> list[str]:
        return [c.step_id for c in sorted(self.calls, key=lambda c: c.start)]


class EchoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prefix: str = "echo"


class Echo:
    """An LLM backend as a user registers one (``Workflow.register_backend``), with
    options of its own: answers ``<prefix> <model>`` (``<prefix>`` without a model), 1
    prompt and 2 completion tokens. At the top level of an importable module, so that a
    Ray worker can import it by its path."""

    options_model = EchoOptions

    def __init__(self, config: ModelConfig) -> None:
        self.model = config.model
        self.prefix = EchoOptions.model_validate(config.options).prefix

    async def complete(self, request: LLMRequest) -> LLMResponse:
        text = self.prefix if self.model is None else f"{self.prefix} {self.model}"
        return LLMResponse(text=text, prompt_tokens=1, completion_tokens=2)

    async def stream(self, request: LLMRequest) -> AsyncIterator[LLMChunk]:
        final = await self.complete(request)
        yield LLMChunk(final.text, final=final)

    async def aclose(self) -> None:
        pass
