"""A deterministic, seeded model of an LLM engine, for tests and benchmarks."""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections import Counter
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from anyio.lowlevel import checkpoint
from pydantic import Field, model_validator

from executors.llm._common import (
    BackendOptions,
    BackendStats,
    PrefixCache,
    block_hashes,
    chat_text,
    check_request,
    last_user_message,
    parse_options,
)
from executors.llm._schema_values import value_for_schema, words
from orchestrator.errors import BackendError, BackendHTTPError, ConfigError
from orchestrator.runtime.contracts import (
    LLMChunk,
    LLMRequest,
    LLMResponse,
    Usage,
    approx_prompt_tokens,
    approx_tokens,
)
from orchestrator.spec.models import ModelConfig

_MAX_PIECES = 8


class ResponseRule(BackendOptions):
    """A scripted answer: when ``match`` finds the last user message, answer with it.

    Give exactly one of ``output`` (the same answer every time) or ``sequence``
    (successive answers for successive matches of this rule; the last one repeats).
    A string is returned as is; any other JSON value is returned as its JSON text.
    """

    match: str = Field(description="Regular expression searched in the last user message.")
    output: Any = None
    sequence: list[Any] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_answer(self) -> ResponseRule:
        has_output = "output" in self.model_fields_set
        if has_output == (self.sequence is not None):
            raise ValueError("give exactly one of `output` and `sequence`")
        try:
            re.compile(self.match)
        except re.error as exc:
            raise ValueError(f"`match` {self.match!r} is not a regular expression: {exc}") from None
        return self


class SimulatedOptions(BackendOptions):
    """The ``options:`` of the simulated backend (see :class:`SimulatedBackend`)."""

    # finite and bounded: an infinite (or overflowing) delay parked the request for good
    prefill_s_per_token: float = Field(0.0002, ge=0, le=60)
    decode_s_per_token: float = Field(0.01, ge=0, le=60)
    capacity: int = Field(8, ge=1)
    batch_slowdown: float = Field(0.05, ge=0, le=100)
    time_scale: float = Field(1.0, ge=0, le=1000)
    seed: int = 0
    responses: list[ResponseRule] = Field(default_factory=list)
    output_tokens: Literal["max", "text"] = "max"
    fail_rate: float = Field(0.0, ge=0, le=1)
    fail_status: int = Field(503, ge=400, le=599)
    prefix_caching: bool = False
    prefix_cache_blocks: int = Field(65_536, ge=1)


#: tokens in a prefix-cache block (vLLM's default block size)
_BLOCK_TOKENS = 16


@dataclass(slots=True)
class _Piece:
    text: str
    decode_tokens: int  # tokens of the longest sample: what the clock follows
    spent_tokens: int  # tokens of every sample: what the stats count


@dataclass(slots=True)
class _Plan:
    texts: list[str]
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    pieces: list[_Piece]
    fail: bool


@dataclass(slots=True)
class _Rule:
    pattern: re.Pattern[str]
    rule: ResponseRule
    hits: int = 0

    def next_output(self) -> str:
        if self.rule.sequence is not None:
            value = self.rule.sequence[min(self.hits, len(self.rule.sequence) - 1)]
        else:
            value = self.rule.output
        self.hits += 1
        return value if isinstance(value, str) else json.dumps(value)


@dataclass
class _State:
    rules: list[_Rule]
    prompt_calls: Counter[str] = field(default_factory=Counter)
    active: int = 0


class SimulatedBackend:
    """A seeded engine model: same options and requests, same outputs and timings.

    Options (``ModelConfig.options``):

    ===================== =========== ==================================================
    option                default     meaning
    ===================== =========== ==================================================
    prefill_s_per_token   0.0002      seconds per prompt token
    decode_s_per_token    0.01        seconds per output token for a lone sequence
    capacity              8           sequences decoded at once; more requests wait
    batch_slowdown        0.05        decode slowdown per extra concurrent sequence
    time_scale            1.0         multiplies every delay; 0 = no sleeping at all
    seed                  0           seed of generated outputs and injected failures
    responses             []          rules ``{match, output | sequence}``, first match
                                      on the last user message wins
    output_tokens         "max"       ``"max"``: always decode ``max_tokens`` (its
                                      time and tokens; the finish reason is
                                      ``length`` only for a text cut to fit);
                                      ``"text"``: decode the tokens of the text
    fail_rate             0.0         probability that a call fails with ``fail_status``
    fail_status           503         HTTP status of an injected failure
    prefix_caching        false       keep computed prompt blocks (16 tokens) and skip
                                      the prefill of a prompt's cached leading blocks
    prefix_cache_blocks   65536       blocks kept (LRU)
    ===================== =========== ==================================================

    Latency of a request once it holds capacity::

        prefill_s_per_token * (prompt_tokens - cached_prompt_tokens)
        + decode_s_per_token * output_tokens * (1 + batch_slowdown * (active - 1))

    all multiplied by ``time_scale``; ``active`` is re-read as decoding proceeds.
    ``cached_prompt_tokens`` is 0 unless ``prefix_caching``: then it is the prompt's
    leading 16-token blocks (of :func:`chat_text`) already in :attr:`prefix_cache`, which
    a request fills once its prefill is done. Backends meant to model one server may
    share one :class:`PrefixCache` by assigning the same object. Usage still counts every
    prompt token, as servers bill them; :attr:`stats` counts the cached ones apart.
    Tokens are counted as ``ceil(len(text) / 4)``. Without a matching rule the
    output is derived from ``sha256(seed, request seed, messages)``: a short text, or
    a value valid under ``request.json_schema`` when one is set. With temperature
    above 0 each of the ``n`` samples differs; at 0 they are equal (greedy). The
    temperature's value beyond that, and ``top_p`` (checked: above 0, at most 1), do not
    change the outputs.

    Cancelling a request stops its delay at once; :attr:`stats` then counts the
    tokens processed until then, in proportion to the time spent, and so does the
    request's ``usage`` counter when the caller gave one (``LLMRequest.usage``).
    """

    options_model = SimulatedOptions  # what `ponder validate` checks the model's options against

    def __init__(self, config: ModelConfig) -> None:
        """:raises ConfigError: naming a bad option."""
        self.config = config
        self.options = parse_options(self.options_model, config.options, "simulated")
        self.stats = BackendStats()
        self._state = _State([_Rule(re.compile(r.match), r) for r in self.options.responses])
        self._slots = anyio.Semaphore(self.options.capacity)
        self.prefix_cache: PrefixCache | None = (
            PrefixCache(self.options.prefix_cache_blocks) if self.options.prefix_caching
            else None)

    @property
    def default_concurrency(self) -> int:
        """Calls worth having in flight at once: the engine's capacity."""
        return self.options.capacity

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Run one request to completion (see the class docstring for timing).

        :raises BackendHTTPError: for an injected failure.
        """
        async with aclosing(self.stream(request)) as chunks:
            async for chunk in chunks:
                if chunk.final is not None:
                    return chunk.final
        raise BackendError("simulated engine: stream ended without a final chunk")

    async def stream(self, request: LLMRequest) -> AsyncGenerator[LLMChunk, None]:
        """Yield the first sample's text in pieces as it is "decoded"; the last chunk is final.

        Close the iterator (``contextlib.aclosing``) when stopping early: it holds
        engine capacity until then.

        :raises BackendHTTPError: for an injected failure.
        """
        plan = self._plan(request)
        self.stats.requests += 1
        if plan.fail:
            self.stats.failed += 1
            raise BackendHTTPError(
                f"simulated engine: injected failure (HTTP {self.options.fail_status})",
                status=self.options.fail_status,
            )
        start = anyio.current_time()
        spent = Usage()
        finished = False
        try:
            ttft: float | None = None
            async with self._slots:
                self._state.active += 1
                self.stats.max_active = max(self.stats.max_active, self._state.active)
                try:
                    cache, blocks, cached = self._cached_prefix(request, plan.prompt_tokens)
                    prefill = self.options.prefill_s_per_token * (plan.prompt_tokens - cached)
                    await self._spend(prefill, plan.prompt_tokens, spent, prompt=True,
                                      sink=request.usage)
                    if cache is not None:
                        cache.add(blocks)
                        self.stats.cached_prompt_tokens += cached
                    for piece in plan.pieces:
                        slowdown = 1 + self.options.batch_slowdown * (self._state.active - 1)
                        seconds = self.options.decode_s_per_token * piece.decode_tokens * slowdown
                        await self._spend(seconds, piece.spent_tokens, spent, prompt=False,
                                          sink=request.usage)
                        if ttft is None:
                            ttft = anyio.current_time() - start
                        yield LLMChunk(piece.text)
                finally:
                    self._state.active -= 1
            final = LLMResponse(
                text=plan.texts[0],
                prompt_tokens=plan.prompt_tokens,
                completion_tokens=plan.completion_tokens,
                latency_s=anyio.current_time() - start,
                ttft_s=ttft,
                finish_reason=plan.finish_reason,
                model=self.config.model or "simulated",
                texts=plan.texts,
            )
            self.stats.completed += 1
            finished = True
            yield LLMChunk("", final=final)
        except (anyio.get_cancelled_exc_class(), GeneratorExit):
            if not finished:
                self.stats.cancelled += 1
            raise
        finally:
            self.stats.prompt_tokens += spent.prompt_tokens
            self.stats.completion_tokens += spent.completion_tokens

    async def aclose(self) -> None:
        """Nothing to release."""

    async def _spend(self, seconds: float, tokens: int, spent: Usage, *, prompt: bool,
                     sink: Usage | None = None) -> None:
        """Sleep for ``seconds`` (scaled), counting ``tokens`` or the share done if cancelled."""
        seconds *= self.options.time_scale
        started = anyio.current_time()
        try:
            if seconds > 0:
                await anyio.sleep(seconds)
            else:
                await checkpoint()
        except anyio.get_cancelled_exc_class():
            done = min(1.0, (anyio.current_time() - started) / seconds) if seconds > 0 else 0.0
            tokens = math.floor(tokens * done)
            raise
        finally:
            for counter in (spent, sink) if sink is not None else (spent,):
                if prompt:
                    counter.prompt_tokens += tokens
                else:
                    counter.completion_tokens += tokens

    def _cached_prefix(self, request: LLMRequest, prompt_tokens: int
                       ) -> tuple[PrefixCache | None, tuple[int, ...], int]:
        """The prefix cache, the prompt's block hashes and its tokens found cached."""
        cache = self.prefix_cache
        if cache is None:
            return None, (), 0
        blocks = block_hashes(chat_text(request.messages), _BLOCK_TOKENS * 4)
        return cache, blocks, min(prompt_tokens, cache.hits(blocks) * _BLOCK_TOKENS)

    def _plan(self, request: LLMRequest) -> _Plan:
        """Decide outputs, token counts and pieces: no I/O, no clock."""
        check_request(request, "simulated")
        key = json.dumps(request.messages, sort_keys=True)
        self._state.prompt_calls[key] += 1
        fail = self.options.fail_rate > 0 and (
            _unit(f"fail|{self.options.seed}|{self._state.prompt_calls[key]}|{key}")
            < self.options.fail_rate
        )
        texts = [self._sample(request, key, i) for i in range(request.n)]
        truncated = False
        if request.json_schema is None:
            limit = request.max_tokens * 4
            truncated = any(len(t) > limit for t in texts)
            texts = [t[:limit] for t in texts]
        # "max" models the time and tokens of decoding max_tokens; its text is whole, so
        # only a text cut to fit max_tokens stopped there (each run warned of every answer)
        finish = "length" if truncated else "stop"
        if self.options.output_tokens == "max":
            counts = [request.max_tokens] * len(texts)
        else:
            counts = [max(1, min(approx_tokens(t), request.max_tokens)) for t in texts]
        prompt_tokens = approx_prompt_tokens(request.messages)
        return _Plan(texts, prompt_tokens, sum(counts), finish,
                     _pieces(texts[0], max(counts), sum(counts)), fail)

    def _sample(self, request: LLMRequest, key: str, index: int) -> str:
        prompt = last_user_message(request.messages)
        for rule in self._state.rules:
            if rule.pattern.search(prompt):
                return rule.next_output()
        sample = index if request.temperature > 0 else 0
        rng = random.Random(_digest(f"{self.options.seed}|{request.seed}|{sample}|{key}"))
        if request.json_schema is not None:
            try:
                value = value_for_schema(request.json_schema, rng)
            except Exception as exc:  # the schema's fault: a bad $ref, pattern, size...
                reason = " ".join(str(exc).split())[:200]
                raise ConfigError(f"simulated backend: cannot satisfy the schema: "
                                  f"{type(exc).__name__}: {reason}") from exc
            return json.dumps(value)
        return words(rng, 6 + rng.randrange(10)).capitalize() + "."


def _pieces(text: str, decode_tokens: int, spent_tokens: int) -> list[_Piece]:
    """Split a text and its token counts into up to eight pieces with exact sums."""
    count = max(1, min(_MAX_PIECES, decode_tokens, max(1, len(text))))
    return [
        _Piece(
            text[len(text) * i // count : len(text) * (i + 1) // count],
            decode_tokens * (i + 1) // count - decode_tokens * i // count,
            spent_tokens * (i + 1) // count - spent_tokens * i // count,
        )
        for i in range(count)
    ]


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _unit(text: str) -> float:
    """A deterministic number in [0, 1) derived from ``text``."""
    return _digest(text) / 2**64
