"""Any OpenAI-compatible chat completions server, through the official ``openai`` client."""

from __future__ import annotations

import datetime
import email.utils
import json
import math
import os
from collections.abc import AsyncGenerator, Iterator, Mapping
from contextlib import aclosing, contextmanager
from typing import Any, Literal
from urllib.parse import urlsplit

import anyio
import openai
import pydantic
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion
from pydantic import Field, JsonValue, field_validator, model_validator

from executors.llm._common import (
    BackendOptions,
    BackendStats,
    check_request,
    engine_int,
    parse_options,
    refuse_reserved,
    samples_finish,
)
from executors.llm._json_output import grammar_schema
from orchestrator.errors import (
    BackendError,
    BackendHTTPError,
    BackendUnavailable,
    ConfigError,
    StepError,
    StepTimeout,
    shown,
)
from orchestrator.runtime.contracts import (
    LLMChunk,
    LLMRequest,
    LLMResponse,
    Usage,
    approx_prompt_tokens,
    approx_tokens,
)
from orchestrator.runtime.registry import ConfigProblem
from orchestrator.spec.models import ModelConfig

BASE_URL_ENV = "PONDER_OPENAI_BASE_URL"
MODEL_ENV = "PONDER_OPENAI_MODEL"
KEY_ENV = "OPENAI_API_KEY"
#: what a base URL looks like, as the messages about one that is not a URL show it
URL_EXAMPLE = "http://127.0.0.1:8000/v1"


#: the request fields Ponder writes itself, each with where its value comes from: an
#: ``extra_body`` key among them would replace or contradict it
_SENT_BY_PONDER = {
    "model": "set from the model config's `model`",
    "messages": "set from the step's prompt",
    "max_tokens": "set from the step's `max_tokens`",
    "max_completion_tokens": "set from the step's `max_tokens`",
    "temperature": "set from the step's `temperature`",
    "top_p": "set from the step's `top_p`",
    "stop": "set from the step's `stop`",
    "seed": "set from the step's `seed`",
    "n": "set from the step's `n`",
    "response_format": "set from the step's `output_schema` with `structured_outputs`",
    "stream": "set from Ponder, which streams when a step needs it",
    "stream_options": "set from Ponder, which asks for usage in streams",
}
#: written only with ``server: vllm``
_SENT_FOR_VLLM = {
    "priority": ("set from the step's critical-path priority (`send_priority: false` "
                 "sends none)"),
    "request_id": "set from the step's id",
}


class OpenAIOptions(BackendOptions):
    """The ``options:`` of the openai backend (see :class:`OpenAIBackend`)."""

    structured_outputs: Literal["json_schema", "json_object", "none"] = "json_schema"
    server: Literal["generic", "vllm"] = "generic"
    send_priority: bool = True
    idle_timeout_s: float | None = Field(120.0, gt=0)
    total_timeout_s: float | None = Field(1800.0, gt=0)
    extra_body: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("extra_body")
    @classmethod
    def _not_sent_by_ponder(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        refuse_reserved(value, _SENT_BY_PONDER, "Ponder sends", "extra_body")
        return value

    @model_validator(mode="after")
    def _not_sent_for_vllm(self) -> OpenAIOptions:
        if self.server == "vllm":
            refuse_reserved(self.extra_body, _SENT_FOR_VLLM,
                            "with server: vllm, Ponder sends", "extra_body")
        return self


class OpenAIBackend:
    """An OpenAI-compatible server (OpenAI, vLLM, llama.cpp's server, ...).

    Settings: ``base_url`` (else ``$PONDER_OPENAI_BASE_URL``, else OpenAI's),
    ``model`` (else ``$PONDER_OPENAI_MODEL``), the key from the variable named by
    ``api_key_env``, else ``$OPENAI_API_KEY``, else ``"not-needed"`` when a base
    URL is set. ``request_timeout_s`` bounds each HTTP request. The client never
    retries: the scheduler does, with :func:`orchestrator.errors.is_retryable`.

    Options (``ModelConfig.options``):

    ================== ============== =================================================
    option             default        meaning
    ================== ============== =================================================
    structured_outputs "json_schema"  how ``json_schema`` is sent: ``"json_schema"``
                                      (OpenAI, vLLM), ``"json_object"`` (llama.cpp's
                                      ``{"type": "json_object", "schema": ...}``, the
                                      schema in the forms its converter renders
                                      exactly),
                                      ``"none"`` (not sent; the executor validates)
    server             "generic"      ``"vllm"`` also sends ``priority`` (negated, in
                                      thousandths: ``-round(1000 * priority)``) and
                                      ``request_id``
    send_priority      true           with ``server: vllm``: send ``priority`` (the server
                                      must run ``--scheduling-policy priority``, else it
                                      answers 400)
    idle_timeout_s     120            a stream that sends no content (text, a finish
                                      reason, usage) for this long, once its content has
                                      begun, fails; keep-alive chunks and comments do not
                                      count; ``null``: no limit
    total_timeout_s    1800           one request (streamed or not, the wait for its first
                                      token included) fails after this long; ``null``: no
                                      limit
    extra_body         {}             more fields of each request's JSON body, for the
                                      server's own sampling settings (``top_k``,
                                      ``min_p``, llama.cpp's ``repeat_penalty``, vLLM's
                                      ``repetition_penalty``); the fields Ponder writes
                                      itself (``messages``, ``max_tokens``, ...) are
                                      refused
    ================== ============== =================================================

    ``request_timeout_s`` is the HTTP client's: it bounds connecting and each read, so a
    server that sends a byte now and then never trips it; the two limits above do.

    Errors: a ``base_url`` that is not an http(s) URL → :class:`ConfigError` when
    constructed (a run is refused before it starts: :meth:`config_problems`,
    :meth:`field_problems`); unreachable server, a stream cut before its finish reason,
    or a stream without any event (a connection dropped after the headers looks the same as a server
    that answered nothing; retries bound the second) → :class:`BackendUnavailable`; HTTP
    timeout or one of the limits above → :class:`StepTimeout` (naming the option), HTTP
    status → :class:`BackendHTTPError` (the server's message on one line, with a hint for
    401/403 and 404; its ``retry_after_s`` is the server's ``Retry-After``, which an engine
    pool honours for 429 and 503, and a step's ``retry:`` policy waits out, up to its
    ``max_backoff_s``); a refused ``json_schema`` (whatever the status: llama.cpp's server
    answers 500), an answer that is not a chat completion (a choice or its message not an
    object), has no choices or no text (``content: null``; a stream whose first choice
    sent only a tool call, thinking or a refusal), or content that is not text
    (each naming what came), or a stream chunk of the wrong shape (its choices, index,
    content or finish reason not what a chat completion chunk holds) → :class:`BackendError`,
    which is not retried; an error event in a stream (vLLM's server sends one when the
    engine fails after the answer began) → :class:`BackendHTTPError` of the HTTP status
    in its ``code`` (a 5xx is retried), else :class:`BackendError`. Each names the URL.
    An error in the middle of a stream keeps the text received so far
    (``StepError.raw_output``). Tokens the server reports with an unusable answer or an
    error status are added to ``LLMRequest.usage``. An answer without ``usage`` counts
    estimates (four characters a token) of its prompt and text. Cancelling the awaiting task closes
    the HTTP response, which makes the server stop (llama.cpp's server stops a stream,
    but finishes an answer that is not streamed). A server that ignores ``stream: true``
    and sends the whole answer as one JSON body is read as that answer (a stream of one
    chunk and the final one, without a time to first token).
    """

    options_model = OpenAIOptions  # what `ponder validate` checks the model's options against

    default_concurrency = 16

    @classmethod
    def config_problems(cls, config: ModelConfig, env: Mapping[str, str]
                        ) -> list[ConfigProblem]:
        """What ``config`` lacks in the environment ``env`` (every one; the run is refused
        before it starts, see ``Registry.backend_config_problems``): a server URL that is
        not an http(s) URL (``base_url``, else ``$PONDER_OPENAI_BASE_URL``), a model name
        to send (no ``model``, ``$PONDER_OPENAI_MODEL`` unset), and a server of its own (no
        ``base_url``, ``$PONDER_OPENAI_BASE_URL`` unset) when there is no key either for
        OpenAI's API (``$OPENAI_API_KEY``, or the variable ``api_key_env`` names). A server
        of one's own needs no key."""
        problems = [ConfigProblem(message, hint, "base_url: URL")
                    for _, message, hint in cls.field_problems(config)]
        if not config.base_url and env.get(BASE_URL_ENV):
            words = _base_url_problem(env[BASE_URL_ENV])
            if words is not None:
                problems.append(ConfigProblem(
                    f"${BASE_URL_ENV} {shown(env[BASE_URL_ENV])} {words}",
                    f"set it to the server's URL, such as {URL_EXAMPLE!r}", "base_url: URL"))
        if not (config.model or env.get(MODEL_ENV)):
            problems.append(ConfigProblem(
                "no model name to send to the server",
                f"set ${MODEL_ENV}=NAME (with {BASE_URL_ENV}=URL for your own server)",
                "model: NAME"))
        if not (config.base_url or env.get(BASE_URL_ENV) or _api_key(config, env)):
            problems.append(ConfigProblem(
                "no server and no API key",
                f"without a base_url it calls OpenAI's API, which needs "
                f"${config.api_key_env or KEY_ENV}=KEY; for your own server (llama.cpp, "
                f"vLLM: no key needed) set {BASE_URL_ENV}=URL",
                "base_url: URL"))
        return problems

    @classmethod
    def field_problems(cls, config: ModelConfig
                       ) -> list[tuple[tuple[str | int, ...], str, str]]:
        """What is wrong with ``config``'s own fields whatever the environment, each as
        (path inside the config, message, hint), for ``ponder validate`` to report at its
        line (see :func:`orchestrator.graph.validate.model_problems`): a ``base_url`` that
        is not an http(s) URL. (:meth:`config_problems` reports it too, for a run that was
        not validated, and one from ``$PONDER_OPENAI_BASE_URL``.)"""
        words = _base_url_problem(config.base_url) if config.base_url else None
        if words is None:
            return []
        return [(("base_url",), f"base_url {shown(config.base_url)} {words}",
                 f"write the server's URL, such as {URL_EXAMPLE!r}")]

    def __init__(self, config: ModelConfig) -> None:
        """:raises ConfigError: for a bad option or base URL, a missing model name or a
            missing key (every problem of :meth:`config_problems`)."""
        self.config = config
        self.options = parse_options(self.options_model, config.options, "openai")
        base_url = config.base_url or os.environ.get(BASE_URL_ENV) or None
        if base_url is not None:
            _check_base_url(base_url, "base_url" if config.base_url else f"${BASE_URL_ENV}")
        problems = self.config_problems(config, os.environ)
        if problems:
            raise ConfigError("openai backend: " + "; ".join(
                f"{p.problem}: {p.fix}, or give `{p.field}`" for p in problems))
        self.model = str(config.model or os.environ.get(MODEL_ENV))
        named = os.environ.get(config.api_key_env) if config.api_key_env else None
        key = _api_key(config, os.environ)
        #: what to check after an HTTP 401/403
        self.key_hint = (f"check the API key in ${config.api_key_env}" if named
                         else f"check the API key in ${KEY_ENV}" if key
                         else f"no API key is set: set ${config.api_key_env or KEY_ENV}")
        if not key:  # a server of one's own (config_problems): it takes any key
            key = "not-needed"
        self.stats = BackendStats()
        self._client = AsyncOpenAI(
            api_key=key,
            base_url=base_url,
            max_retries=0,
            timeout=config.request_timeout_s if config.request_timeout_s else openai.NOT_GIVEN,
        )
        self.base_url = str(self._client.base_url)
        # cleared when the server refuses `stream_options` (some OpenAI-compatible servers
        # reject fields they do not know): streams then count usage from their chunks
        self._stream_usage = True

    @property
    def engine_key(self) -> str:
        """What this backend reaches: two backends with the same key are one server's
        model (an engine pool refuses to count it twice)."""
        return f"model {self.model!r} at {self.base_url}"

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Run one request to completion.

        A request for ``n > 1`` samples whose caller counts its usage
        (``LLMRequest.usage``) is streamed (see :meth:`stream`), so that a cancelled one
        knows the tokens every sample had received; the server answers only at the end
        otherwise.

        :raises BackendUnavailable: when the server cannot be reached.
        :raises StepTimeout: when the HTTP request times out, or passes ``total_timeout_s``.
        :raises BackendHTTPError: when the server answers with an error status.
        :raises BackendError: when it refuses ``json_schema`` output, or its answer is unusable.
        """
        check_request(request, "openai")
        if request.n > 1 and request.usage is not None:
            async with aclosing(self.stream(request)) as chunks:
                async for chunk in chunks:
                    if chunk.final is not None:
                        return chunk.final
            raise BackendError(f"{self.base_url}: the stream ended without a final chunk")
        start = anyio.current_time()
        self.stats.requests += 1
        try:
            with self._deadline(self._total_deadline(start), self._total_message()), \
                    self._errors(request):
                response = await self._client.chat.completions.create(**self._params(request))
        except anyio.get_cancelled_exc_class():
            self.stats.cancelled += 1
            raise
        return self._answer(response, request, start)

    def _answer(self, response: Any, request: LLMRequest, start: float) -> LLMResponse:
        """The response of a whole (not streamed) chat completion.

        :raises BackendError: when it is not a chat completion, or has no choices or no text.
        """
        with self._errors(request):
            choices, reported = _completion_parts(response, self.base_url)
            # what the server billed counts even when its answer is unusable
            _add_usage(request.usage, reported)
            if not choices:
                raise BackendError(f"{self.base_url}: the answer has no choices")
            texts = [_choice_text(c, self.base_url) for c in choices]
        usage = reported
        if usage is None:
            # a server that reports no usage processed the prompt and wrote the answer all
            # the same: estimated, as a stream without usage is (a step's budget_tokens
            # and the trace's counts would see nothing otherwise)
            usage = (approx_prompt_tokens(request.messages),
                     sum(approx_tokens(text) for text in texts))
            _add_usage(request.usage, usage)
        self.stats.completed += 1
        result = LLMResponse(
            text=texts[0],
            prompt_tokens=usage[0],
            completion_tokens=usage[1],
            latency_s=anyio.current_time() - start,
            finish_reason=samples_finish([getattr(c, "finish_reason", None) for c in choices]),
            model=getattr(response, "model", None) or self.model,
            texts=texts,
        )
        self._count(result)
        return result

    async def stream(self, request: LLMRequest) -> AsyncGenerator[LLMChunk, None]:
        """Yield the first choice's text as it arrives; the last chunk is final.

        Usage comes from the server's ``include_usage`` chunk; for a server that sends
        none (llama.cpp's) the prompt is estimated (four characters a token) and each
        chunk with text (of every choice; its content, a reasoning model's thinking, a
        tool call) counts one token. The request's ``usage`` counter, when given, counts
        what was received as it arrives: the prompt's estimate with the first such chunk,
        then one token per such chunk of any choice. That is what a cancelled caller
        records (the server's own count only comes at the end), and what an engine pool
        sees of a call's progress. A server that does not stream (its answer is one JSON
        body) gives its text as one chunk and then the final one, whose ``ttft_s`` is None.

        :raises BackendUnavailable, StepTimeout, BackendHTTPError, BackendError: as
            :meth:`complete`; :class:`StepTimeout` also past ``idle_timeout_s``. An error
            raised after some text keeps that text as its ``raw_output``.
        """
        check_request(request, "openai")
        start = anyio.current_time()
        self.stats.requests += 1
        total_at = self._total_deadline(start)
        chunks = await self._open_stream(request, total_at)
        whole = await self._unstreamed(chunks, request, start, total_at)
        if whole is not None:  # the server answered at the end, in one JSON body
            if whole.text:
                yield LLMChunk(whole.text)
            yield LLMChunk("", final=whole)
            return
        texts: dict[int, list[str]] = {}
        pieces = 0  # chunks with text (content, thinking, a tool call) of every choice
        received = request.usage if request.usage is not None else Usage()
        got = Usage()  # what this stream received: the stats of one that does not finish
        prompt_estimate = approx_prompt_tokens(request.messages)
        finish: str | None = None
        finishes: dict[int, str] = {}  # every choice's finish reason, by index
        others: dict[str, None] = {}  # what the first choice sent besides content
        refusal: list[str] = []
        usage: Any = None
        model = self.model
        ttft: float | None = None
        finished = False
        events = 0  # stream events of any kind
        idle_at = math.inf  # the idle limit runs from the first chunk that carries content
        try:
            async with chunks:  # closes the HTTP response on every exit, cancellation included
                iterator = aiter(chunks)
                while True:
                    stalled = (self._idle_message() if idle_at < total_at
                               else self._total_message())
                    with self._deadline(min(idle_at, total_at), stalled), \
                            self._errors(request, streaming=True):
                        try:
                            chunk = await anext(iterator)
                        except StopAsyncIteration:
                            break
                    events += 1
                    with self._errors(request, streaming=True):
                        parts = _chunk_choices(chunk, self.base_url)
                    if self.options.idle_timeout_s is not None and _carries_content(chunk):
                        idle_at = anyio.current_time() + self.options.idle_timeout_s
                    usage = getattr(chunk, "usage", None) or usage
                    model = getattr(chunk, "model", None) or model
                    for index, delta, piece, choice_finish in parts:
                        texts.setdefault(index, []).append(piece)
                        if choice_finish:
                            finishes[index] = choice_finish
                        # a reasoning model's thinking (or a tool call) comes in other
                        # fields of the delta: tokens made all the same, which a caller
                        # counting them (an engine pool watching for stalls) must see
                        if piece or (delta is not None and _delta_carries_more(delta)):
                            pieces += 1
                            for counter in (received, got):
                                if pieces == 1:
                                    counter.prompt_tokens += prompt_estimate
                                counter.completion_tokens += 1
                        if index == 0:
                            finish = choice_finish or finish
                            if not piece and delta is not None:
                                for key in _other_fields(delta):
                                    others[key] = None
                                words = getattr(delta, "refusal", None)
                                if isinstance(words, str):
                                    refusal.append(words)
                            if piece:
                                ttft = ttft if ttft is not None else anyio.current_time() - start
                                yield LLMChunk(piece)
            counts = _usage_counts(usage)
            with self._errors(request):
                _check_stream_end(events, finish, self.base_url)
                if others and not "".join(texts.get(0, [])):
                    # as a whole answer whose content is null: no text to give
                    why = (f"the model refused: {_one_line(''.join(refusal))}"
                           if "".join(refusal).strip() else f"finish_reason {finish!r}")
                    raise BackendError(f"{self.base_url}: the answer has no text (its stream "
                                       f"sent no content, only {', '.join(others)}; {why})")
            joined = ["".join(texts[i]) for i in sorted(texts)] or [""]
            result = LLMResponse(
                text=joined[0],
                # a server that reports no usage (llama.cpp's) processed the prompt anyway
                prompt_tokens=counts[0] if counts else prompt_estimate,
                completion_tokens=counts[1] if counts else pieces,
                latency_s=anyio.current_time() - start,
                ttft_s=ttft,
                finish_reason=samples_finish(
                    [finish, *(finishes.get(i) for i in sorted(texts) if i != 0)]),
                model=model,
                texts=joined,
            )
            self.stats.completed += 1
            self._count(result)
            finished = True
            yield LLMChunk("", final=result)
        except StepError as exc:
            # the text received before a failure is kept for the step's failed event
            if exc.raw_output is None and texts.get(0):
                exc.raw_output = "".join(texts[0])
            raise
        except (anyio.get_cancelled_exc_class(), GeneratorExit):
            if not finished:
                self.stats.cancelled += 1
            raise
        finally:
            if not finished:
                self.stats.prompt_tokens += got.prompt_tokens
                self.stats.completion_tokens += got.completion_tokens

    async def _open_stream(self, request: LLMRequest, total_at: float) -> Any:
        """Start a streamed completion, asking for the usage chunk where the server takes
        ``stream_options``; one that refuses the field (HTTP 400/422 naming it) is asked
        again without it, and never again by this backend. ``total_at`` is the deadline
        of the whole request."""
        params = {**self._params(request), "stream": True}
        with self._deadline(total_at, self._total_message()), self._errors(request):
            if self._stream_usage:
                try:
                    return await self._client.chat.completions.create(
                        **params, stream_options={"include_usage": True})
                except openai.APIStatusError as exc:
                    if exc.status_code not in (400, 422) or "stream_options" not in exc.message:
                        raise
                    self._stream_usage = False
            return await self._client.chat.completions.create(**params)

    async def _unstreamed(self, chunks: Any, request: LLMRequest, start: float,
                          total_at: float) -> LLMResponse | None:
        """The answer of a server that ignored ``stream: true`` and sent a whole chat
        completion (``Content-Type: application/json``) instead of server-sent events, as
        some proxies and small servers do; None for a stream (which is left unread).
        ``LLMResponse.ttft_s`` stays None: the first token was not seen.

        :raises BackendError: when the body is not a usable chat completion.
        :raises BackendUnavailable: when the connection is lost while it is read.
        """
        response = getattr(chunks, "response", None)
        kind = str(getattr(response, "headers", {}).get("content-type", "")).lower()
        if response is None or "json" not in kind or "event-stream" in kind:
            return None
        try:
            async with chunks:  # closes the HTTP response on every exit
                with self._deadline(total_at, self._total_message()):
                    try:
                        raw = await response.aread()
                    except Exception as exc:
                        self.stats.failed += 1
                        raise BackendUnavailable(
                            f"{self.base_url}: the connection was lost while the answer was "
                            f"read: {_connection_cause(exc)}") from exc
        except anyio.get_cancelled_exc_class():
            self.stats.cancelled += 1
            raise
        if not raw.strip():
            self.stats.failed += 1
            raise _sent_nothing(self.base_url, _NO_BODY)
        try:
            body = json.loads(raw)
        except ValueError:
            self.stats.failed += 1
            raise BackendError(f"{self.base_url}: the server answered a stream request with "
                               f"a body that is not JSON: {_preview(raw.decode(errors='replace'))}"
                               ) from None
        completion = ChatCompletion.construct(**body) if isinstance(body, dict) else body
        return self._answer(completion, request, start)

    def _total_deadline(self, start: float) -> float:
        limit = self.options.total_timeout_s
        return start + limit if limit is not None else math.inf

    def _total_message(self) -> str:
        return (f"{self.base_url}: the answer was not finished within "
                f"{self.options.total_timeout_s:g} s (options.total_timeout_s)")

    def _idle_message(self) -> str:
        return (f"{self.base_url}: the stream sent no content for "
                f"{self.options.idle_timeout_s:g} s (options.idle_timeout_s): the server "
                "stalled")

    @contextmanager
    def _deadline(self, deadline: float, message: str) -> Iterator[None]:
        """Stop the block at ``deadline`` (the event loop's clock) with a retryable
        :class:`StepTimeout` saying ``message``."""
        with anyio.CancelScope(deadline=deadline) as scope:
            yield
        if scope.cancelled_caught:
            self.stats.failed += 1
            raise StepTimeout(message)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.close()

    def _params(self, request: LLMRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.stop:
            params["stop"] = request.stop
        if request.top_p is not None:
            params["top_p"] = request.top_p
        if request.seed is not None:
            params["seed"] = request.seed
        if request.n != 1:
            params["n"] = request.n
        schema = request.json_schema
        if schema is not None and self.options.structured_outputs == "json_schema":
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": schema},
            }
        elif schema is not None and self.options.structured_outputs == "json_object":
            # llama.cpp's server turns the schema into a grammar with the converter that
            # widens some forms (a type list drops `items`: strings in an integer array);
            # send the equivalent schema that it renders exactly
            params["response_format"] = {"type": "json_object",
                                         "schema": grammar_schema(schema)}
        extra: dict[str, Any] = dict(self.options.extra_body)
        if self.options.server == "vllm":
            if self.options.send_priority:
                extra["priority"] = engine_int(request.priority)  # vLLM: lower goes first
            if request.request_id:
                extra["request_id"] = request.request_id
        if extra:
            params["extra_body"] = extra
        return params

    def _count(self, response: LLMResponse) -> None:
        self.stats.prompt_tokens += response.prompt_tokens
        self.stats.completion_tokens += response.completion_tokens

    @contextmanager
    def _errors(self, request: LLMRequest, *, streaming: bool = False) -> Iterator[None]:
        """Translate the client's exceptions into Ponder's: one line naming the URL, with a
        hint where the status says what to fix. Tokens the server reports in an error's
        body are added to the request's ``usage`` counter."""
        try:
            yield
        except BackendError:
            self.stats.failed += 1
            raise
        except openai.APITimeoutError as exc:
            self.stats.failed += 1
            raise StepTimeout(f"{_url(exc, self.base_url)}: request timed out") from exc
        except openai.APIConnectionError as exc:
            self.stats.failed += 1
            cause = _connection_cause(exc)
            if streaming:
                raise BackendUnavailable(f"{_url(exc, self.base_url)}: the connection was lost "
                                         f"during the stream: {cause}") from exc
            raise BackendUnavailable(f"cannot reach {_url(exc, self.base_url)}: {cause}") from exc
        except openai.APIStatusError as exc:
            self.stats.failed += 1
            _add_usage(request.usage, _usage_counts(_body_usage(exc)))
            detail = _error_detail(exc.body)
            hint = self._status_hint(exc.status_code, detail, request)
            message = (f"{_url(exc, self.base_url)}: HTTP {exc.status_code}"
                       + (f": {detail}" if detail else "") + (f" ({hint})" if hint else ""))
            if self._refuses_json_schema(detail, request):
                # the same request gets the same refusal, whatever its status (llama.cpp's
                # server answers 500): not an HTTP error the scheduler would retry
                raise BackendError(message) from exc
            raise BackendHTTPError(message, status=exc.status_code,
                                   retry_after_s=_retry_after(exc.response)) from exc
        except openai.APIError as exc:
            self.stats.failed += 1
            status = _error_status(exc.body)
            if status is None:
                raise BackendError(f"{_url(exc, self.base_url)}: {_one_line(str(exc))}"
                                   ) from exc
            # an error event in a stream (vLLM's server sends one, with the status it
            # would have answered, when the engine fails after the answer began): what an
            # error status says, retryable alike
            detail = _error_detail(exc.body) or _one_line(str(exc))
            raise BackendHTTPError(f"{_url(exc, self.base_url)}: the server reported an error "
                                   f"during the stream: HTTP {status}: {detail}",
                                   status=status) from exc
        except openai.OpenAIError as exc:
            self.stats.failed += 1
            raise BackendError(f"{self.base_url}: {_one_line(str(exc))}") from exc
        except json.JSONDecodeError as exc:  # a stream event, or an answer, not JSON
            self.stats.failed += 1
            if not streaming and not exc.doc.strip():
                raise _sent_nothing(self.base_url, _NO_BODY) from exc
            what = "a stream event" if streaming else "an answer"
            raise BackendError(f"{self.base_url}: the server sent {what} that is not "
                               f"JSON: {_preview(exc.doc)}") from exc
        except UnicodeDecodeError as exc:
            self.stats.failed += 1
            near = bytes(exc.object[max(0, exc.start - 20):exc.end + 20])
            raise BackendError(f"{self.base_url}: the server sent bytes that are not UTF-8 "
                               f"({exc.reason} at byte {exc.start}, near {near!r})") from exc

    def _status_hint(self, status: int, detail: str, request: LLMRequest) -> str:
        """What to check after an error status, or ``""``."""
        if status in (401, 403):
            return self.key_hint
        if status == 404:
            root = self.base_url.rstrip("/")
            if root.endswith("/chat/completions"):
                return (f"base_url {self.base_url!r} ends in /chat/completions, which the "
                        f"client adds: use {root.removesuffix('/chat/completions')!r}")
            if not root.endswith("/v1"):
                return (f"is base_url right? {self.base_url!r} does not end in /v1, where "
                        "OpenAI-compatible servers usually answer")
            return f"is model {self.model!r} served at {self.base_url!r}?"
        if self._refuses_json_schema(detail, request):
            return ("the server does not take response_format json_schema: set "
                    "`options: {structured_outputs: json_object}` (llama.cpp's server) or none")
        return ""

    def _refuses_json_schema(self, detail: str, request: LLMRequest) -> bool:
        """Whether an error answers a ``response_format`` of type ``json_schema`` that the
        server does not take: its message names both (llama.cpp's server: HTTP 500 with a
        validation error of ``response_format.type``, input ``'json_schema'``)."""
        return (request.json_schema is not None
                and self.options.structured_outputs == "json_schema"
                and "json_schema" in detail and "response_format" in detail)


#: longest server text quoted in a message
_DETAIL_CHARS = 300
#: what a whole answer without a byte of body is called in its error
_NO_BODY = "an empty answer (no body)"


def _api_key(config: ModelConfig, env: Mapping[str, str]) -> str | None:
    """The API key ``config`` sends: the variable its ``api_key_env`` names, else
    ``$OPENAI_API_KEY``; None when neither is set."""
    named = env.get(config.api_key_env) if config.api_key_env else None
    return named or env.get(KEY_ENV) or None


def _one_line(text: str, limit: int = _DETAIL_CHARS) -> str:
    """``text`` with its whitespace collapsed, cut at ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


def _preview(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return repr(_one_line(text, 80))


def _error_detail(body: object) -> str:
    """The server's message in an error body: ``{"error": {"message": ...}}``, the error
    object itself, FastAPI's ``{"detail": ...}``, or a short plain text (not HTML)."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            message = error.get("message") or error.get("detail") or body.get("detail")
        else:
            message = error
        if message is None:
            return _one_line(json.dumps(body, default=str))
        return _one_line(message if isinstance(message, str) else json.dumps(message, default=str))
    if isinstance(body, str) and not body.lstrip().startswith("<"):
        return _one_line(body)
    return ""


def _body_usage(exc: openai.APIStatusError) -> Any:
    """The ``usage`` of an error's whole body (``exc.body`` may hold only its error)."""
    try:
        body = exc.response.json()
    except Exception:  # not JSON, or a stream's body not read: the client's parse stands
        body = exc.body
    return body.get("usage") if isinstance(body, dict) else None


#: more tokens than any call can use: a count above it is a server's garbage
_MAX_COUNT = 2**53


def _token_count(value: Any) -> int | None:
    """A usage field that is a token count (a whole number from 0 to :data:`_MAX_COUNT`),
    else None: a server's negative or huge count was taken as it was, and one past a
    64-bit integer failed the trace store's write ("internal error"), on every resume."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_COUNT:
        return value
    return None


def _usage_counts(usage: Any) -> tuple[int, int] | None:
    """``(prompt_tokens, completion_tokens)`` of a usage object or mapping, when it has
    them; a field that is no token count is taken as not reported."""
    if usage is None:
        return None
    fields = usage if isinstance(usage, dict) else getattr(usage, "__dict__", {})
    prompt = _token_count(fields.get("prompt_tokens"))
    completion = _token_count(fields.get("completion_tokens"))
    if prompt is None and completion is None:
        return None
    return prompt or 0, completion or 0


def _add_usage(counter: Usage | None, counts: tuple[int, int] | None) -> None:
    if counter is not None and counts is not None:
        counter.prompt_tokens += counts[0]
        counter.completion_tokens += counts[1]


def _completion_parts(response: Any, base_url: str
                      ) -> tuple[list[Any], tuple[int, int] | None]:
    """A chat completion's choices (by index) and usage (None when not reported).

    :raises BackendError: when the answer is not a chat completion.
    """
    choices = getattr(response, "choices", None)
    if isinstance(response, str | bytes) and not response.strip():
        raise _sent_nothing(base_url, _NO_BODY)  # a body that is not JSON: its text
    if not isinstance(choices, list):
        raise BackendError(f"{base_url}: the answer is not a chat completion: "
                           f"{_preview(_as_json(response))}")
    usage = _usage_counts(getattr(response, "usage", None))
    # (a choice that is not an object is reported as such by _choice_text)
    indexes = [getattr(c, "index", 0) or 0 if isinstance(c, pydantic.BaseModel) else 0
               for c in choices]
    if not all(_is_int(i) for i in indexes):
        raise BackendError(f"{base_url}: the answer is not a chat completion (a choice's "
                           f"index is not a number): {_preview(_as_json(response))}")
    return [c for _, c in sorted(zip(indexes, choices, strict=True),
                                 key=lambda pair: pair[0])], usage


def _choice_text(choice: Any, base_url: str) -> str:
    """A choice's text.

    :raises BackendError: when it has none (no message, or ``content: null``), naming the
        finish reason and any refusal; when the choice or its message is not an object,
        or its content is not text, naming what came instead.
    """
    if not isinstance(choice, pydantic.BaseModel):
        raise BackendError(f"{base_url}: the answer is not a chat completion (a choice is "
                           f"{_json_kind(choice)}, not an object): "
                           f"{_preview(_as_json(choice))}")
    message = getattr(choice, "message", None)
    if message is not None and not isinstance(message, pydantic.BaseModel):
        raise BackendError(f"{base_url}: the answer is not a chat completion (its message "
                           f"is {_json_kind(message)}, not an object): "
                           f"{_preview(_as_json(message))}")
    content = getattr(message, "content", None)
    if isinstance(content, str):
        return content
    if content is not None:
        raise BackendError(f"{base_url}: the answer's content is {_json_kind(content)}, not "
                           f"text: {_preview(_as_json(content))}")
    refusal = getattr(message, "refusal", None)
    why = f"the model refused: {_one_line(refusal)}" if isinstance(refusal, str) and refusal \
        else f"finish_reason {getattr(choice, 'finish_reason', None)!r}"
    null = "no message" if message is None else "content: null"
    raise BackendError(f"{base_url}: the answer has no text ({null}; {why})")


def _json_kind(value: Any) -> str:
    """What a value from a server's JSON is, as a message names it (``a number``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _chunk_choices(chunk: Any, base_url: str) -> list[tuple[int, Any, str, str | None]]:
    """A stream chunk's choices, each as ``(index, delta, content, finish_reason)``.

    :raises BackendError: when the chunk is not shaped as a chat completion chunk (its
        choices not a list of objects, an index that is not a number, content or a finish
        reason that is not text), naming it.
    """
    choices = getattr(chunk, "choices", None)
    parts: list[tuple[int, Any, str, str | None]] = []
    ok = choices is None or isinstance(choices, list)
    for choice in choices if ok and choices else ():
        if not isinstance(choice, pydantic.BaseModel):
            ok = False
            break
        index = getattr(choice, "index", None)
        delta = getattr(choice, "delta", None)
        content = getattr(delta, "content", None)
        finish = getattr(choice, "finish_reason", None)
        if (not (index is None or _is_int(index))
                or not (delta is None or isinstance(delta, pydantic.BaseModel))
                or not (content is None or isinstance(content, str))
                or not (finish is None or isinstance(finish, str))):
            ok = False
            break
        parts.append((index or 0, delta, content or "", finish))
    if not ok:
        raise BackendError(f"{base_url}: the server sent a stream chunk that is not a chat "
                           f"completion chunk: {_preview(_as_json(chunk))}")
    return parts


def _error_status(body: Any) -> int | None:
    """The HTTP status an error event of a stream gives in its ``code`` (vLLM's
    ``{"error": {"message": ..., "type": ..., "code": 500}}``), when it is one (400-599)."""
    code = body.get("code") if isinstance(body, dict) else None
    if isinstance(code, str) and code.strip().isdigit():
        code = int(code)
    if not isinstance(code, int) or isinstance(code, bool):
        return None
    return code if 400 <= code <= 599 else None


def _delta_carries_more(delta: Any) -> bool:
    """Whether a stream delta without content carries other text: a reasoning model's
    thinking (``reasoning_content``, ``reasoning``) or a tool call."""
    return bool(_other_fields(delta))


def _other_fields(delta: Any) -> list[str]:
    """The fields of a stream delta, besides its role and content, that carry something
    (``tool_calls``, ``reasoning_content``, ``refusal``...)."""
    fields = _as_json(delta)
    if not isinstance(fields, dict):
        return []
    return [key for key, value in fields.items() if value and key not in ("role", "content")]


def _as_json(value: Any) -> Any:
    """A model as plain data, without pydantic's warnings about fields of the wrong type
    (a server's chunk is built without validation; such fields are reported, not warned
    about)."""
    dump = getattr(value, "model_dump", None)
    if dump is None:
        return value
    try:
        return dump(warnings=False)
    except Exception:  # a value pydantic cannot serialise at all
        return repr(value)


def _check_stream_end(events: int, finish: str | None, base_url: str) -> None:
    """:raises BackendUnavailable: (retryable) for a stream without any event, or one that
        ended, in good order, before its finish reason. A stream without any event is a
        connection dropped right after the headers (a body that ends with the connection
        is then indistinguishable from an empty one), or a server that failed on the
        request after starting its answer (llama.cpp's, with a prompt longer than its
        context) or does not stream: only another try tells them apart, and a step's
        retry policy bounds the tries of a server that always answers so. A connection
        lost where the HTTP framing shows it (a chunked body cut short) is an error of the
        HTTP client, reported by ``_errors``.
    """
    if events == 0:
        raise _sent_nothing(base_url, "an empty stream (no event)", " or does not stream")
    if finish is None:
        raise BackendUnavailable(
            f"{base_url}: the stream ended before the answer was finished (no "
            "finish_reason): the server cut it. llama.cpp's Python server cuts a stream when "
            "another request arrives: start it with `--interrupt_requests False`, or give "
            "this model `concurrency: 1`")


def _sent_nothing(base_url: str, what: str, more: str = "") -> BackendUnavailable:
    """The error of an answer with nothing in it (no stream event, no body): retryable, as
    a connection dropped right after the headers, which it may be (see
    :func:`_check_stream_end`)."""
    return BackendUnavailable(f"{base_url}: the server sent {what}: the connection was "
                              "dropped right after the headers, or the server failed on the "
                              f"request (a prompt longer than its context?){more}")


def _check_base_url(url: str, source: str) -> None:
    """:raises ConfigError: when ``url`` is not an http(s) URL with a host."""
    problem = _base_url_problem(url)
    if problem is not None:
        raise ConfigError(f"openai backend: {source} {shown(url)} {problem}: give the "
                          f"server's URL, such as {URL_EXAMPLE!r}")


def _base_url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a server's base URL, as words that follow it
    (``is not an http(s) URL``), or None for an http(s) URL with a host."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unclosed bracket of an IPv6 host
        return f"is not a URL: {exc}"
    if url != url.strip() or any(c.isspace() for c in url):
        return "holds whitespace"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "is not an http(s) URL"
    try:
        parts.port  # noqa: B018  (raises for a port out of range)
    except ValueError as exc:
        return f"has a bad port: {exc}"
    return None


def _carries_content(chunk: Any) -> bool:
    """Whether a stream chunk shows progress: text (or reasoning, a tool call) in a delta,
    a finish reason or usage; not a keep-alive chunk with an empty delta (or one with only
    its ``role``)."""
    if getattr(chunk, "usage", None) is not None:
        return True
    for choice in getattr(chunk, "choices", None) or ():
        if getattr(choice, "finish_reason", None):
            return True
        fields = _as_json(getattr(choice, "delta", None))
        if isinstance(fields, dict) and any(value for key, value in fields.items()
                                            if key != "role"):
            return True
    return False


def _connection_cause(exc: BaseException) -> str:
    """What broke a connection: the first message along the exception's causes, or the
    innermost type's name where they have none (a reset is an empty ``ReadError``)."""
    seen: list[BaseException] = []
    cause: BaseException | None = exc.__cause__ or exc
    while cause is not None and cause not in seen:
        if str(cause).strip():
            return _one_line(str(cause))
        seen.append(cause)
        cause = cause.__cause__ or cause.__context__
    names = " from ".join(type(c).__name__ for c in seen)
    return f"the connection was closed or reset ({names})"


def _retry_after(response: Any) -> float | None:
    """The wait a response's ``Retry-After`` header asks for, in seconds (it gives seconds
    or an HTTP date); None when it has none or it cannot be read."""
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
            if when.tzinfo is None:
                when = when.replace(tzinfo=datetime.UTC)
            seconds = (when - datetime.datetime.now(datetime.UTC)).total_seconds()
        except (TypeError, ValueError, OverflowError):  # a year or offset beyond C's ints
            return None
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _url(exc: openai.APIError, fallback: str) -> str:
    request = getattr(exc, "request", None)
    return str(request.url) if request is not None else fallback
