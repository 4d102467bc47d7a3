"""Any OpenAI-compatible chat completions server, through the official ``openai`` client."""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing, contextmanager
from typing import Any, Literal

import anyio
import openai
from openai import AsyncOpenAI

from executors.llm._common import (
    BackendOptions,
    BackendStats,
    engine_int,
    parse_options,
)
from executors.llm._json_output import grammar_schema
from orchestrator.errors import (
    BackendError,
    BackendHTTPError,
    BackendUnavailable,
    ConfigError,
    StepTimeout,
)
from orchestrator.runtime.contracts import LLMChunk, LLMRequest, LLMResponse, Usage, approx_prompt_tokens
from orchestrator.spec.models import ModelConfig

BASE_URL_ENV = "PONDER_OPENAI_BASE_URL"
MODEL_ENV = "PONDER_OPENAI_MODEL"
KEY_ENV = "OPENAI_API_KEY"


class OpenAIOptions(BackendOptions):
    """The ``options:`` of the openai backend (see :class:`OpenAIBackend`)."""

    structured_outputs: Literal["json_schema", "json_object", "none"] = "json_schema"
    server: Literal["generic", "vllm"] = "generic"
    send_priority: bool = True


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
    ================== ============== =================================================

    Errors: unreachable server → :class:`BackendUnavailable`, HTTP timeout →
    :class:`StepTimeout`, HTTP status → :class:`BackendHTTPError`; each names the URL.
    Cancelling the awaiting task closes the HTTP response, which makes the server stop.
    """

    default_concurrency = 16

    def __init__(self, config: ModelConfig) -> None:
        """:raises ConfigError: for a bad option, a missing model name or a missing key."""
        self.config = config
        self.options = parse_options(OpenAIOptions, config.options, "openai")
        base_url = config.base_url or os.environ.get(BASE_URL_ENV) or None
        model = config.model or os.environ.get(MODEL_ENV)
        if not model:
            raise ConfigError(f"openai backend: set `model:` or ${MODEL_ENV}")
        self.model = model
        named = os.environ.get(config.api_key_env) if config.api_key_env else None
        key = named or os.environ.get(KEY_ENV)
        if not key:
            if base_url is None:
                wanted = config.api_key_env or KEY_ENV
                raise ConfigError(f"openai backend: no API key; set ${wanted} or `base_url:`")
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

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Run one request to completion.

        A request for ``n > 1`` samples whose caller counts its usage
        (``LLMRequest.usage``) is streamed (see :meth:`stream`), so that a cancelled one
        knows the tokens every sample had received; the server answers only at the end
        otherwise.

        :raises BackendUnavailable: when the server cannot be reached.
        :raises StepTimeout: when the HTTP request times out.
        :raises BackendHTTPError: when the server answers with an error status.
        """
        if request.n > 1 and request.usage is not None:
            async with aclosing(self.stream(request)) as chunks:
                async for chunk in chunks:
                    if chunk.final is not None:
                        return chunk.final
            raise BackendError(f"{self.base_url}: the stream ended without a final chunk")
        start = anyio.current_time()
        self.stats.requests += 1
        try:
            with self._errors():
                response = await self._client.chat.completions.create(**self._params(request))
        except anyio.get_cancelled_exc_class():
            self.stats.cancelled += 1
            raise
        texts = [c.message.content or "" for c in sorted(response.choices, key=lambda c: c.index)]
        if not texts:
            raise BackendError(f"{self.base_url}: the response has no choices")
        usage = response.usage
        self.stats.completed += 1
        result = LLMResponse(
            text=texts[0],
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            latency_s=anyio.current_time() - start,
            finish_reason=response.choices[0].finish_reason,
            model=response.model or self.model,
            texts=texts,
        )
        self._count(result)
        return result

    async def stream(self, request: LLMRequest) -> AsyncGenerator[LLMChunk, None]:
        """Yield the first choice's text as it arrives; the last chunk is final.

        Usage comes from the server's ``include_usage`` chunk; a server that sends
        none leaves the prompt count at 0 and counts one token per content chunk (of
        every choice). The request's ``usage`` counter, when given, counts what was
        received as it arrives: the prompt's estimate (four characters a token) with the
        first content chunk, then one token per content chunk of any choice. That is
        what a cancelled caller records (the server's own count only comes at the end).

        :raises BackendUnavailable, StepTimeout, BackendHTTPError: as :meth:`complete`.
        """
        start = anyio.current_time()
        self.stats.requests += 1
        chunks = await self._open_stream(request)
        texts: dict[int, list[str]] = {}
        pieces = 0  # content chunks of every choice
        received = request.usage if request.usage is not None else Usage()
        prompt_estimate = approx_prompt_tokens(request.messages)
        finish: str | None = None
        usage: Any = None
        model = self.model
        ttft: float | None = None
        finished = False
        try:
            async with chunks:  # closes the HTTP response on every exit, cancellation included
                iterator = aiter(chunks)
                while True:
                    with self._errors():
                        try:
                            chunk = await anext(iterator)
                        except StopAsyncIteration:
                            break
                    usage = chunk.usage or usage
                    model = chunk.model or model
                    for choice in chunk.choices:
                        piece = (choice.delta.content or "") if choice.delta else ""
                        texts.setdefault(choice.index, []).append(piece)
                        if piece:
                            pieces += 1
                            if pieces == 1:
                                received.prompt_tokens += prompt_estimate
                            received.completion_tokens += 1
                        if choice.index == 0:
                            finish = choice.finish_reason or finish
                            if piece:
                                ttft = ttft if ttft is not None else anyio.current_time() - start
                                yield LLMChunk(piece)
            joined = ["".join(texts[i]) for i in sorted(texts)] or [""]
            result = LLMResponse(
                text=joined[0],
                prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=usage.completion_tokens if usage else pieces,
                latency_s=anyio.current_time() - start,
                ttft_s=ttft,
                finish_reason=finish,
                model=model,
                texts=joined,
            )
            self.stats.completed += 1
            self._count(result)
            finished = True
            yield LLMChunk("", final=result)
        except (anyio.get_cancelled_exc_class(), GeneratorExit):
            if not finished:
                self.stats.cancelled += 1
            raise

    async def _open_stream(self, request: LLMRequest) -> Any:
        """Start a streamed completion, asking for the usage chunk where the server takes
        ``stream_options``; one that refuses the field (HTTP 400/422 naming it) is asked
        again without it, and never again by this backend."""
        params = {**self._params(request), "stream": True}
        with self._errors():
            if self._stream_usage:
                try:
                    return await self._client.chat.completions.create(
                        **params, stream_options={"include_usage": True})
                except openai.APIStatusError as exc:
                    if exc.status_code not in (400, 422) or "stream_options" not in exc.message:
                        raise
                    self._stream_usage = False
            return await self._client.chat.completions.create(**params)

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
        if self.options.server == "vllm":
            extra: dict[str, Any] = {}
            if self.options.send_priority:
                extra["priority"] = engine_int(request.priority)  # vLLM: lower goes first
            if request.request_id:
                extra["request_id"] = request.request_id
            params["extra_body"] = extra
        return params

    def _count(self, response: LLMResponse) -> None:
        self.stats.prompt_tokens += response.prompt_tokens
        self.stats.completion_tokens += response.completion_tokens

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Translate the client's exceptions into Ponder's, naming the URL."""
        try:
            yield
        except openai.APITimeoutError as exc:
            self.stats.failed += 1
            raise StepTimeout(f"{_url(exc, self.base_url)}: request timed out") from exc
        except openai.APIConnectionError as exc:
            self.stats.failed += 1
            cause = exc.__cause__ or exc
            raise BackendUnavailable(f"cannot reach {_url(exc, self.base_url)}: {cause}") from exc
        except openai.APIStatusError as exc:
            self.stats.failed += 1
            raise BackendHTTPError(
                f"{_url(exc, self.base_url)}: HTTP {exc.status_code}: {exc.message}",
                status=exc.status_code,
            ) from exc
        except openai.OpenAIError as exc:
            self.stats.failed += 1
            raise BackendError(f"{self.base_url}: {exc}") from exc


def _url(exc: openai.APIError, fallback: str) -> str:
    request = getattr(exc, "request", None)
    return str(request.url) if request is not None else fallback
