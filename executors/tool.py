"""The tool executor: validate arguments, call the registered callable."""

from __future__ import annotations

from typing import Any

import anyio

from orchestrator.errors import PonderError, ToolError
from orchestrator.runtime.contracts import ExecContext, Result, Task
from orchestrator.spec.models import ModelConfig


class ToolExecutor:
    """Runs `tool` steps. Sync callables run in a worker thread, off the event loop."""

    async def execute(self, task: Task, ctx: ExecContext) -> Result:
        spec = ctx.registry.get_tool(task.inputs["tool"])
        args = spec.validate(task.inputs.get("args") or {})
        try:
            if spec.is_async:
                value = await spec.fn(**args)
            else:
                value = await anyio.to_thread.run_sync(lambda: spec.fn(**args))
        except PonderError:
            raise
        except Exception as exc:  # a tool's own exception is the step's error
            raise ToolError(f"tool {spec.name!r} raised {type(exc).__name__}: {exc}",
                            step_id=task.step_id) from exc
        return Result(output=_jsonable(value), meta={"tool": spec.name})

    def estimate_s(self, step: Any, ctx_model: ModelConfig | None) -> float:
        return 0.01


def _jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if dump is not None else value
