"""``vllm``: vLLM's engine in this process (``AsyncLLM``), one per model and GPU.

vLLM is imported only when this backend is chosen; without it (the ``gpu`` extra) or
without a CUDA GPU, choosing it fails with a :class:`ConfigError` that says so. The
engine starts on the first call (in a worker thread: the event loop goes on meanwhile)
and is shared by every run of the process that uses
the same engine arguments (a GPU holds one); it stays loaded until
:func:`shutdown_engines` or the end of the process.

Tests use :mod:`executors.engines.fake_vllm`, which has the same API, through the
``api`` (or ``engine``) constructor argument.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import anyio
from pydantic import Field, JsonValue, field_validator

from executors.engines._hub import SHARED, SharedObjects
from executors.engines._meta import with_meta
from executors.llm._common import BackendOptions, engine_int, parse_options, refuse_reserved
from executors.llm._request_errors import is_request_error
from orchestrator._extras import extra_missing, installed
from orchestrator.errors import (
    BackendError,
    BackendHTTPError,
    BackendUnavailable,
    ConfigError,
)
from orchestrator.runtime.contracts import LLMChunk, LLMRequest, LLMResponse
from orchestrator.spec.models import ModelConfig

_DEAD_ERRORS = ("EngineDeadError", "AsyncEngineDeadError")
_PINNED_START = threading.Lock()
_ids = itertools.count(1)


class VLLMOptions(BackendOptions):
    """The ``options:`` of the ``vllm`` backend: vLLM engine arguments (see VLLMBackend)."""

    model: str | None = None
    dtype: str = "auto"
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    max_model_len: int | None = Field(None, ge=1)
    enable_prefix_caching: bool = True
    tensor_parallel_size: int = Field(1, ge=1)
    max_num_seqs: int | None = Field(None, ge=1)
    scheduling_policy: Literal["priority", "fcfs"] = "priority"
    seed: int = 0
    gpu: int | None = Field(None, ge=0)
    chat_template: bool = True
    engine_args: dict[str, Any] = Field(default_factory=dict)
    sampling_params: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("sampling_params")
    @classmethod
    def _not_set_by_ponder(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        refuse_reserved(value, _SET_BY_PONDER, "Ponder sets", "sampling_params")
        return value


#: the ``SamplingParams`` fields each request sets from its step, with where from
_SET_BY_PONDER = {
    "n": "from the step's `n`",
    "temperature": "from the step's `temperature`",
    "top_p": "from the step's `top_p`",
    "max_tokens": "from the step's `max_tokens`",
    "stop": "from the step's `stop`",
    "seed": "from the step's `seed`",
    "structured_outputs": "from the step's `output_schema`",
    "guided_decoding": "from the step's `output_schema`",
}


@dataclass(frozen=True)
class VLLMApi:
    """The parts of vLLM the backend uses (the real ones, or the fake's)."""

    engine_args: Callable[..., Any]
    async_llm: Any
    sampling_params: Callable[..., Any]
    structured_outputs: Callable[..., Any] | None = None
    guided_decoding: Callable[..., Any] | None = None
    #: building the engine blocks (vLLM's does: the model loads): build it in a worker
    #: thread. The fake's start is instant unless asked to block, and a thread would race
    #: the virtual clock of the engine tests.
    blocking_start: bool = True


def load_vllm_api() -> VLLMApi:
    """Import vLLM.

    :raises ConfigError: when vLLM is not installed or no CUDA GPU is visible.
    """
    try:
        import vllm
        from vllm import SamplingParams, sampling_params
        from vllm.engine.arg_utils import AsyncEngineArgs
    except ImportError as exc:
        raise ConfigError(f"{extra_missing('the vllm backend', 'gpu', 'vLLM')} ({exc})") from None
    try:
        from vllm.v1.engine.async_llm import AsyncLLM
    except ImportError:  # releases before the v1 engine
        AsyncLLM = vllm.AsyncLLMEngine
    _require_gpu()
    return VLLMApi(AsyncEngineArgs, AsyncLLM, SamplingParams,
                   getattr(sampling_params, "StructuredOutputsParams", None),
                   getattr(sampling_params, "GuidedDecodingParams", None))


def fake_vllm_api(**engine_kwargs: Any) -> VLLMApi:
    """The API of :mod:`executors.engines.fake_vllm`; ``engine_kwargs`` go to its AsyncLLM."""
    from executors.engines import fake_vllm

    class _Fake(fake_vllm.AsyncLLM):
        @classmethod
        def from_engine_args(cls, engine_args: Any, **kwargs: Any) -> fake_vllm.AsyncLLM:
            return fake_vllm.AsyncLLM(engine_args, **{**engine_kwargs, **kwargs})

    params = (fake_vllm.legacy_sampling_params if engine_kwargs.get("legacy_errors")
              else fake_vllm.SamplingParams)
    return VLLMApi(fake_vllm.AsyncEngineArgs, _Fake, params, fake_vllm.StructuredOutputsParams,
                   blocking_start=bool(engine_kwargs.get("start_s")))


def _require_gpu(index: int | None = None) -> None:
    try:
        import torch
    except ImportError as exc:
        raise ConfigError(f"vllm backend: PyTorch is missing ({exc})") from None
    if not torch.cuda.is_available():
        raise ConfigError("vllm backend: no CUDA GPU is visible (torch.cuda.is_available() "
                          "is False); use `backend: openai` with a vLLM server elsewhere, or "
                          "`sim-engine` to simulate one")
    if index is not None and index >= torch.cuda.device_count():
        raise ConfigError(f"vllm backend: gpu {index} does not exist "
                          f"({torch.cuda.device_count()} visible)")


class VLLMBackend:
    """vLLM's ``AsyncLLM`` in this process (see the module docstring).

    Options (``ModelConfig.options``); the first ones are vLLM engine arguments:

    ====================== ========= ==================================================
    option                 default   meaning
    ====================== ========= ==================================================
    model                  ``model`` model path or Hugging Face id
    dtype                  auto      weights' dtype
    gpu_memory_utilization 0.9       share of GPU memory for weights and KV cache
    max_model_len          model's   context length
    enable_prefix_caching  true      reuse KV blocks of shared prefixes
    tensor_parallel_size   1         GPUs per engine
    max_num_seqs           vLLM's    sequences per batch
    scheduling_policy      priority  ``priority`` (Ponder's priorities) or ``fcfs``
    seed                   0         engine seed
    gpu                    none      CUDA device index of this engine
    chat_template          true      format messages with the tokenizer's template
    engine_args            {}        any other ``AsyncEngineArgs`` field
    sampling_params        {}        ``SamplingParams`` fields for every request
                                     (``top_k``, ``min_p``, ``repetition_penalty``...);
                                     not those a step sets (``n``, ``temperature``,
                                     ``top_p``, ``max_tokens``, ``stop``, ``seed``, the
                                     schema's)
    ====================== ========= ==================================================

    Per call: the step's ``output_schema`` becomes ``StructuredOutputsParams(json=...)``
    (xgrammar; ``GuidedDecodingParams`` on releases before it), ``n`` samples are one
    request, the step's priority is passed (vLLM serves lower integers first, so it is
    negated, in thousandths: ``-round(1000 * priority)``), and cancelling the call
    aborts the request at the engine. The response records tokens, time to first token
    and decode time.

    Errors: a request that fails in the engine (vLLM's ``EngineGenerateError``) →
    :class:`BackendError` naming its cause (a pool tries another engine); an engine
    that cannot start → :class:`BackendError` naming the cause; for
    lack of GPU memory (CUDA out of memory, "Free memory on device ... is less than
    desired", "No available memory for the cache blocks", a KV cache too small for
    ``max_model_len``, "Engine core initialization failed") it also names the values of
    ``gpu_memory_utilization``, ``max_model_len`` and ``max_num_seqs`` and what to
    change; a dead engine → :class:`BackendUnavailable`
    (a pool retries elsewhere); a request vLLM rejects → :class:`BackendHTTPError` 400.
    """

    options_model = VLLMOptions  # what `ponder validate` checks the model's options against

    default_concurrency = 256

    @classmethod
    def missing_extra(cls, config: ModelConfig) -> str | None:
        """Why this machine cannot build the backend for want of the ``gpu`` extra (vLLM),
        found without importing it; None when it is installed. (A GPU is not looked
        for: that is a property of the machine a run starts on.)"""
        return None if installed("vllm") else extra_missing("the vllm backend", "gpu", "vLLM")

    def __init__(self, config: ModelConfig, *, api: VLLMApi | None = None,
                 engine: Any = None, shared: SharedObjects | None = None) -> None:
        """:param api: vLLM's API (default: import vLLM; needs a GPU).
        :param engine: an engine to use instead of starting one (not closed here).
        :raises ConfigError: for bad options, without vLLM or without a GPU.
        """
        self.config = config
        self.options = parse_options(self.options_model, config.options, "vllm")
        self.model = self.options.model or config.model or ""
        if engine is None and not self.model:
            raise ConfigError("vllm backend: set `model:` (a path or Hugging Face id)")
        self._engine = engine
        self._injected = engine is not None
        self._api = api if api is not None or engine is not None else load_vllm_api()
        if self._api is not None and self.options.sampling_params:
            try:  # a field vLLM does not have, or a value it refuses, before any run
                self._api.sampling_params(**self.options.sampling_params)
            except Exception as exc:  # TypeError, ValueError, VLLMValidationError (0.27+)
                raise ConfigError(f"vllm backend options: sampling_params: {exc}") from None
        if api is None and engine is None and self.options.gpu is not None:
            _require_gpu(self.options.gpu)
        self._shared = shared if shared is not None else SHARED
        self._key = "vllm:" + json.dumps(self._engine_args(), sort_keys=True, default=str)
        self._held = False
        self._start_error: BackendError | None = None
        self._lock = anyio.Lock()
        self._tokenizer: Any = None

    @property
    def name(self) -> str:
        gpu = f"@gpu{self.options.gpu}" if self.options.gpu is not None else ""
        return f"vllm:{self.model or 'engine'}{gpu}"

    @property
    def engine_key(self) -> str | None:
        """The engine this backend uses: backends with the same engine arguments (and
        ``gpu``) share one engine in this process, so an engine pool refuses to count it
        twice. None for an engine given to the constructor."""
        return None if self._injected else self._key

    async def health(self) -> bool:
        """The engine's ``check_health()``; True before it started, False if it cannot."""
        if self._start_error is not None:
            return False
        if self._engine is None:
            return True
        try:
            await self._engine.check_health()
        except Exception:
            return False
        return True

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Run one request to completion (see :meth:`stream` for errors)."""
        async with aclosing(self.stream(request)) as chunks:
            async for chunk in chunks:
                if chunk.final is not None:
                    return chunk.final
        raise BackendError(f"{self.name}: the stream ended without a final chunk")

    async def stream(self, request: LLMRequest) -> AsyncGenerator[LLMChunk, None]:
        """Yield the first sample's text as it is decoded; the last chunk is final.

        The request's ``usage`` counter, when given, follows the engine's outputs: the
        prompt's tokens with the first output, then every sample's decoded tokens. A
        cancelled call (``n > 1`` through :meth:`complete` too) leaves in it what the
        engine had decoded until then.

        :raises BackendError: when the engine cannot start.
        :raises BackendUnavailable: when the engine is dead.
        :raises BackendHTTPError: (400) when vLLM rejects the request.
        """
        engine = await self._started()
        prompt = await self._prompt(engine, request)
        with self._errors():  # vLLM validates sampling parameters with ValueError
            params = self._sampling(request)
        request_id = f"{request.request_id or 'ponder'}#{next(_ids)}"
        kwargs: dict[str, Any] = {}
        if self.options.scheduling_policy == "priority" and request.priority:
            kwargs["priority"] = engine_int(request.priority)  # vLLM: lower goes first
        start = anyio.current_time()
        first: float | None = None
        texts: dict[int, str] = {}
        tokens: dict[int, int] = {}
        reasons: dict[int, str | None] = {}
        prompt_tokens = 0
        counted = _Counter(request)
        sent = 0
        finished = False
        try:
            with self._errors():
                async with aclosing(engine.generate(prompt, params, request_id,
                                                    **kwargs)) as outputs:
                    async for out in outputs:
                        prompt_tokens = len(out.prompt_token_ids or ()) or prompt_tokens
                        for sample in out.outputs:  # cumulative, one entry per sample seen
                            texts[sample.index] = sample.text
                            tokens[sample.index] = len(sample.token_ids)
                            reasons[sample.index] = sample.finish_reason
                        counted.update(prompt_tokens, sum(tokens.values()))
                        head = texts.get(0, "")
                        if len(head) > sent:
                            first = first if first is not None else anyio.current_time()
                            yield LLMChunk(head[sent:])
                            sent = len(head)
                        if out.finished:
                            break
            finished = True
        finally:
            if not finished:
                with anyio.CancelScope(shield=True):
                    await self._abort(engine, request_id)
        end = anyio.current_time()
        ordered = [texts[i] for i in sorted(texts)] or [""]
        response = LLMResponse(
            text=ordered[0],
            prompt_tokens=prompt_tokens,
            completion_tokens=sum(tokens.values()),
            latency_s=end - start,
            ttft_s=(first - start) if first is not None else None,
            finish_reason=reasons.get(0),
            model=self.model,
            texts=ordered,
        )
        yield LLMChunk("", final=with_meta(response, {
            "engine": self.name, "request_id": request_id,
            "decode_s": (end - first) if first is not None else None,
            "engine_priority": kwargs.get("priority", 0)}))

    async def aclose(self) -> None:
        """Release this run's hold on the engine (it stays loaded for later runs)."""
        if self._held:
            self._held = False
            await self._shared.release(self._key)

    # -- internals ------------------------------------------------------------------------
    def _engine_args(self) -> dict[str, Any]:
        o = self.options
        args: dict[str, Any] = {
            "model": self.model, "dtype": o.dtype,
            "gpu_memory_utilization": o.gpu_memory_utilization,
            "max_model_len": o.max_model_len, "enable_prefix_caching": o.enable_prefix_caching,
            "tensor_parallel_size": o.tensor_parallel_size, "max_num_seqs": o.max_num_seqs,
            "scheduling_policy": o.scheduling_policy, "seed": o.seed,
        }
        args = {k: v for k, v in args.items() if v is not None}
        return {**args, **o.engine_args, "__gpu": o.gpu}

    async def _started(self) -> Any:
        if self._injected or self._held:
            return self._engine
        if self._start_error is not None:
            raise self._start_error
        async with self._lock:
            if not self._held:
                try:
                    self._engine = await self._shared.acquire_async(
                        self._key, self._start_in_thread, _shutdown, keep=True)
                except ConfigError:
                    raise
                except Exception as exc:
                    self._start_error = BackendError(
                        _start_message(self.name, exc, self._engine_args()))
                    raise self._start_error from exc
                self._held = True
        return self._engine

    async def _start_in_thread(self) -> Any:
        # Building an AsyncLLM blocks for as long as the model loads and the engine core
        # process starts (tens of seconds): in a worker thread, the event loop keeps
        # serving the other engines' calls meanwhile. vLLM supports building it outside
        # an event loop (its OpenAI server does): the output handler starts on the first
        # request, in the loop.
        assert self._api is not None
        if not self._api.blocking_start:
            return self._start()
        return await anyio.to_thread.run_sync(self._start)

    def _start(self) -> Any:
        assert self._api is not None
        args = self._engine_args()
        gpu = args.pop("__gpu")
        try:
            engine_args = self._api.engine_args(**args)
        except TypeError as exc:
            raise ConfigError(f"vllm backend: bad engine argument: {exc}") from None
        if gpu is None:
            return self._api.async_llm.from_engine_args(engine_args)
        # CUDA_VISIBLE_DEVICES is process-wide and read when the engine core process is
        # spawned: engines pinned to GPUs start one at a time
        with _PINNED_START, _visible_gpu(gpu):
            return self._api.async_llm.from_engine_args(engine_args)

    async def _prompt(self, engine: Any, request: LLMRequest) -> str:
        if self.options.chat_template:
            if self._tokenizer is None:
                tokenizer = engine.get_tokenizer()
                if hasattr(tokenizer, "__await__"):  # releases where it is a coroutine
                    tokenizer = await tokenizer
                self._tokenizer = tokenizer
            apply = getattr(self._tokenizer, "apply_chat_template", None)
            if apply is not None:
                try:
                    return str(apply(request.messages, tokenize=False,
                                     add_generation_prompt=True))
                except Exception as exc:  # a base model without a chat template
                    if "chat_template" not in str(exc) and "chat template" not in str(exc):
                        raise
        return "\n\n".join(m.get("content", "") for m in request.messages)

    def _sampling(self, request: LLMRequest) -> Any:
        assert self._api is not None
        kwargs: dict[str, Any] = {
            **self.options.sampling_params,
            "n": request.n, "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.stop:
            kwargs["stop"] = list(request.stop)
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.top_p is not None:  # else SamplingParams' default, 1.0
            kwargs["top_p"] = request.top_p
        if request.json_schema is not None:
            if self._api.structured_outputs is not None:
                kwargs["structured_outputs"] = self._api.structured_outputs(
                    json=request.json_schema)
            elif self._api.guided_decoding is not None:
                kwargs["guided_decoding"] = self._api.guided_decoding(json=request.json_schema)
            else:  # the schema would be dropped and the step get free text
                raise ConfigError(
                    f"{self.name}: this vLLM release ({_vllm_version()}) has neither "
                    "StructuredOutputsParams nor GuidedDecodingParams in "
                    "vllm.sampling_params, so it cannot hold a step's `output_schema`; "
                    "install vLLM 0.6.2 or later (the `gpu` extra pins a release that can)")
        return self._api.sampling_params(**kwargs)

    async def _abort(self, engine: Any, request_id: str) -> None:
        try:
            await engine.abort(request_id)
        except Exception:  # a dead engine has nothing left to abort
            return

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (anyio.get_cancelled_exc_class(), GeneratorExit):
            raise
        except (BackendError, ConfigError):
            raise
        except Exception as exc:
            if type(exc).__name__ in _DEAD_ERRORS:
                raise BackendUnavailable(f"{self.name}: the engine is dead: {exc}") from exc
            if type(exc).__name__ == "EngineGenerateError":  # vLLM chains the cause
                cause = exc.__cause__ or exc
                status = _request_error_status(cause)
                if status is not None:
                    raise BackendHTTPError(f"{self.name}: the engine refused the request: "
                                           f"{type(cause).__name__}: {cause}",
                                           status=status) from exc
                raise BackendError(f"{self.name}: the engine failed the request: "
                                   f"{type(cause).__name__}: {cause}") from exc
            status = _request_error_status(exc)
            if status is not None:
                raise BackendHTTPError(f"{self.name}: the engine rejected the request: {exc}",
                                       status=status) from exc
            raise BackendError(f"{self.name}: {type(exc).__name__}: {exc}") from exc


def _request_error_status(exc: BaseException) -> int | None:
    """The HTTP status vLLM's server gives an error of a request, None for a server error.

    Since vLLM 0.27 its errors say whose fault they are by class, matched here by name:
    ``VLLMClientError`` and its subclasses (``VLLMValidationError``: 400,
    ``VLLMNotFoundError``: 404, ``VLLMUnprocessableEntityError``: 422) are the request's,
    and ``GracefulHTTPError`` (admission control) carries its own ``http_status``.
    Before, validation raised ``ValueError`` (``TypeError`` for a bad keyword).
    """
    names = {cls.__name__ for cls in type(exc).__mro__}
    status = getattr(exc, "http_status", None)
    if "GracefulHTTPError" in names and isinstance(status, int):
        return int(status)
    if "VLLMClientError" in names:
        if "VLLMNotFoundError" in names:
            return 404
        return 422 if "VLLMUnprocessableEntityError" in names else 400
    return 400 if is_request_error(exc) else None


_OOM_ADVICE = ("lower `gpu_memory_utilization`, `max_model_len` or `max_num_seqs`, or pick a "
               "smaller model")
#: what vLLM (v1) and PyTorch say when an engine cannot start for lack of GPU memory,
#: lower-cased, with what to change; the first match wins
_MEMORY_FAILURES: tuple[tuple[str, str], ...] = (
    ("less than desired gpu memory utilization",
     "other processes hold part of the GPU's memory: lower `gpu_memory_utilization` below "
     "the free share, or free the GPU"),
    ("no available memory for the cache blocks",
     "the weights leave no room for a KV cache: raise `gpu_memory_utilization` if the GPU "
     "has room, or pick a smaller (or quantised) model"),
    ("kv cache is needed",
     "the KV cache cannot hold one request of the full context: lower `max_model_len`, "
     "raise `gpu_memory_utilization` if the GPU has room, or pick a smaller model"),
    ("out of memory", _OOM_ADVICE),
    ("outofmemory", _OOM_ADVICE),  # torch.OutOfMemoryError
    ("engine core initialization failed",
     "vLLM's log above names the cause; most often it is GPU memory: lower "
     "`gpu_memory_utilization` or `max_model_len`, or pick a smaller model"),
)


class _Counter:
    """Adds what the engine reported since the last output to ``LLMRequest.usage``."""

    def __init__(self, request: LLMRequest) -> None:
        self.usage = request.usage
        self.prompt = 0
        self.completion = 0

    def update(self, prompt_tokens: int, completion_tokens: int) -> None:
        if self.usage is None:
            return
        self.usage.prompt_tokens += prompt_tokens - self.prompt
        self.usage.completion_tokens += completion_tokens - self.completion
        self.prompt, self.completion = prompt_tokens, completion_tokens


def _start_message(name: str, exc: BaseException, args: dict[str, Any]) -> str:
    """One line saying why the engine did not start and, for memory, what to change,
    naming the values it was started with. vLLM's own words are kept, on one line: some
    of its errors take several (a model config it refuses, from pydantic)."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    lowered = text.lower()
    for needle, advice in _MEMORY_FAILURES:
        if needle in lowered:
            used = ", ".join(f"{key}={args.get(key)!r}" for key in (
                "model", "gpu_memory_utilization", "max_model_len", "max_num_seqs"))
            kind = ("the engine core failed to start" if needle.startswith("engine core")
                    else "not enough GPU memory")
            return (f"{name}: the engine could not start: {kind} ({used}; None is vLLM's "
                    f"default): {text.rstrip('. ')}. To fix: {advice}")
    return f"{name}: the engine could not start: {text}"


@contextmanager
def _visible_gpu(gpu: int | None) -> Iterator[None]:
    """Show only ``gpu`` to the engine's processes while it starts."""
    if gpu is None:
        yield
        return
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    visible = before.split(",") if before else None
    os.environ["CUDA_VISIBLE_DEVICES"] = visible[gpu] if visible else str(gpu)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = before


def _vllm_version() -> str:
    try:
        from importlib.metadata import version

        return "vllm " + version("vllm")
    except Exception:
        return "vllm, version unknown"


async def _shutdown(engine: Any) -> None:
    shutdown = getattr(engine, "shutdown", None)
    if callable(shutdown):
        shutdown()


async def shutdown_engines() -> None:
    """Stop every engine this process started (and everything else shared)."""
    await SHARED.aclose()
