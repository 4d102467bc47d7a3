"""The executor of ``llm`` steps: one chat call, JSON parsing, schema repair."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import anyio

from executors.llm._common import backend_errors
from executors.llm._json_output import extract_json
from orchestrator.errors import (
    BackendError,
    BudgetExceeded,
    ConfigError,
    OutputSchemaError,
    StepError,
)
from orchestrator.runtime.contracts import (
    ExecContext,
    LLMBackend,
    LLMChunk,
    LLMRequest,
    LLMResponse,
    Result,
    Task,
    Usage,
    approx_prompt_tokens,
    approx_tokens,
)
from orchestrator.spec.models import ModelConfig
from orchestrator.spec.schema_check import schema_definition_problem, schema_problem

SECONDS_PER_TOKEN_ESTIMATE = 0.02


class LLMExecutor:
    """Runs ``llm`` steps on the backend serving the step's model alias.

    Messages are ``[system?, user]`` from the task's rendered ``system`` and
    ``prompt`` inputs. With an ``output_schema`` the answer's JSON value is
    validated (Draft 2020-12); an invalid answer is re-asked up to
    ``schema_repairs`` times, each time with the bad answer and the validation
    error appended to the conversation. Usage sums every call.

    When an attempt is cancelled, fails or times out, the tokens it had used are noted
    (``ctx.note_usage``) for its ``step_cancelled`` / ``step_failed`` event: the
    backend's own count where it keeps one (``LLMRequest.usage``). A step that a reducer
    may cancel (a ``cancellable`` step, e.g. a map item under a first-finish join) is
    streamed, so that a backend that only learns its counts at the end (an
    OpenAI-compatible server) counts what it received, and one that counts nothing is
    estimated from the chunks (see :class:`UsageMeter`).

    :attr:`Result.output` is the parsed JSON value, or the stripped text without a
    schema; :attr:`Result.raw` the last raw answer; :attr:`Result.meta` holds
    ``model``, ``backend``, ``temperature``, ``top_p`` (when set), ``max_tokens``,
    ``ttft_s`` (first call), ``latency_s`` (all calls), ``finish_reason`` and
    ``schema_repairs_used``.
    """

    async def execute(self, task: Task, ctx: ExecContext) -> Result:
        """Run one attempt of an ``llm`` step.

        :raises OutputSchemaError: when no answer matched the schema (last raw answer kept).
        :raises StepError: without a ``prompt`` input.
        :raises BackendError: (or a subclass, or :class:`StepTimeout`) when the backend fails.
        :raises ConfigError: for an unknown model alias or an invalid output schema (before
            the backend is called).
        """
        step = task.step
        config = task.model or ctx.model_config(step.model)
        backend = ctx.backend(step.model)
        schema: dict[str, Any] | None = step.output_schema
        request = LLMRequest(
            messages=messages_of(task),
            max_tokens=step.max_tokens,
            temperature=step.temperature,
            top_p=step.top_p,
            stop=step.stop,
            json_schema=schema,
            seed=step.seed,
            request_id=f"{task.run_id}/{task.step_id}/{task.attempt}",
            priority=task.priority,
            run_id=task.run_id,
            step_id=task.step_id,
        )
        if schema is not None:
            # an invalid schema fails the step before any token is spent, with the schema's
            # problem rather than a backend's (a grammar it cannot build, a generator error)
            invalid = schema_definition_problem(schema)
            if invalid is not None:
                raise ConfigError(invalid[0])
        usage = Usage()
        responses: list[LLMResponse] = []
        output: Any = None
        streamed = _cancellable(task, ctx)
        meter = UsageMeter(0)
        try:
            while True:
                meter = UsageMeter(approx_prompt_tokens(request.messages))
                response = await metered_call(backend, request, task.step_id, meter, streamed)
                responses.append(response)
                usage += Usage(response.prompt_tokens, response.completion_tokens)
                meter = UsageMeter(0)
                if schema is None:
                    output = response.text.strip()
                    break
                output, problem = _parse(response, schema, request.max_tokens)
                if problem is None:
                    break
                request = self._repair_or_raise(task, request, response, problem, usage,
                                                len(responses) - 1)
        except BaseException:
            note_usage(ctx, task.step_id, usage + meter.usage)
            raise
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
                **({"top_p": step.top_p} if step.top_p is not None else {}),
                "max_tokens": step.max_tokens,
                "ttft_s": responses[0].ttft_s,
                "latency_s": sum(r.latency_s for r in responses),
                "finish_reason": last.finish_reason,
                "schema_repairs_used": len(responses) - 1,
            },
        )

    @staticmethod
    def _repair_or_raise(task: Task, request: LLMRequest, response: LLMResponse, problem: str,
                         usage: Usage, repairs: int) -> LLMRequest:
        """The request asking again after an answer that broke the schema.

        :raises OutputSchemaError: when no repair is left.
        :raises BudgetExceeded: when the step's token budget is spent.
        """
        step = task.step
        schema: dict[str, Any] = step.output_schema
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
        return replace(request, messages=[
            *request.messages,
            {"role": "assistant", "content": response.text},
            {"role": "user", "content": _repair_prompt(problem, schema)},
        ])

    def estimate_s(self, step: Any, ctx_model: ModelConfig | None) -> float:
        """A rough duration: every allowed output token at 0.02 s."""
        return float(getattr(step, "max_tokens", 256)) * SECONDS_PER_TOKEN_ESTIMATE


def messages_of(task: Task) -> list[dict[str, str]]:
    """``[system?, user]`` from the task's rendered ``system`` and ``prompt`` inputs.

    :raises StepError: without a rendered prompt.
    """
    prompt = task.inputs.get("prompt")
    if not isinstance(prompt, str):
        raise StepError(f"step {task.step_id!r}: the task has no rendered `prompt` input",
                        step_id=task.step_id)
    system = task.inputs.get("system")
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    return messages


@dataclass(slots=True)
class UsageMeter:
    """Tokens one request has used so far.

    ``counted`` is handed to the backend as ``LLMRequest.usage``; a backend that counts
    its work keeps it current (the simulated and local engines exactly, the OpenAI
    backend with what it received). When it stays empty, the streamed chunks are
    estimated: the prompt once the first chunk came (it was processed by then), plus
    each chunk's text.
    """

    prompt_estimate: int
    counted: Usage = field(default_factory=Usage)
    estimate: Usage = field(default_factory=Usage)

    def on_chunk(self, chunk: LLMChunk) -> None:
        if self.estimate.prompt_tokens == 0:
            self.estimate.prompt_tokens = self.prompt_estimate
        self.estimate.completion_tokens += approx_tokens(chunk.text) if chunk.text else 0

    @property
    def usage(self) -> Usage:
        """A snapshot of the tokens used so far."""
        used = self.counted if self.counted.total else self.estimate
        return Usage(used.prompt_tokens, used.completion_tokens)


async def stream_metered(backend: LLMBackend, request: LLMRequest, meter: UsageMeter
                         ) -> LLMResponse:
    """Run one request through ``backend.stream`` with ``meter`` counting it; the stream
    is closed on every exit (cancellation included), which frees the engine.

    :raises BackendError: when the stream ends without a final chunk.
    """
    chunks: AsyncIterator[LLMChunk] = backend.stream(replace(request, usage=meter.counted))
    try:
        async for chunk in chunks:
            if chunk.final is not None:
                return chunk.final
            meter.on_chunk(chunk)
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            with anyio.CancelScope(shield=True):
                await close()  # stops the engine's work, also when we were cancelled
    raise BackendError("the backend's stream ended without a final chunk")


async def metered_call(backend: LLMBackend, request: LLMRequest, step_id: str,
                       meter: UsageMeter, streamed: bool) -> LLMResponse:
    """One backend call, counted by ``meter`` (streamed when ``streamed``); foreign
    exceptions become Ponder's, keeping retryability."""
    with backend_errors(step_id):
        if streamed:
            return await stream_metered(backend, request, meter)
        return await backend.complete(replace(request, usage=meter.counted))


def _cancellable(task: Task, ctx: ExecContext) -> bool:
    """Whether a reducer may cancel this step (its plan in the live graph says so)."""
    plans = getattr(getattr(ctx, "scheduler", None), "plans", None)
    plan = plans.get(task.step_id) if isinstance(plans, dict) else None
    return bool(getattr(plan, "cancellable", False))


def note_usage(ctx: ExecContext, step_id: str, usage: Usage) -> None:
    """Tell the scheduler what an unwinding attempt had used (when the context can hear)."""
    note = getattr(ctx, "note_usage", None)
    if note is not None and usage.total:
        note(step_id, usage)


def _parse(response: LLMResponse, schema: dict[str, Any], max_tokens: int
           ) -> tuple[Any, str | None]:
    """The answer's JSON value and what is wrong with it (``None`` when valid); an answer
    without JSON that stopped at the token limit says so, the likely cause."""
    try:
        value = extract_json(response.text)
    except ValueError as exc:
        if response.finish_reason == "length":
            if response.meta.get("stopped_at") == "n_ctx":
                return None, (f"{exc} (it stopped at the model's context window, n_ctx="
                              f"{response.meta.get('n_ctx')}: it may have been cut off)")
            return None, (f"{exc} (it stopped at the token limit, max_tokens={max_tokens}: "
                          "it may have been cut off)")
        return None, str(exc)
    return value, schema_problem(value, schema)


def _repair_prompt(problem: str, schema: dict[str, Any]) -> str:
    return (
        f"Your previous answer is not valid: {problem}.\n"
        "Answer again with only a JSON value that is valid under this JSON Schema:\n"
        f"{json.dumps(schema)}"
    )
