"""The `workflow` step: run another workflow as one step, nested in the trace."""

from __future__ import annotations

from typing import Any

from orchestrator.errors import StepError
from orchestrator.runtime.contracts import ExecContext, Result, Task, Usage
from orchestrator.spec.models import ModelConfig


class SubworkflowExecutor:
    """Runs the named workflow as a child run; its output becomes the step's output.

    The child run records the step and its attempt as its parent, so that a resumed
    run continues the child of an interrupted attempt (see ``RunContext.run_child``).
    """

    async def execute(self, task: Task, ctx: ExecContext) -> Result:
        run_child = getattr(ctx, "run_child", None)
        if run_child is None:
            raise StepError("this context cannot run sub-workflows", step_id=task.step_id)
        result = await run_child(task.inputs["workflow"], task.inputs.get("inputs") or {},
                                 task.step_id, attempt=task.attempt)
        if not result.ok:
            raise StepError(f"sub-workflow {task.inputs['workflow']!r} (run {result.run_id}) "
                            f"{result.status}: {result.error}", step_id=task.step_id)
        return Result(output=result.output,
                      usage=Usage(result.usage.prompt_tokens, result.usage.completion_tokens),
                      meta={"child_run_id": result.run_id})

    def estimate_s(self, step: Any, ctx_model: ModelConfig | None) -> float:
        return 1.0
