"""``sim-engine``: a simulated continuous-batching GPU engine as an LLM backend.

Timing, batching, KV-cache capacity, preemption, prefix caching and priority come from
:class:`~executors.engines._model.EngineModel`; the texts come from the ``simulated``
backend (same seed, ``responses`` rules and ``output_tokens`` options), so a workflow
gets the same outputs from both and only the timing differs.

There is no background task: the caller that finds the engine idle runs its iterations
("drives") until its own request progresses, then hands the role to another waiting
caller. Each iteration waits its modelled duration times ``time_scale``; under
:func:`executors.engines.vclock.run_virtual` that wait is virtual, so an hour of engine
time takes seconds. A caller cancelled while it drives leaves at once, its request
aborted; the iteration it started runs to its end for the others, driven by the next.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import anyio
from anyio.lowlevel import checkpoint
from pydantic import Field

from executors.engines._meta import with_meta
from executors.engines._model import (
    Batch,
    EngineCounters,
    EngineModel,
    EngineParams,
    PromptTooLong,
    SimRequest,
    block_hashes,
)
from executors.llm import SimulatedBackend
from executors.llm._common import BackendOptions, chat_text, parse_options
from executors.llm.simulated import ResponseRule
from orchestrator.errors import BackendError, BackendHTTPError, BackendUnavailable
from orchestrator.runtime.contracts import LLMChunk, LLMRequest, LLMResponse, Usage
from orchestrator.spec.models import ModelConfig

_DEFAULTS = EngineParams()
#: seconds (of the clock the engine runs on) between two counts of a request's usage
#: while it runs; it is counted exactly when it ends
_ACCOUNT_EVERY_S = 0.1


def _cost(default: float) -> Any:
    """A cost in seconds of the engine model: finite, at most a minute per unit."""
    return Field(default, ge=0, le=60, allow_inf_nan=False)


class SimEngineOptions(BackendOptions):
    """The ``options:`` of ``sim-engine`` (defaults: Llama-3-8B bf16, one H100, vLLM).

    Costs and ``time_scale`` are finite and bounded, as the ``simulated`` backend's are:
    an infinite (or overflowing) iteration parked every request for good. Counts are
    integers proper (``true`` is no number of blocks), and ``responses`` are the
    ``simulated`` backend's rules, checked here so that ``ponder validate`` finds them.
    """

    decode_base_s: float = _cost(_DEFAULTS.decode_base_s)
    decode_per_seq_s: float = _cost(_DEFAULTS.decode_per_seq_s)
    decode_per_context_token_s: float = _cost(_DEFAULTS.decode_per_context_token_s)
    prefill_per_token_s: float = _cost(_DEFAULTS.prefill_per_token_s)
    prefill_attention_s: float = _cost(_DEFAULTS.prefill_attention_s)
    block_size: int = Field(_DEFAULTS.block_size, ge=1, strict=True)
    kv_blocks: int = Field(_DEFAULTS.kv_blocks, ge=1, strict=True)
    max_num_seqs: int = Field(_DEFAULTS.max_num_seqs, ge=1, strict=True)
    max_num_batched_tokens: int = Field(_DEFAULTS.max_num_batched_tokens, ge=1, strict=True)
    max_model_len: int = Field(_DEFAULTS.max_model_len, ge=1, strict=True)
    enable_prefix_caching: bool = _DEFAULTS.enable_prefix_caching
    scheduling_policy: Literal["fcfs", "priority"] = _DEFAULTS.policy
    starvation_s: float | None = Field(_DEFAULTS.starvation_s, gt=0, allow_inf_nan=False)
    time_scale: float = Field(1.0, ge=0, le=1000, allow_inf_nan=False)
    seed: int = Field(0, strict=True)
    responses: list[ResponseRule] = Field(default_factory=list)
    output_tokens: Literal["max", "text"] = "max"
    die_after_requests: int | None = Field(None, ge=0, strict=True)
    name: str | None = None

    def params(self) -> EngineParams:
        return EngineParams(
            decode_base_s=self.decode_base_s, decode_per_seq_s=self.decode_per_seq_s,
            decode_per_context_token_s=self.decode_per_context_token_s,
            prefill_per_token_s=self.prefill_per_token_s,
            prefill_attention_s=self.prefill_attention_s, block_size=self.block_size,
            kv_blocks=self.kv_blocks, max_num_seqs=self.max_num_seqs,
            max_num_batched_tokens=self.max_num_batched_tokens,
            max_model_len=self.max_model_len,
            enable_prefix_caching=self.enable_prefix_caching, policy=self.scheduling_policy,
            starvation_s=self.starvation_s)


@dataclass(eq=False, slots=True)
class _Ticket:
    """A caller's handle on its request inside the model."""

    request: SimRequest
    texts: list[str]
    finish_reason: str
    streaming: bool = False
    event: anyio.Event = field(default_factory=anyio.Event)
    error: BaseException | None = None
    #: the caller's counter (``LLMRequest.usage``) and what was added to it so far
    usage: Usage | None = None
    counted: Usage = field(default_factory=Usage)
    #: when ``usage`` was last brought up to date during the request
    accounted_at: float = -math.inf

    def account(self) -> None:
        """Bring ``usage`` up to what the engine has done for the request: the prompt
        once its first token is decoded (as vLLM reports it), and every sample's decoded
        tokens; preempted work recomputed is not counted again."""
        usage = self.usage
        if usage is None:
            return
        sim, counted = self.request, self.counted
        # called while the request runs: each count is written only when it grows (a
        # pool's counter does work on each write)
        if sim.first_token_at is not None and not counted.prompt_tokens:
            counted.prompt_tokens = sim.prompt_tokens
            usage.prompt_tokens += sim.prompt_tokens
        completion = min(sim.generated, sim.output_tokens) * sim.n
        if completion != counted.completion_tokens:
            usage.completion_tokens += completion - counted.completion_tokens
            counted.completion_tokens = completion


_ids = itertools.count(1)


class SimEngineBackend:
    """A simulated GPU engine (see the module docstring and docs/engines.md).

    Options (``ModelConfig.options``), all optional:

    ============================ ========= ============================================
    option                       default   meaning
    ============================ ========= ============================================
    decode_base_s                0.00704   fixed cost of one iteration (weights read)
    decode_per_seq_s             1.12e-5   extra cost per decoding sequence
    decode_per_context_token_s   4.3e-8    extra cost per context token of the batch
    prefill_per_token_s          2.0e-5    cost per prompt token computed
    prefill_attention_s          2.4e-9    cost per query-key pair of those tokens
    block_size                   16        tokens per KV block
    kv_blocks                    27000     KV blocks (27000 x 16 = 432k tokens)
    max_num_seqs                 1024      sequences in the running batch
    max_num_batched_tokens       8192      tokens per iteration (chunked prefill)
    max_model_len                131072    prompt + output limit of one request
    enable_prefix_caching        true      reuse KV blocks of shared prompt prefixes
    scheduling_policy            priority  ``fcfs`` or ``priority`` (request.priority)
    starvation_s                 60        ``priority``: a request that has waited this
                                           long in the queue goes first (null: never)
    time_scale                   1.0       multiplies each iteration's wait; 0 = none
    seed, responses,             0, [],    the texts, as the ``simulated`` backend
    output_tokens                "max"
    die_after_requests           none      the engine dies after finishing this many
    name                         model     a label for stats and messages
    ============================ ========= ============================================

    A request whose prompt plus ``max_tokens`` cannot fit fails with HTTP 400; after the
    engine died every call fails with :class:`BackendUnavailable` (retryable).
    ``LLMRequest.usage``, when given, counts what the engine did for the request (its
    prompt from the first decoded token on, then each decoded token), so a request
    cancelled or failed while queued adds nothing and one cancelled while running adds
    what it had decoded. It grows while the request runs (every 0.1 s of the engine's
    clock at most, and exactly at its end), which is how a pool sees that the engine
    is at work.
    """

    options_model = SimEngineOptions  # what `ponder validate` checks the model's options against

    default_concurrency = 1024

    def __init__(self, config: ModelConfig) -> None:
        """:raises ConfigError: naming a bad option."""
        self.config = config
        self.options = parse_options(self.options_model, config.options, "sim-engine")
        self.name = self.options.name or config.model or "sim-engine"
        self.model = EngineModel(self.options.params())
        self._texts = SimulatedBackend(ModelConfig(
            backend="simulated", model=config.model,
            options={"time_scale": 0, "capacity": 1_000_000, "seed": self.options.seed,
                     "responses": self.options.responses,
                     "output_tokens": self.options.output_tokens}))
        self._tickets: dict[str, _Ticket] = {}
        self._driving = False
        self._dead: str | None = None
        #: the iteration running on the engine and when it ends: a driver that is
        #: cancelled leaves it to the next one (see :meth:`_drive`)
        self._batch: Batch | None = None
        self._batch_end = 0.0

    @property
    def counters(self) -> EngineCounters:
        """What the engine has done so far."""
        return self.model.counters

    @property
    def active(self) -> int:
        """Requests queued or running at the engine."""
        return len(self._tickets)

    async def health(self) -> bool:
        """False once the engine has died."""
        return self._dead is None

    def kill(self, reason: str = "killed") -> None:
        """Make the engine die now: every request in flight fails, and every later one."""
        if self._dead is not None:
            return
        self._dead = reason
        error = BackendUnavailable(f"sim-engine {self.name!r} died: {reason}")
        for ticket in self._tickets.values():
            if ticket.request.status != "finished":
                ticket.error = error
                ticket.event.set()
        for request_id in list(self.model.requests):
            self.model.abort(request_id)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Run one request to completion.

        :raises BackendHTTPError: (400) when the request can never fit the engine.
        :raises BackendUnavailable: when the engine is dead or dies meanwhile.
        """
        ticket = await self._submit(request)
        try:
            while ticket.request.status != "finished":
                await self._progress(ticket)
        finally:
            self._retire(ticket)
        return self._response(ticket)

    async def stream(self, request: LLMRequest) -> AsyncGenerator[LLMChunk, None]:
        """Yield the first sample's text as its tokens are decoded; the last chunk is final.

        :raises BackendHTTPError, BackendUnavailable: as :meth:`complete`.
        """
        ticket = await self._submit(request)
        ticket.streaming = True
        sent = 0
        try:
            while ticket.request.status != "finished":
                await self._progress(ticket)
                ticket.account()
                text = ticket.texts[0]
                upto = len(text) * min(ticket.request.generated,
                                       ticket.request.output_tokens) // ticket.request.output_tokens
                if upto > sent:
                    yield LLMChunk(text[sent:upto])
                    sent = upto
        finally:
            self._retire(ticket)
        yield LLMChunk("", final=self._response(ticket))

    async def aclose(self) -> None:
        """Abort whatever is still queued (a closed engine keeps no work)."""
        for request_id in list(self.model.requests):
            self.model.abort(request_id)

    # -- internals ------------------------------------------------------------------------
    async def _submit(self, request: LLMRequest) -> _Ticket:
        if self._dead is not None:
            raise BackendUnavailable(f"sim-engine {self.name!r} is dead: {self._dead}")
        # the texts' backend must not count usage: only what the engine does is spent
        planned = await self._texts.complete(replace(request, n=max(1, request.n), usage=None))
        prompt = chat_text(request.messages)
        params = self.model.params
        n = len(planned.texts) or 1
        sim = SimRequest(
            request_id=f"{request.request_id or 'request'}#{next(_ids)}",
            prompt_tokens=max(1, math.ceil(len(prompt) / params.chars_per_token)),
            output_tokens=max(1, math.ceil(planned.completion_tokens / n)),
            n=n,
            priority=request.priority,
            block_hashes=block_hashes(prompt, params) if params.enable_prefix_caching else (),
        )
        try:
            self.model.add(sim, anyio.current_time())
        except PromptTooLong as exc:
            raise BackendHTTPError(f"sim-engine {self.name!r}: {exc}", status=400) from None
        ticket = _Ticket(sim, planned.texts or [planned.text], planned.finish_reason or "length",
                         usage=request.usage)
        self._tickets[sim.request_id] = ticket
        return ticket

    def _retire(self, ticket: _Ticket) -> None:
        ticket.account()
        self._tickets.pop(ticket.request.request_id, None)
        if ticket.request.status != "finished":
            self.model.abort(ticket.request.request_id)

    async def _progress(self, ticket: _Ticket) -> None:
        """Return once the ticket's request has progressed (or the engine died)."""
        if ticket.error is not None:
            raise ticket.error
        ticket.event = anyio.Event()
        try:
            while not ticket.event.is_set():
                if self._driving:
                    await ticket.event.wait()
                else:
                    await self._drive(ticket)
        except BaseException:
            # woken to drive (or for its progress) but leaving: someone else must drive
            if ticket.event.is_set() and not self._driving:
                self._hand_off(ticket)
            raise
        if ticket.error is not None:
            raise ticket.error

    async def _drive(self, ticket: _Ticket) -> None:
        """Run iterations until ``ticket`` progresses, then pass the role on.

        A driver that is cancelled leaves at once: the iteration it started goes on on
        the engine (the other requests of the batch are waiting on it, as on a real
        engine), and the caller it hands the role to waits for its end and applies it.
        """
        self._driving = True
        try:
            while not ticket.event.is_set():
                if self._batch is None:
                    batch = self.model.schedule(anyio.current_time())
                    if batch.empty:
                        raise BackendError(
                            f"sim-engine {self.name!r}: no request can be scheduled")
                    seconds = batch.duration_s * self.options.time_scale
                    self._batch, self._batch_end = batch, anyio.current_time() + seconds
                    await self._wait(seconds)
                else:  # started by a driver that was cancelled
                    await anyio.sleep_until(self._batch_end)
                batch, self._batch = self._batch, None
                self._finish(batch)
        finally:
            self._driving = False
            self._hand_off(ticket)

    def _finish(self, batch: Batch) -> None:
        """Apply an iteration that has ended: count what it did for each request (at
        most every :data:`_ACCOUNT_EVERY_S`: a pool watches these counts for a hung
        engine, and does work on each) and wake the callers it concerns."""
        now = anyio.current_time()
        for sim in self.model.finish(batch, now):
            waiting = self._tickets.get(sim.request_id)
            if waiting is None:
                continue
            if now - waiting.accounted_at >= _ACCOUNT_EVERY_S:
                waiting.accounted_at = now
                waiting.account()
            # a streaming caller wakes for every token, the others when done
            if waiting.streaming or sim.status == "finished":
                waiting.event.set()
        limit = self.options.die_after_requests
        if limit is not None and self.model.counters.finished >= limit:
            self.kill(f"died after {limit} requests (die_after_requests)")

    def _hand_off(self, ticket: _Ticket) -> None:
        """Wake a caller other than ``ticket`` that is waiting: it finds nobody driving,
        and drives."""
        for other in self._tickets.values():
            if other is not ticket and not other.event.is_set():
                other.event.set()
                break

    @staticmethod
    async def _wait(seconds: float) -> None:
        if seconds > 0:
            await anyio.sleep(seconds)
        else:
            await checkpoint()

    def _response(self, ticket: _Ticket) -> LLMResponse:
        sim = ticket.request
        end = sim.finished_at if sim.finished_at is not None else anyio.current_time()
        response = LLMResponse(
            text=ticket.texts[0],
            prompt_tokens=sim.prompt_tokens,
            completion_tokens=sim.output_tokens * sim.n,
            latency_s=end - sim.arrival,
            ttft_s=(sim.first_token_at - sim.arrival) if sim.first_token_at is not None
            else None,
            finish_reason=ticket.finish_reason,
            model=self.config.model or self.name,
            texts=ticket.texts,
        )
        return with_meta(response, {"engine": self.name, "cached_tokens": sim.cached_tokens,
                                    "preemptions": sim.preemptions,
                                    "decode_s": (end - sim.first_token_at)
                                    if sim.first_token_at is not None else None})
