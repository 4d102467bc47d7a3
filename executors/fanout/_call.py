"""The LLM request of one fan-out child: ``n`` samples of one prompt, metered.

Operators add children as :class:`SampleCall` steps (kind ``sample``, so the
:class:`~executors.fanout.SampleExecutor` runs them and the scheduler puts them in the
``llm:<model>`` pool). A single-sample call is streamed so that, when it is cancelled
(a first-finish loser), the tokens it had used are known: the backend's own count where
it keeps one (``LLMRequest.usage``), else the prompt estimate once the first chunk
arrived plus the chunks received (:class:`~executors.llm.executor.UsageMeter`). They
are noted on the step's ``step_cancelled`` event.
"""

from __future__ import annotations

import math
from dataclasses import replace

from executors.fanout._live import note_usage
from executors.llm._common import backend_errors
from executors.llm.executor import UsageMeter, stream_metered
from orchestrator.errors import StepError
from orchestrator.runtime.contracts import (
    ExecContext,
    LLMBackend,
    LLMRequest,
    LLMResponse,
    Result,
    Task,
    Usage,
)
from orchestrator.spec.kinds_fanout import SampleStep


class SampleCall(SampleStep):
    """One request of a fan-out: ``n`` samples of a prompt (added at run time, never
    written in a workflow). Its output is the text, or the list of texts when ``n > 1``."""


def approx_tokens(text: str) -> int:
    """Token estimate of a text: one per four characters, rounded up."""
    return math.ceil(len(text) / 4)


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


def make_request(task: Task, step: SampleStep, messages: list[dict[str, str]], n: int,
                 seed: int | None) -> LLMRequest:
    request = LLMRequest(messages=messages, max_tokens=step.max_tokens,
                         temperature=step.temperature, stop=step.stop, seed=seed, n=n,
                         request_id=f"{task.run_id}/{task.step_id}/{task.attempt}",
                         priority=task.priority)
    # program-aware backends read these; older contracts lack them
    for name, value in (("run_id", task.run_id), ("step_id", task.step_id)):
        if hasattr(request, name):
            setattr(request, name, value)
    return request


async def call(backend: LLMBackend, request: LLMRequest, step_id: str, meter: UsageMeter
               ) -> LLMResponse:
    """One backend call (streamed when it is one sample); foreign errors become Ponder's."""
    with backend_errors(step_id):
        if request.n == 1:
            return await stream_metered(backend, request, meter)
        return await backend.complete(replace(request, usage=meter.counted))


async def run_call(task: Task, ctx: ExecContext) -> Result:
    """Run a :class:`SampleCall`: ``n`` samples, topped up one by one when a server
    returned fewer (one that ignores ``n``).

    :raises StepError: (a subclass) when the backend fails; the tokens used are noted.
    """
    step: SampleCall = task.step
    config = task.model or ctx.model_config(step.model)
    backend = ctx.backend(step.model)
    messages = messages_of(task)
    prompt_estimate = sum(approx_tokens(m["content"]) for m in messages)
    spent = Usage()
    meter = UsageMeter(0)
    texts: list[str] = []
    responses: list[LLMResponse] = []
    try:
        while len(texts) < step.n:
            want = step.n - len(texts)
            seed = None if step.seed is None else step.seed + len(texts)
            meter = UsageMeter(prompt_estimate)
            response = await call(backend, make_request(task, step, messages, want, seed),
                                  task.step_id, meter)
            meter = UsageMeter(0)
            responses.append(response)
            spent += Usage(response.prompt_tokens, response.completion_tokens)
            got = response.texts or [response.text]
            texts.extend(t.strip() for t in got[:want])
    except BaseException:
        used = meter.usage
        note_usage(ctx, task.step_id, Usage(spent.prompt_tokens + used.prompt_tokens,
                                            spent.completion_tokens + used.completion_tokens))
        raise
    last = responses[-1]
    return Result(
        output=texts[0] if step.n == 1 else texts,
        usage=spent,
        raw=last.text,
        meta={"model": last.model or config.model, "backend": config.backend, "n": step.n,
              "requests": len(responses), "temperature": step.temperature,
              "max_tokens": step.max_tokens, "ttft_s": responses[0].ttft_s,
              "latency_s": sum(r.latency_s for r in responses),
              "finish_reason": last.finish_reason},
    )
