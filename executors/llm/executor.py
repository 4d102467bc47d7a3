"""The executor of ``llm`` steps: one chat call, JSON parsing, schema repair."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from executors.llm._common import backend_errors
from executors.llm._json_output import extract_json, schema_problem
from orchestrator.errors import (
    BudgetExceeded,
    OutputSchemaError,
    StepError,
)
from orchestrator.runtime.contracts import (
    ExecContext,
    LLMBackend,
    LLMRequest,
    LLMResponse,
    Result,
    Task,
    Usage,
)
from orchestrator.spec.models import ModelConfig

SECONDS_PER_TOKEN_ESTIMATE = 0.02


class LLMExecutor:
    """Runs ``llm`` steps on the backend serving the step's model alias.

    Messages are ``[system?, user]`` from the task's rendered ``system`` and
    ``prompt`` inputs. With an ``output_schema`` the answer's JSON value is
    validated (Draft 2020-12); an invalid answer is re-asked up to
    ``schema_repairs`` times, each time with the bad answer and the validation
    error appended to the conversation. Usage sums every call.

    :attr:`Result.output` is the parsed JSON value, or the stripped text without a
    schema; :attr:`Result.raw` the last raw answer; :attr:`Result.meta` holds
    ``model``, ``backend``, ``temperature``, ``max_tokens``, ``ttft_s`` (first
    call), ``latency_s`` (all calls), ``finish_reason`` and ``schema_repairs_used``.
    """

    async def execute(self, task: Task, ctx: ExecContext) -> Result:
        """Run one attempt of an ``llm`` step.

        :raises OutputSchemaError: when no answer matched the schema (last raw answer kept).
        :raises StepError: without a ``prompt`` input.
        :raises BackendError: (or a subclass, or :class:`StepTimeout`) when the backend fails.
        :raises ConfigError: for an unknown model alias or an invalid output schema.
        """
        step = task.step
        config = task.model or ctx.model_config(step.model)
        backend = ctx.backend(step.model)
        schema: dict[str, Any] | None = step.output_schema
        request = LLMRequest(
            messages=_messages(task),
            max_tokens=step.max_tokens,
            temperature=step.temperature,
            stop=step.stop,
            json_schema=schema,
            seed=step.seed,
            request_id=f"{task.run_id}/{task.step_id}/{task.attempt}",
            priority=task.priority,
            run_id=task.run_id,
            step_id=task.step_id,
        )
        usage = Usage()
        responses: list[LLMResponse] = []
        output: Any = None
        while True:
            response = await _call(backend, request, task.step_id)
            responses.append(response)
            usage += Usage(response.prompt_tokens, response.completion_tokens)
            if schema is None:
                output = response.text.strip()
                break
            output, problem = _parse(response.text, schema)
            if problem is None:
                break
            repairs = len(responses) - 1
            if repairs >= step.schema_repairs:
                raise OutputSchemaError(
                    f"step {task.step_id!r}: the output does not match its schema "
                    f"after {repairs} repair(s): {problem}",
                    step_id=task.step_id,
                    raw_output=response.text,
                    usage=usage,
                )
            budget = getattr(step, "budget_tokens", None)
            if budget is not None and usage.total >= budget:
                raise BudgetExceeded(
                    f"step {task.step_id!r}: token budget of {budget} spent ({usage.total} "
                    f"used) before the output matched its schema: {problem}",
                    step_id=task.step_id, raw_output=response.text, usage=usage)
            request = replace(request, messages=[
                *request.messages,
                {"role": "assistant", "content": response.text},
                {"role": "user", "content": _repair_prompt(problem, schema)},
            ])
        last = responses[-1]
        return Result(
            output=output,
            usage=usage,
            raw=last.text,
            meta={
                **last.meta,
                "model": last.model or config.model,
                "backend": config.backend,
                "temperature": step.temperature,
                "max_tokens": step.max_tokens,
                "ttft_s": responses[0].ttft_s,
                "latency_s": sum(r.latency_s for r in responses),
                "finish_reason": last.finish_reason,
                "schema_repairs_used": len(responses) - 1,
            },
        )

    def estimate_s(self, step: Any, ctx_model: ModelConfig | None) -> float:
        """A rough duration: every allowed output token at 0.02 s."""
        return float(getattr(step, "max_tokens", 256)) * SECONDS_PER_TOKEN_ESTIMATE


def _messages(task: Task) -> list[dict[str, str]]:
    prompt = task.inputs.get("prompt")
    if not isinstance(prompt, str):
        raise StepError(f"step {task.step_id!r}: the task has no rendered `prompt` input",
                        step_id=task.step_id)
    system = task.inputs.get("system")
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    return messages


async def _call(backend: LLMBackend, request: LLMRequest, step_id: str) -> LLMResponse:
    """One backend call; foreign exceptions become Ponder's, keeping retryability."""
    with backend_errors(step_id):
        return await backend.complete(request)


def _parse(text: str, schema: dict[str, Any]) -> tuple[Any, str | None]:
    """The answer's JSON value and what is wrong with it (``None`` when valid)."""
    try:
        value = extract_json(text)
    except ValueError as exc:
        return None, str(exc)
    return value, schema_problem(value, schema)


def _repair_prompt(problem: str, schema: dict[str, Any]) -> str:
    return (
        f"Your previous answer is not valid: {problem}.\n"
        "Answer again with only a JSON value that is valid under this JSON Schema:\n"
        f"{json.dumps(schema)}"
    )
