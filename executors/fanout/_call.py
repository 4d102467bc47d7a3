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

from typing import ClassVar

from pydantic import PrivateAttr

from executors.fanout._live import Owner
from executors.llm._common import samples_finish
from executors.llm.executor import UsageMeter, messages_of, metered_call, note_usage
from orchestrator.runtime.contracts import (
    ExecContext,
    LLMBackend,
    LLMRequest,
    LLMResponse,
    Result,
    Task,
    Usage,
    approx_prompt_tokens,
)
from orchestrator.spec.kinds_fanout import SampleStep


class SampleCall(SampleStep):
    """One request of a fan-out: ``n`` samples of a prompt (added at run time, never
    written in a workflow). Its output is the text, or the list of texts when ``n > 1``."""

    is_request: ClassVar[bool] = True
    #: where its ``prompt`` and ``system`` are written in the workflow (see
    #: :meth:`written_in`); not a field, so not in the trace
    _home: tuple[str, tuple[str | int, ...]] | None = PrivateAttr(None)

    def written_in(self, step_id: str, path: tuple[str | int, ...] = ()) -> SampleCall:
        """Note that this call's templates are those of step ``step_id`` at ``path`` in it
        (a join's judge: ``("scorer",)``; a spawn's child: ``()``), so that a template
        error names their file:line as one of the step's own would. Returns self."""
        self._home = (step_id, path)
        return self

    @property
    def template_home(self) -> tuple[str, tuple[str | int, ...]] | None:
        """The step whose templates this call renders and their path in it, or None (a
        prompt given as a value, ``{{ _prompt }}``)."""
        return self._home


def make_request(task: Task, step: SampleStep, messages: list[dict[str, str]], n: int,
                 seed: int | None) -> LLMRequest:
    """The request of a fan-out child. Its ``prefix_key`` is ``RUN/PARENT`` (the fan-out
    step, or the join whose judge it is): the children of one step share a long prompt
    prefix (the sample's prompt, a spawn's context), which an engine pool keeps on one
    engine so that its prefix cache serves all but the first."""
    return LLMRequest(messages=messages, max_tokens=step.max_tokens,
                      temperature=step.temperature, top_p=step.top_p, stop=step.stop,
                      seed=seed, n=n,
                      request_id=f"{task.run_id}/{task.step_id}/{task.attempt}",
                      priority=task.priority, run_id=task.run_id, step_id=task.step_id,
                      prefix_key=f"{task.run_id}/{Owner.parent_of(task.step_id)}")


async def call(backend: LLMBackend, request: LLMRequest, step_id: str, meter: UsageMeter
               ) -> LLMResponse:
    """One backend call (streamed when it is one sample); foreign errors become Ponder's."""
    return await metered_call(backend, request, step_id, meter, streamed=request.n == 1)


async def run_call(task: Task, ctx: ExecContext) -> Result:
    """Run a :class:`SampleCall`: ``n`` samples, topped up one by one when a server
    returned fewer (one that ignores ``n``).

    :raises StepError: (a subclass) when the backend fails; the tokens used are noted.
    """
    step: SampleCall = task.step
    config = task.model or ctx.model_config(step.model)
    backend = ctx.backend(step.model)
    messages = messages_of(task)
    prompt_estimate = approx_prompt_tokens(messages)
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
        note_usage(ctx, task.step_id, spent + meter.usage)
        raise
    last = responses[-1]
    return Result(
        output=texts[0] if step.n == 1 else texts,
        usage=spent,
        raw=last.text,
        meta={"model": last.model or config.model, "backend": config.backend, "n": step.n,
              "requests": len(responses), "temperature": step.temperature,
              **({"top_p": step.top_p} if step.top_p is not None else {}),
              "max_tokens": step.max_tokens, "ttft_s": responses[0].ttft_s,
              "latency_s": sum(r.latency_s for r in responses),
              # any request's: a server that ignores n answers each sample on its own
              "finish_reason": samples_finish([r.finish_reason for r in responses])},
    )
