"""The tool executor: validate arguments, call the registered callable."""

from __future__ import annotations

import json
from typing import Any

import anyio
from pydantic_core import PydanticSerializationError, to_jsonable_python

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
        return Result(output=tool_output(spec.name, value, task.step_id), meta={"tool": spec.name})

    def estimate_s(self, step: Any, ctx_model: ModelConfig | None) -> float:
        return 0.01


def tool_output(name: str, value: Any, step_id: str | None = None) -> Any:
    """A tool's return value as JSON data: pydantic models, dataclasses, tuples, sets and
    dates as pydantic's JSON mode writes them.

    A step's output is stored in the run's trace and may be printed as JSON, so a value
    JSON cannot hold (an arbitrary object, a generator, bytes that are not UTF-8, a
    circular list, infinity or NaN) fails the step here, not the run when it is stored.

    :raises ToolError: naming the tool and what is wrong with the value.
    """
    try:
        data = to_jsonable_python(value)
        json.dumps(data, allow_nan=False)  # infinity/NaN: not JSON, whatever Python allows
    except (PydanticSerializationError, ValueError, TypeError, RecursionError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ToolError(f"tool {name!r} returned a value that is not JSON "
                        f"({type(value).__name__}: {detail}); return strings, numbers, "
                        "booleans, None, lists and dicts", step_id=step_id) from None
    return data
