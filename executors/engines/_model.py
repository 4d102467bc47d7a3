"""A discrete-event model of one continuous-batching engine (vLLM-like), without I/O or clock.

The engine alternates two calls made by a driver: :meth:`EngineModel.schedule` picks
the next iteration's batch (admits waiting requests, allocates KV blocks, preempts
when the cache is full) and says how long it takes; :meth:`EngineModel.finish` applies
it at the given time (tokens produced, prefixes cached, requests finished). Between
the two, the driver lets that much time pass (a real sleep, a virtual one, or none).

Iteration time (seconds)::

    decode_base_s + decode_per_seq_s * decoding_sequences
    + decode_per_context_token_s * context_tokens_of_decoding_sequences
    + prefill_per_token_s * prompt_tokens_computed_this_iteration
    + prefill_attention_s * query_key_pairs_of_those_prompt_tokens

A prompt chunk of P tokens whose first C tokens of context already have KV (earlier
chunks, or a cached prefix) attends to C + P keys: ``P * (C + P / 2)`` query-key pairs.
Without that term a short suffix after a long cached prefix would cost as little as
a lone short prompt (measured on an H100: 44 ms against 16 ms for 512 tokens after
15,872 cached ones).

KV cache: ``kv_blocks`` blocks of ``block_size`` tokens. A request holds the blocks of
its prompt and of each sample's output. Full prompt blocks are content-addressed
(a hash chain over the text), kept after the request ends until evicted in LRU order,
and reused by a later request whose prompt starts with the same blocks (automatic
prefix caching): those tokens are not computed again. When a decoding sequence needs a
block and none is free, the least urgent running request is preempted: its blocks are
released and it goes back to the queue to recompute prompt and output (vLLM v1's
recompute preemption).
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

from executors.llm._common import block_hashes as chain_hashes

Policy = Literal["fcfs", "priority"]


@dataclass(frozen=True, slots=True)
class EngineParams:
    """The cost and capacity parameters of :class:`EngineModel` (see docs/engines.md).

    The defaults model Llama-3-8B in bf16 on one H100 80GB under vLLM; the
    calibration and its sources are in docs/engines.md.
    """

    decode_base_s: float = 0.00704
    decode_per_seq_s: float = 0.0000112
    decode_per_context_token_s: float = 4.3e-8
    prefill_per_token_s: float = 2.0e-5
    prefill_attention_s: float = 2.4e-9
    block_size: int = 16
    kv_blocks: int = 27_000
    max_num_seqs: int = 1024
    max_num_batched_tokens: int = 8192
    max_model_len: int = 131_072
    chars_per_token: int = 4
    enable_prefix_caching: bool = True
    policy: Policy = "priority"
    starvation_s: float | None = 60.0


@dataclass(eq=False, slots=True)
class SimRequest:
    """One request inside the model.

    :param output_tokens: tokens each sample decodes.
    :param priority: larger = more urgent (only read under the ``priority`` policy).
    :param waited_s: time it spent in the engine's queue before it last got in.
    :param aged: it has waited ``starvation_s`` in the queue, in all: it goes before
        every request that has not (``priority`` policy).
    """

    request_id: str
    prompt_tokens: int
    output_tokens: int
    n: int = 1
    priority: float = 0.0
    block_hashes: tuple[int, ...] = ()
    arrival: float = 0.0
    # -- state, written by the model --
    status: Literal["waiting", "running", "finished", "aborted"] = "waiting"
    computed: int = 0  # prompt tokens (plus recomputed output) whose KV exists
    target: int = 0  # tokens to compute before decoding resumes (every sample's)
    generated: int = 0  # tokens decoded per sample
    cached_tokens: int = 0  # prompt tokens found in the prefix cache (last admission)
    hashes_held: list[int] = field(default_factory=list)
    private_blocks: int = 0
    preemptions: int = 0
    first_token_at: float | None = None
    finished_at: float | None = None
    seq: int = 0  # admission order, for fcfs among equals
    waited_s: float = 0.0
    queued_at: float = 0.0
    aged: bool = False

    def context(self) -> int:
        """Tokens of context per sample (prompt plus what was decoded)."""
        return self.prompt_tokens + self.generated


@dataclass(slots=True)
class Batch:
    """One iteration: what it computes and how long it takes."""

    duration_s: float
    decodes: list[SimRequest]
    prefills: list[tuple[SimRequest, int]]

    @property
    def empty(self) -> bool:
        return not self.decodes and not self.prefills


@dataclass(slots=True)
class EngineCounters:
    """Work the model did.

    :param prefill_tokens: prompt (and recomputed) tokens computed.
    :param cached_tokens: prompt tokens served from the prefix cache.
    :param decode_tokens: output tokens decoded, every sample counted.
    :param busy_s: time spent in iterations.
    """

    requests: int = 0
    finished: int = 0
    aborted: int = 0
    prefill_tokens: int = 0
    cached_tokens: int = 0
    decode_tokens: int = 0
    preemptions: int = 0
    iterations: int = 0
    busy_s: float = 0.0
    max_running: int = 0

    @property
    def prefix_hit_rate(self) -> float:
        """Share of prompt tokens that came from the prefix cache."""
        total = self.prefill_tokens + self.cached_tokens
        return self.cached_tokens / total if total else 0.0


class PromptTooLong(ValueError):
    """A request can never fit the engine (``max_model_len`` or the whole KV cache)."""


def block_hashes(text: str, params: EngineParams) -> tuple[int, ...]:
    """Hash chain of the full blocks of a prompt text (``block_size`` tokens each)."""
    return chain_hashes(text, params.block_size * params.chars_per_token)


class EngineModel:
    """The state of one engine: queue, running batch, KV blocks and prefix cache."""

    def __init__(self, params: EngineParams | None = None) -> None:
        self.params = params or EngineParams()
        self.counters = EngineCounters()
        #: the queue by urgency; requests that have aged move to ``_aged`` (oldest
        #: first), found when their wait reaches ``starvation_s`` through ``_aging`` (by
        #: that moment). Entries of a request that left the queue, or was queued again,
        #: are skipped when they come up (``_current``).
        self.waiting: list[tuple[tuple[float, ...], int, SimRequest]] = []
        self._aged: list[tuple[tuple[float, ...], int, SimRequest]] = []
        self._aging: list[tuple[float, int, SimRequest]] = []
        self._queued = 0
        self._now = 0.0
        self.running: list[SimRequest] = []
        self.requests: dict[str, SimRequest] = {}
        self._free = self.params.kv_blocks
        self._refs: dict[int, int] = {}
        self._evictable: OrderedDict[int, None] = OrderedDict()
        self._seq = 0

    # -- requests -------------------------------------------------------------------
    def add(self, request: SimRequest, now: float) -> None:
        """Queue a request.

        :raises PromptTooLong: when it exceeds ``max_model_len`` or the whole cache.
        """
        p = self.params
        if request.prompt_tokens + request.output_tokens > p.max_model_len:
            raise PromptTooLong(
                f"prompt ({request.prompt_tokens}) + max_tokens ({request.output_tokens}) "
                f"exceeds max_model_len ({p.max_model_len})")
        need = self._blocks_for(request.prompt_tokens) + request.n * self._blocks_for(
            request.output_tokens)
        if need > p.kv_blocks:
            raise PromptTooLong(
                f"prompt ({request.prompt_tokens}) + {request.n} x max_tokens "
                f"({request.output_tokens}) needs {need} KV blocks of {p.block_size} tokens "
                f"(block_size); the engine has {p.kv_blocks} (kv_blocks)")
        if request.request_id in self.requests:
            raise ValueError(f"request id {request.request_id!r} is already in the engine")
        request.arrival = now
        request.target = request.prompt_tokens
        self.requests[request.request_id] = request
        self.counters.requests += 1
        self._now = max(self._now, now)
        self._enqueue(request)

    def abort(self, request_id: str) -> None:
        """Stop a request now (its blocks are released); unknown ids are ignored."""
        request = self.requests.pop(request_id, None)
        if request is None or request.status in ("finished", "aborted"):
            return
        if request.status == "running":
            self.running.remove(request)
            self._release(request)
        else:
            self._queued -= 1
        request.status = "aborted"
        self.counters.aborted += 1

    def has_work(self) -> bool:
        return bool(self.running or self._queued)

    # -- one iteration ----------------------------------------------------------------
    def schedule(self, now: float | None = None) -> Batch:
        """Pick the next iteration's batch; admits, allocates and preempts as needed.

        :param now: when the iteration starts, for the requests' waiting (aging); the
            latest time given to :meth:`add` or :meth:`finish` when None.
        """
        p = self.params
        if now is not None:
            self._now = max(self._now, now)
        decodes: list[SimRequest] = []
        for request in sorted(self.running, key=self._urgency):
            if request.status != "running" or request.computed < request.target:
                continue
            if not self._grow(request):
                continue  # preempted itself
            decodes.append(request)
        budget = p.max_num_batched_tokens - sum(r.n for r in decodes)
        prefills: list[tuple[SimRequest, int]] = []
        for request in self.running:
            if budget <= 0:
                break
            if request.computed < request.target:
                chunk = min(budget, request.target - request.computed)
                prefills.append((request, chunk))
                budget -= chunk
        while budget > 0 and len(self.running) < p.max_num_seqs:
            queue = self._head()
            if queue is None:
                break
            request = queue[0][2]
            if not self._admit(request):
                break  # head of line waits for blocks (vLLM does not skip it)
            heapq.heappop(queue)
            self._queued -= 1
            request.waited_s += max(0.0, self._now - request.queued_at)
            chunk = min(budget, request.target - request.computed)
            prefills.append((request, chunk))
            budget -= chunk
        self.counters.max_running = max(self.counters.max_running, len(self.running))
        decoding = [r for r in decodes if r.status == "running"]
        context = sum(r.n * r.context() for r in decoding)
        prefill_tokens = sum(c for _, c in prefills)
        pairs = sum(c * (r.computed + c / 2) for r, c in prefills)
        duration = 0.0
        if decoding or prefills:
            duration = (p.decode_base_s + p.decode_per_seq_s * sum(r.n for r in decoding)
                        + p.decode_per_context_token_s * context
                        + p.prefill_per_token_s * prefill_tokens
                        + p.prefill_attention_s * pairs)
        return Batch(duration, decoding, prefills)

    def finish(self, batch: Batch, now: float) -> list[SimRequest]:
        """Apply an iteration that ended at ``now``; returns the requests that progressed."""
        self._now = max(self._now, now)
        self.counters.iterations += 1 if not batch.empty else 0
        self.counters.busy_s += batch.duration_s
        progressed: list[SimRequest] = []
        for request in batch.decodes:
            if request.status != "running":
                continue  # aborted or preempted meanwhile
            request.generated += 1
            self.counters.decode_tokens += request.n
            progressed.append(request)
        for request, chunk in batch.prefills:
            if request.status != "running":
                continue
            request.computed += chunk
            self.counters.prefill_tokens += chunk
            self._cache_computed(request)
            if request.computed >= request.target:
                if request.generated == 0:
                    request.generated = 1  # the last prefill chunk samples the first token
                    self.counters.decode_tokens += request.n
                progressed.append(request)
        for request in progressed:
            if request.first_token_at is None and request.generated > 0:
                request.first_token_at = now
            if request.generated >= request.output_tokens and request.status == "running":
                self._complete(request, now)
        return progressed

    # -- internals ----------------------------------------------------------------------
    def _urgency(self, request: SimRequest) -> tuple[float, ...]:
        """Sort key: smaller is served (and kept) first. Under ``priority``, a request
        that has aged goes before every other one, the oldest first."""
        if self.params.policy == "priority":
            if request.aged:
                return (0.0, request.arrival, 0.0, request.seq)
            return (1.0, -request.priority, request.arrival, request.seq)
        return (request.arrival, request.seq)

    def _enqueue(self, request: SimRequest) -> None:
        self._seq += 1
        self._queued += 1
        request.seq = self._seq
        request.status = "waiting"
        request.queued_at = self._now
        entry = (self._urgency(request), request.seq, request)
        limit = self.params.starvation_s
        if request.aged or self.params.policy != "priority" or limit is None:
            heapq.heappush(self._aged if request.aged else self.waiting, entry)
            return
        heapq.heappush(self.waiting, entry)
        due = request.queued_at + max(0.0, limit - request.waited_s)
        heapq.heappush(self._aging, (due, request.seq, request))

    @staticmethod
    def _current(entry: tuple[Any, int, SimRequest]) -> bool:
        """Whether a queue entry is its request's place in the queue now."""
        request = entry[2]
        return request.status == "waiting" and request.seq == entry[1]

    def _head(self) -> list[tuple[tuple[float, ...], int, SimRequest]] | None:
        """The queue whose first entry is admitted next (requests that aged by now
        first), its stale entries dropped; None when nothing waits."""
        while self._aging and self._aging[0][0] <= self._now:
            entry = heapq.heappop(self._aging)
            if self._current(entry):
                request = entry[2]
                request.aged = True
                heapq.heappush(self._aged, (self._urgency(request), request.seq, request))
        for queue in (self._aged, self.waiting):
            while queue and (not self._current(queue[0])
                             or (queue is self.waiting and queue[0][2].aged)):
                heapq.heappop(queue)
            if queue:
                return queue
        return None

    def _blocks_for(self, tokens: int) -> int:
        return math.ceil(tokens / self.params.block_size)

    def _admit(self, request: SimRequest) -> bool:
        """Reference cached prefix blocks and allocate the rest of the prompt, or refuse."""
        hits: list[int] = []
        if self.params.enable_prefix_caching:
            for h in request.block_hashes:
                if h not in self._refs:
                    break
                hits.append(h)
        # vLLM recomputes at least the last prompt token, to sample from it
        cached = min(len(hits) * self.params.block_size, request.target - 1)
        hits = hits[: cached // self.params.block_size]
        private = self._blocks_for(request.target) - len(hits)
        available = self._free + len(self._evictable) - sum(1 for h in hits
                                                              if h in self._evictable)
        if private > available:
            return False
        for h in hits:
            self._ref(h)
        if not self._allocate(private):  # pragma: no cover - checked above
            for h in hits:
                self._unref(h)
            return False
        request.hashes_held = hits
        request.private_blocks = private
        request.computed = len(hits) * self.params.block_size
        request.cached_tokens = request.computed
        self.counters.cached_tokens += request.computed
        request.status = "running"
        self.running.append(request)
        return True

    def _grow(self, request: SimRequest) -> bool:
        """Give a decoding request the blocks its next token needs; preempt others if full."""
        if request.generated % self.params.block_size != 0:
            return True
        while not self._allocate(request.n):
            victim = max(self.running, key=self._urgency)
            self._preempt(victim)
            if victim is request:
                return False
        request.private_blocks += request.n
        return True

    def _preempt(self, request: SimRequest) -> None:
        self.running.remove(request)
        self._release(request)
        request.preemptions += 1
        self.counters.preemptions += 1
        # recompute: the prompt and the tokens decoded so far, of every sample: each has
        # its own output (their KV took n blocks per block_size tokens decoded; counted
        # once, a preempted request of n samples came back holding a fraction of the
        # cache it held before, and recomputed one sample's tokens)
        request.target = request.prompt_tokens + request.n * request.generated
        request.computed = 0
        self._enqueue(request)

    def _complete(self, request: SimRequest, now: float) -> None:
        request.status = "finished"
        request.finished_at = now
        self.running.remove(request)
        self._release(request)
        self.requests.pop(request.request_id, None)
        self.counters.finished += 1

    def _release(self, request: SimRequest) -> None:
        for h in request.hashes_held:
            self._unref(h)
        request.hashes_held = []
        self._free += request.private_blocks
        request.private_blocks = 0

    def _cache_computed(self, request: SimRequest) -> None:
        """Turn newly computed full prompt blocks into shared, content-addressed blocks."""
        if not self.params.enable_prefix_caching:
            return
        full = min(request.computed, request.prompt_tokens) // self.params.block_size
        held = set(request.hashes_held)
        for h in request.block_hashes[len(request.hashes_held):full]:
            if h in self._refs or h in held or request.private_blocks == 0:
                break  # a duplicate computed concurrently stays private
            self._refs[h] = 1
            request.hashes_held.append(h)
            request.private_blocks -= 1

    def _ref(self, h: int) -> None:
        if self._refs[h] == 0:
            del self._evictable[h]
        self._refs[h] += 1

    def _unref(self, h: int) -> None:
        self._refs[h] -= 1
        if self._refs[h] == 0:
            self._evictable[h] = None

    def _allocate(self, count: int) -> bool:
        if count > self._free + len(self._evictable):
            return False
        while self._free < count:
            h, _ = self._evictable.popitem(last=False)
            del self._refs[h]
            self._free += 1
        self._free -= count
        return True

    @property
    def free_blocks(self) -> int:
        """Blocks neither in use nor holding a cached prefix."""
        return self._free

    @property
    def cached_blocks(self) -> int:
        """Blocks holding a prefix no running request uses (evictable)."""
        return len(self._evictable)
