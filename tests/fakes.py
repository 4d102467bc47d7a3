"""Fakes used by the core tests: executors with scripted behaviour."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from orchestrator.errors import BackendHTTPError, ToolError
from orchestrator.runtime.contracts import Result, Task, Usage


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
