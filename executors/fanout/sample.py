"""The ``sample`` executor: ``n`` samples of one prompt, one request or ``n``."""

from __future__ import annotations

import json
from typing import Any

from executors.fanout._call import SampleCall, run_call
from executors.fanout._live import Child, Owner, joins_of, live, samples_used
from executors.fanout._operator import AdaptiveVote, FanOut, FirstFinish, Slot, online_for
from orchestrator.errors import ConfigError, StepError
from orchestrator.runtime.contracts import ExecContext, Result, Task, approx_tokens
from orchestrator.spec.kinds_fanout import SampleStep
from orchestrator.spec.models import ModelConfig


class SampleExecutor:
    """Runs ``sample`` steps (and the requests fan-outs add, :class:`SampleCall`).

    Requests: with ``requests: auto``, one request asks for all ``n`` samples
    (``LLMRequest.n``; the backend returns ``LLMResponse.texts``) unless the join naming
    this step needs them apart (first-finish: one request per sample, each cancellable;
    adaptive vote: one request per ``batch``), a ``budget_tokens`` is set, or the backend
    says ``supports_n = False``. Each request is a child step ``ID[i]`` (one sample) or
    ``ID[i:j]`` (samples i to j-1) in the ``llm:<model>`` pool; sample ``i`` asks with
    seed ``seed + i`` (``seed`` defaults to 0) so separate requests differ.

    The output is the list of samples, error markers for failed or cancelled ones
    (``not_started`` for those a reducer or budget never needed). Without a join naming
    this step, a failed sample fails it. :attr:`Result.meta` records the fan-out.

    :raises ConfigError: for ``requests: shared`` under a first-finish join.
    :raises BudgetExceeded: when ``budget_tokens`` is too small for even one request.
    :raises StepError: (without a join) when a sample failed.
    """

    async def execute(self, task: Task, ctx: ExecContext) -> Result:
        if isinstance(task.step, SampleCall):
            return await run_call(task, ctx)
        step: SampleStep = task.step
        lctx = live(ctx, task.step_id)
        joins = joins_of(lctx, task.step_id)
        owner = Owner.of(task)
        online = online_for(joins, lctx, owner)
        per_slot = self._per_request(task, ctx, online)
        prompt: str = task.inputs["prompt"]
        system: str | None = task.inputs.get("system")
        base_seed = step.seed or 0

        def make_slot(start: int, count: int) -> Slot:
            sid = owner.child(start if count == 1 else f"{start}:{start + count}")
            # the prompt is rendered already: pass it as a value, never as a template again
            call = SampleCall(id="request", prompt="{{ _prompt }}",
                              system="{{ _system }}" if system else None, model=step.model,
                              n=count, max_tokens=step.max_tokens,
                              temperature=step.temperature, top_p=step.top_p,
                              stop=step.stop,
                              seed=base_seed + start, retry=step.retry)
            reserve = count * step.max_tokens + approx_tokens(prompt + (system or ""))
            return Slot(start, count, call.model_copy(update={"id": sid}),
                        {"_prompt": prompt, "_system": system}, reserve)

        fan = FanOut(lctx, task.step_id, step.n, make_slot, online=online, per_slot=per_slot,
                     concurrency=step.concurrency, budget_tokens=step.budget_tokens,
                     reason=f"sample n={step.n}")
        await fan.run()
        too_small = fan.budget_error(f"sample {task.step_id!r}", step.max_tokens)
        if too_small is not None:
            raise too_small
        output = [c.entry() for c in fan.children]
        meta: dict[str, Any] = {**fan.meta(), "n": step.n,
                                "mode": "shared" if per_slot > 1 else "separate",
                                "samples_used": samples_used(fan.children)}
        failed = fan.failures()
        if failed and not joins:
            raise StepError(_failure_message(task.step_id, step.n, failed),
                            step_id=task.step_id, raw_output=json.dumps(output, default=str))
        return Result(output=output, usage=online.usage, meta=meta)

    @staticmethod
    def _per_request(task: Task, ctx: ExecContext, online: Any) -> int:
        """Samples per request: ``n`` shared, ``batch`` for adaptive vote, or 1."""
        step: SampleStep = task.step
        if step.requests == "separate":
            return 1
        if isinstance(online, FirstFinish):
            if step.requests == "shared":
                raise ConfigError(f"sample {task.step_id!r}: first_finish cancels samples one "
                                  "by one and needs `requests: separate` (or auto)")
            return 1
        if step.requests == "auto" and (
                step.budget_tokens is not None
                or not getattr(ctx.backend(step.model), "supports_n", True)):
            return 1
        return online.join.batch if isinstance(online, AdaptiveVote) else step.n

    def estimate_s(self, step: Any, ctx_model: ModelConfig | None) -> float:
        return float(getattr(step, "max_tokens", 256)) * 0.02


#: failed samples a message lists by index, at most
_LISTED = 8


def _failure_message(step_id: str, n: int, failed: list[Child]) -> str:
    """Why a sample step without a join failed: how many of its ``n`` samples failed,
    which (by index), and the error of the first of them with its child step, which the
    trace shows: ``sample 's': 2 of 5 samples failed (samples 1, 3; no join handles
    failures): sample 1 (child 's[1]'): ...``."""
    indices = [str(c.index) for c in failed]
    listed = "" if len(indices) == 1 else "samples " + ", ".join(indices[:_LISTED]) + (
        f" and {len(indices) - _LISTED} more" if len(indices) > _LISTED else "") + "; "
    first = failed[0]
    child = f" (child {first.step_id!r})" if first.step_id else ""
    return (f"sample {step_id!r}: {len(failed)} of {n} samples failed ({listed}no join "
            f"handles failures): sample {first.index}{child}: {first.error or first.status}")
