"""A stand-in for vLLM's in-process engine, for tests and machines without a GPU.

It has the parts of vLLM's API that :class:`~executors.engines.vllm.VLLMBackend`
uses, with the same names and shapes: ``AsyncEngineArgs``, ``AsyncLLM.from_engine_args``,
``AsyncLLM.generate(prompt, sampling_params, request_id, *, priority=0)`` (an async
iterator of cumulative ``RequestOutput``), ``AsyncLLM.abort(request_id)``,
``check_health()``, ``get_tokenizer()``, ``shutdown()``, ``SamplingParams`` and
``StructuredOutputsParams``. Like vLLM (v1, checked against its sources) it

- streams ``n > 1`` samples as vLLM's parallel sampling does: each ``RequestOutput``
  carries the samples that progressed (``outputs[i].index`` says which), a finished
  sample is not sent again, and ``finished`` is True on the last output only;
- validates with ``VLLMValidationError``, a ``VLLMClientError`` that is not a
  ``ValueError`` (vLLM 0.27 and later): ``SamplingParams`` (``n``, ``temperature``,
  ``top_p``, ``max_tokens``) and a prompt longer than ``max_model_len``; like 0.33 it takes a
  non-zero priority under ``scheduling_policy="fcfs"`` (and ignores it) and a request id
  already running (vLLM makes its own ids unique). ``legacy_errors=True`` is an older
  release: ``ValueError``, and those two are refused too;
- takes ``max_tokens=None`` as "up to ``max_model_len``" (the prompt included);
- fails other errors of a request as ``EngineGenerateError`` (see :meth:`AsyncLLM.fail`)
  and a dead engine's as ``EngineDeadError``; fails to start when asked for more GPU
  memory than it has (see :data:`START_ERRORS`).

Texts come from the ``simulated`` backend, so a JSON schema gives a valid value. Each
engine step emits ``tokens_per_step`` tokens of every sample after ``step_s`` seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import anyio

from executors.llm import SimulatedBackend
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.spec.models import ModelConfig


@dataclass
class StructuredOutputsParams:
    """vLLM's ``vllm.sampling_params.StructuredOutputsParams`` (the fields used here)."""

    json: str | dict[str, Any] | None = None
    regex: str | None = None
    choice: list[str] | None = None
    grammar: str | None = None
    json_object: bool | None = None


@dataclass
class SamplingParams:
    """vLLM's ``SamplingParams`` (the fields used here, with vLLM's defaults)."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop: list[str] | None = None
    max_tokens: int | None = 16
    structured_outputs: StructuredOutputsParams | None = None

    def __post_init__(self) -> None:
        if self.n < 1:
            raise VLLMValidationError(f"n must be at least 1, got {self.n}.")
        if self.temperature < 0.0:
            raise VLLMValidationError(
                f"temperature must be non-negative, got {self.temperature}.")
        if not 0.0 < self.top_p <= 1.0:
            raise VLLMValidationError(f"top_p must be in (0, 1], got {self.top_p}.")
        if self.top_k < -1:
            raise VLLMValidationError(f"top_k must be 0 (disable), or at least 1, got "
                                      f"{self.top_k}.")
        if self.repetition_penalty <= 0.0:
            raise VLLMValidationError("repetition_penalty must be greater than zero, got "
                                      f"{self.repetition_penalty}.")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise VLLMValidationError(f"max_tokens must be at least 1, got {self.max_tokens}.")


@dataclass
class CompletionOutput:
    """vLLM's ``CompletionOutput``: one sample, cumulative."""

    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None = None
    logprobs: Any = None
    finish_reason: str | None = None
    stop_reason: int | str | None = None


@dataclass
class RequestOutput:
    """vLLM's ``RequestOutput``."""

    request_id: str
    prompt: str | None
    prompt_token_ids: list[int] | None
    prompt_logprobs: Any
    outputs: list[CompletionOutput]
    finished: bool
    num_cached_tokens: int | None = None


@dataclass
class AsyncEngineArgs:
    """vLLM's ``AsyncEngineArgs`` (the fields :class:`VLLMBackend` sets)."""

    model: str = "facebook/opt-125m"
    dtype: str = "auto"
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    enable_prefix_caching: bool | None = None
    tensor_parallel_size: int = 1
    max_num_seqs: int | None = None
    scheduling_policy: str = "fcfs"
    seed: int | None = 0


class FakeTokenizer:
    """Four characters per token; a plain chat template."""

    def encode(self, text: str) -> list[int]:
        return [hash(text[i:i + 4]) % 50_000 for i in range(0, len(text), 4)]

    def apply_chat_template(self, messages: list[dict[str, str]], *, tokenize: bool = False,
                            add_generation_prompt: bool = True) -> str:
        text = "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in messages)
        return text + ("<|assistant|>\n" if add_generation_prompt else "")


#: the context length of a model when ``max_model_len`` is not set
DEFAULT_MAX_MODEL_LEN = 8192


class VLLMError(Exception):
    """vLLM's ``vllm.exceptions.VLLMError`` (0.27 and later): the base of its errors,
    split into errors of the request (:class:`VLLMClientError`, HTTP 4xx) and of the
    server (:class:`VLLMServerError`, 5xx)."""


class VLLMClientError(VLLMError):
    """vLLM's ``vllm.exceptions.VLLMClientError``: the request's fault (matched by name)."""


class VLLMServerError(VLLMError):
    """vLLM's ``vllm.exceptions.VLLMServerError``."""


class VLLMValidationError(VLLMClientError):
    """vLLM's ``vllm.exceptions.VLLMValidationError``: a request or its sampling
    parameters are invalid. Not a ``ValueError`` since vLLM 0.27 (it was one before)."""


class EngineDeadError(VLLMServerError):
    """vLLM's ``vllm.v1.engine.exceptions.EngineDeadError`` (matched by name)."""


class EngineGenerateError(VLLMServerError):
    """vLLM's ``vllm.v1.engine.exceptions.EngineGenerateError``: ``generate()`` failed
    for a reason other than validation or a dead engine (the cause is chained)."""


class OutOfMemoryError(RuntimeError):
    """PyTorch's ``torch.OutOfMemoryError`` (``torch.cuda.OutOfMemoryError``)."""


#: the ways a real vLLM v1 engine fails to start for lack of GPU memory (and one other),
#: as it says them: ``AsyncLLM(start_error=KIND)`` raises the one of ``KIND``
START_ERRORS: dict[str, tuple[type[Exception], str]] = {
    # torch, while loading weights or profiling
    "cuda_oom": (OutOfMemoryError,
                 "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity "
                 "of 79.19 GiB of which 1.25 GiB is free."),
    # vllm/v1/worker/gpu_worker.py, before loading: other processes hold GPU memory
    "free_memory": (ValueError,
                    "Free memory on device (39.6/79.19 GiB) on startup is less than desired "
                    "GPU memory utilization (0.9, 71.27 GiB). Decrease GPU memory utilization "
                    "or reduce GPU memory used by other processes."),
    # vllm/v1/core/kv_cache_utils.py: the weights left no room for a KV cache
    "cache_blocks": (ValueError,
                     "No available memory for the cache blocks. Try increasing "
                     "`gpu_memory_utilization` when initializing the engine."),
    # vllm/v1/core/kv_cache_utils.py: room for some KV cache, not for one full-length request
    "max_model_len": (ValueError,
                      "To serve at least one request with the models's max seq len (131072), "
                      "(16.0 GiB KV cache is needed, which is larger than the available KV "
                      "cache memory (6.5 GiB). Based on the available memory, the estimated "
                      "maximum model length is 53248. Try increasing `gpu_memory_utilization` "
                      "or decreasing `max_model_len` when initializing the engine."),
    # vllm/v1/engine/core_client.py: what the parent sees when the engine core process
    # died while starting (the cause is only in the core's log)
    "engine_core": (RuntimeError,
                    "Engine core initialization failed. See root cause above. "
                    "Failed core proc(s): {}"),
    # not memory: vllm/config/model.py (a pydantic model) refusing a model that is neither
    # a Hugging Face id nor a folder, in several lines
    "no_model": (ValueError,
                 "1 validation error for ModelConfig\n  Value error, Invalid repository ID or "
                 "local directory specified: 'no/such-model'.\nPlease verify the following "
                 "requirements:\n1. Provide a valid Hugging Face repository ID.\n2. Specify a "
                 "local directory that contains a recognized configuration file.\n"
                 " [type=value_error, input_value=ArgsKwargs((), {'model': 'no/such-model'}), "
                 "input_type=ArgsKwargs]"),
}


@dataclass
class _Running:
    request_id: str
    priority: int
    aborted: anyio.Event = field(default_factory=anyio.Event)


class AsyncLLM:
    """A fake of ``vllm.v1.engine.async_llm.AsyncLLM`` (see the module docstring).

    :param step_s: seconds per engine step.
    :param tokens_per_step: tokens each sample gains per step.
    :param gpu_memory: the fraction of GPU memory free; a larger
        ``gpu_memory_utilization`` fails the start as vLLM does ("Free memory on device
        ... is less than desired GPU memory utilization").
    :param start_error: fail the start with one of :data:`START_ERRORS`.
    :param start_s: wall-clock seconds the start blocks its thread (loading a model does).
    :param ignore_abort: a broken engine: ``abort()`` does nothing and a request whose
        caller went away stays in ``running`` (tests of checks that must notice).
    :param legacy_errors: an older release: reject requests with ``ValueError``, as vLLM
        did before 0.27 (:func:`legacy_sampling_params` does so for ``SamplingParams``),
        and refuse a non-zero priority under ``fcfs`` and a request id already running.
    """

    def __init__(self, args: AsyncEngineArgs | None = None, *, step_s: float = 0.0,
                 tokens_per_step: int = 4, gpu_memory: float = 0.95,
                 start_error: str | None = None, start_s: float = 0.0,
                 ignore_abort: bool = False, legacy_errors: bool = False) -> None:
        self.args = args or AsyncEngineArgs()
        self.ignore_abort = ignore_abort
        self._invalid: type[Exception] = ValueError if legacy_errors else VLLMValidationError
        self._rejecting: Exception | None = None
        if start_s:
            time.sleep(start_s)  # blocking on purpose, as vLLM's start is
        if start_error is not None:
            cls, message = START_ERRORS[start_error]
            raise cls(message)
        wanted = self.args.gpu_memory_utilization
        if wanted > gpu_memory:
            raise ValueError(
                f"Free memory on device ({79.19 * gpu_memory:.2f}/79.19 GiB) on startup is "
                f"less than desired GPU memory utilization ({wanted}, "
                f"{79.19 * wanted:.2f} GiB). Decrease GPU memory utilization or reduce GPU "
                "memory used by other processes.")
        self.step_s = step_s
        self.tokens_per_step = tokens_per_step
        self.requests: list[dict[str, Any]] = []
        self.aborted: list[str] = []
        self.running: dict[str, _Running] = {}
        self.dead = False
        self.hung = False
        self.hung_health = False
        self.failing: str | None = None
        self.shut_down = False
        self._tokenizer = FakeTokenizer()
        self._texts = SimulatedBackend(ModelConfig(
            backend="simulated", options={"time_scale": 0, "capacity": 1_000_000,
                                          "output_tokens": "text"}))

    @classmethod
    def from_engine_args(cls, engine_args: AsyncEngineArgs, **kwargs: Any) -> AsyncLLM:
        return cls(engine_args, **kwargs)

    def get_tokenizer(self) -> FakeTokenizer:
        return self._tokenizer

    async def check_health(self) -> None:
        if self.hung_health:
            await anyio.sleep_forever()
        if self.dead:
            raise EngineDeadError("EngineCore encountered an issue.")

    def shutdown(self) -> None:
        self.shut_down = True

    def kill(self) -> None:
        """Make every running and later request fail as when vLLM's engine core dies."""
        self.dead = True
        for running in self.running.values():
            running.aborted.set()

    def hang(self, *, health: bool = False) -> None:
        """Stop making progress, as an engine whose core is stuck: running and later
        requests get no further output until they are aborted or cancelled. vLLM's
        ``check_health()`` only sees a dead core, so it still answers, unless ``health``
        (then it never answers either)."""
        self.hung = True
        self.hung_health = health

    def fail(self, reason: str | None) -> None:
        """Fail the next requests' ``generate()`` with ``EngineGenerateError`` (caused by
        a ``RuntimeError(reason)``); None stops failing them."""
        self.failing = reason

    def reject(self, error: Exception | None) -> None:
        """Make the next requests' ``generate()`` raise ``error`` as it is (an error vLLM
        lets through unwrapped: a ``VLLMClientError``); None stops it."""
        self._rejecting = error

    async def abort(self, request_id: str) -> None:
        if self.ignore_abort:
            return
        self.aborted.append(request_id)
        running = self.running.get(request_id)
        if running is not None:
            running.aborted.set()

    async def generate(self, prompt: str, sampling_params: SamplingParams, request_id: str, *,
                       priority: int = 0, **kwargs: Any) -> AsyncGenerator[RequestOutput, None]:
        if self.dead:
            raise EngineDeadError("EngineCore encountered an issue.")
        if self._rejecting is not None:
            raise self._rejecting
        legacy = self._invalid is ValueError
        if legacy and priority != 0 and self.args.scheduling_policy != "priority":
            raise ValueError(f"Got priority {priority} but Priority scheduling is not enabled.")
        if legacy and request_id in self.running:
            raise ValueError(f"Request id {request_id} already running.")
        if request_id in self.running:  # vLLM 0.33 makes its internal ids unique
            request_id = f"{request_id}-{len(self.requests)}"
        prompt_ids = self._tokenizer.encode(prompt)
        max_len = self.args.max_model_len or DEFAULT_MAX_MODEL_LEN
        if len(prompt_ids) > max_len:
            raise self._invalid(
                f"The decoder prompt (length {len(prompt_ids)}) is longer than the maximum "
                f"model length of {max_len}. Make sure that `max_model_len` is no smaller "
                "than the number of text tokens.")
        limit = sampling_params.max_tokens
        if limit is None:  # vLLM: as many as the context leaves
            limit = max_len - len(prompt_ids)
        self.requests.append({"prompt": prompt, "params": sampling_params,
                              "request_id": request_id, "priority": priority})
        running = self.running[request_id] = _Running(request_id, priority)
        ended = False
        try:
            if self.failing is not None:
                try:
                    raise RuntimeError(self.failing)
                except RuntimeError as exc:
                    raise EngineGenerateError() from exc
            texts = await self._plan(prompt, sampling_params, limit)
            steps = max(math.ceil(len(t) / (4 * self.tokens_per_step)) for t in texts)
            returned: set[int] = set()  # finished samples, sent already
            for step in range(1, steps + 1):
                if self.step_s:
                    with anyio.move_on_after(self.step_s):
                        await running.aborted.wait()
                else:
                    await anyio.lowlevel.checkpoint()
                if self.hung:
                    await running.aborted.wait()
                if self.dead:
                    raise EngineDeadError("EngineCore encountered an issue.")
                if running.aborted.is_set():
                    return
                progressed = []
                for index, text in enumerate(texts):
                    if index in returned:
                        continue
                    part = text[: step * 4 * self.tokens_per_step]
                    tokens = self._tokenizer.encode(part)[:limit]
                    reason = None
                    if step == steps or len(tokens) >= limit:
                        reason = "length" if len(self._tokenizer.encode(text)) > limit else "stop"
                        returned.add(index)
                    progressed.append(CompletionOutput(index, part[: 4 * len(tokens)], tokens,
                                                       finish_reason=reason))
                for position, output in enumerate(progressed):
                    last = len(returned) == len(texts) and position == len(progressed) - 1
                    ended = last
                    yield RequestOutput(request_id, prompt, prompt_ids, None, [output], last)
                if len(returned) == len(texts):
                    return
            ended = True
        finally:  # vLLM aborts a request whose generator is closed or cancelled too
            if ended or not self.ignore_abort:
                self.running.pop(request_id, None)

    async def _plan(self, prompt: str, params: SamplingParams, limit: int) -> list[str]:
        schema = params.structured_outputs.json if params.structured_outputs else None
        response = await self._texts.complete(LLMRequest(
            # one token more than the limit: a text cut at the limit then says "length"
            messages=[{"role": "user", "content": prompt}], max_tokens=limit + 1,
            temperature=params.temperature, top_p=params.top_p, n=params.n, seed=params.seed,
            json_schema=schema if isinstance(schema, dict) else None))
        return response.texts or [response.text]


def legacy_sampling_params(**kwargs: Any) -> SamplingParams:
    """``SamplingParams`` as vLLM before 0.27 validated them: with ``ValueError``."""
    try:
        return SamplingParams(**kwargs)
    except VLLMValidationError as exc:
        raise ValueError(str(exc)) from None
