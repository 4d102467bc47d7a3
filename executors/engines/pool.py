"""``pool``: one model served by several engines, as one LLM backend.

Routing. A call goes to the least-loaded healthy engine (load = calls in flight and
queued there, over its concurrency limit), except that calls sharing a long prompt
prefix go where the first of them went, so the engine's prefix cache is reused
(spawn children, samples, AGoT siblings). The prefix is ``LLMRequest.prefix_key``, or
else a hash of the first ``prefix_chars`` characters of the prompt when it is at least
that long. Affinity yields when its engine is more than ``affinity_slack`` full loads
busier than the least-loaded one; the prefix then moves to the new engine.

Queueing. Each engine takes at most its ``concurrency`` calls at once; the rest wait
at the pool and are let in by the pool's policy (``fifo``, ``critical_path``,
``program_aware``: see :mod:`executors.engines._policy`). The policy's priority is
also passed on to the engine (``LLMRequest.priority``), for engines that queue too.

Failures. A call that fails because of its engine (unreachable, 5xx, timeout, an
engine error, a 401/403/404/405 that says the member's address, credentials or model are
wrong) is retried on another engine, up to ``max_attempts`` engines; the engine
is taken out after ``eject_after`` consecutive failures and tried again after
``probe_after_s`` (first asking its ``health()`` where it has one, which must answer
within ``health_timeout_s``), with one call at a time until it answers one; a call that
probes it and fails there moves on without that failure counting toward its
``max_attempts``. A call
that finds every engine it has not tried taken out, none due for its probe, probes the
one out longest at once rather than failing without asking any (the retries of a step
on a pool of one engine were spent so on one failure). Calls waiting for an engine that
is taken out move to another. Errors of the call itself (HTTP
4xx, bad configuration; an engine in process that refuses it with Python's ``ValueError`` or
``TypeError``, as vLLM's and llama.cpp's do a prompt too long for the context, a bad
sampling parameter or a schema they cannot follow) fail it at once, with the engine's
words, and leave the engine in: another engine would refuse it too. A streamed call is
retried only before its first chunk; an engine that fails after it counts as failed all
the same.

Busy engines. HTTP 429 and 503 (a full queue) are backpressure: the engine stays in and
its failures are not counted; it gets no call until its ``Retry-After`` (else a back-off
from ``busy_backoff_s`` doubling up to ``busy_backoff_max_s``), and the call goes to
another engine or waits for the first one free, up to ``busy_wait_s``. An engine that has
answered nothing but busy for ``busy_eject_after_s`` is taken out all the same (a proxy
whose upstream is gone), and probed again after ``probe_after_s``. A pool that is a member
of another does not wait: all its engines busy, it answers busy at once (:class:`PoolBusy`,
with the earliest moment one of its engines could take a call: a back-off's end, or a
probe due), and the outer pool backs off from it.

Hung engines. A member whose calls in flight make no progress (no token counted, no
chunk, no answer or error) for ``stall_timeout_s`` has them stopped and moved to the
others; the stall counts as a failure, and its ``health()`` is asked at once: failing
it takes the member out whatever ``eject_after`` says. The pool's ``stall_timeout_s``
applies only to members whose progress it can see before their answer (see
:data:`PROGRESS_IN`): one whose backend counts tokens as they are made (``vllm``,
``sim-engine``, ``local``...), or one whose stream does (``openai``: the pool then runs
its calls through the member's stream, since an answer that is not streamed shows
nothing before its end). Such a member's call is watched from its first progress, until
one of its answers has come streamed (with a time to first token; from then on from the
start of each call): a server that ignores ``stream: true`` and answers at the end, in
one JSON body, is never taken for a hung one. A member that shows nothing before its
answer (``ray-engine``, a backend that does not say) is not watched, since a long answer
would look hung, unless it sets a ``stall_timeout_s`` of its own, which then bounds each
of its calls. A member that is a pool watches its own engines, and is watched only with a
``stall_timeout_s`` of its own, longer than it takes to move a call off a hung engine.
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from contextlib import aclosing, asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

import anyio
import anyio.from_thread
from pydantic import Field, ValidationError

from executors.engines._hub import SHARED, SharedObjects, close_all
from executors.engines._meta import with_meta
from executors.engines._policy import (
    Call,
    PolicyName,
    PolicySettings,
    ServiceLedger,
    engine_priority,
    level,
    run_of,
    sort_key,
)
from executors.llm._common import BackendOptions, parse_options
from executors.llm._request_errors import is_request_error
from orchestrator.errors import (
    BackendError,
    BackendHTTPError,
    BackendUnavailable,
    ConfigError,
    PonderError,
    StepTimeout,
    clipped,
    shown,
)
from orchestrator.runtime.contracts import (
    BackendFactory,
    LLMBackend,
    LLMChunk,
    LLMRequest,
    LLMResponse,
    Usage,
)
from orchestrator.spec.models import ModelConfig
from orchestrator.spec.options import OptionProblem, option_problems

if TYPE_CHECKING:
    from orchestrator.runtime.registry import ConfigProblem, Registry

#: backends of this package, found without entry points
BUILTIN_BACKENDS = {
    "sim-engine": "executors.engines.sim:SimEngineBackend",
    "vllm": "executors.engines.vllm:VLLMBackend",
    "ray-engine": "executors.engines.ray:RayEngineBackend",
    "pool": "executors.engines.pool:PoolBackend",
}
DEFAULT_MEMBER_CONCURRENCY = 64
#: HTTP statuses below 500 that are a member's fault, not the call's: a wrong address or
#: model (404, 405), wrong credentials (401, 403), a timeout (408), busy (429)
_ENGINE_STATUSES = frozenset({401, 403, 404, 405, 408, 429})
#: HTTP statuses of a member that is up but full (too many requests; a vLLM server's or
#: engine's full queue, 503): backpressure, not a failure
_BUSY_STATUSES = frozenset({429, 503})
#: busy answers in a row a member gives at least before ``busy_eject_after_s`` takes it
#: out: two answers an hour apart do not show a member that is never free
_BUSY_EJECT_STREAK = 3
#: how far past its ``stall_timeout_s`` a stalled call may run before it is stopped (the
#: watch looks once per eighth of it): a member that is a pool moves a call off a hung
#: engine within its longest limit times this, plus its ``health_timeout_s``
STALL_OVERRUN = 9 / 8
_log = logging.getLogger(__name__)

#: where a backend shows the progress of a call before its answer (see
#: ``stall_timeout_s``): ``"complete"``, its ``complete()`` counts tokens on
#: ``LLMRequest.usage`` as they are made; ``"stream"``, only its ``stream()`` does, chunk by
#: chunk (a pool that watches such a member runs its calls through the stream);
#: ``"none"``, nothing shows before the answer
Progress = Literal["complete", "stream", "none"]
#: the built-in backends' :data:`Progress`, by backend name. Another backend says it with
#: a ``progress_in`` attribute (which also overrides this table); one that does not is
#: taken as ``"none"``.
PROGRESS_IN: dict[str, Progress] = {
    "vllm": "complete",
    "sim-engine": "complete",
    "local": "complete",
    "simulated": "complete",
    "openai": "stream",  # an answer that is not streamed (n == 1) comes all at its end
    "ray-engine": "none",  # the actor answers at the end; its stream is one chunk
}


class PoolOptions(BackendOptions):
    """The ``options:`` of the ``pool`` backend (see :class:`PoolBackend`).

    Its numbers are finite: ``.inf`` is no limit any of them can take (``null`` is
    "never" where an option has it), and some broke the pool (an infinite
    ``prompt_weight`` made a run's service infinite, whose level no integer holds: the
    call failed and its healthy engine was taken out; an infinite ``health_timeout_s``
    let a hung health check hang the calls that waited for it).
    """

    members: list[dict[str, Any]] = Field(min_length=1)
    policy: PolicyName = "program_aware"
    routing: Literal["prefix_affinity", "least_loaded"] = "prefix_affinity"
    prefix_chars: int = Field(1024, ge=1)
    affinity_slack: float = Field(1.0, ge=0, allow_inf_nan=False)
    max_attempts: int = Field(3, ge=1)
    eject_after: int = Field(1, ge=1)
    probe_after_s: float = Field(30.0, ge=0, allow_inf_nan=False)
    health_timeout_s: float = Field(10.0, gt=0, allow_inf_nan=False)
    busy_backoff_s: float = Field(1.0, gt=0, allow_inf_nan=False)
    busy_backoff_max_s: float = Field(30.0, gt=0, allow_inf_nan=False)
    busy_wait_s: float = Field(120.0, gt=0, allow_inf_nan=False)
    busy_eject_after_s: float | None = Field(300.0, gt=0, allow_inf_nan=False)
    stall_timeout_s: float | None = Field(300.0, gt=0, allow_inf_nan=False)
    quantum_tokens: float = Field(2048.0, gt=0, allow_inf_nan=False)
    levels: int = Field(8, ge=1)
    starvation_s: float = Field(60.0, gt=0, allow_inf_nan=False)
    prompt_weight: float = Field(0.1, ge=0, allow_inf_nan=False)
    starvation_ratio: float = Field(4.0, gt=0, allow_inf_nan=False)
    starvation_floor_s: float = Field(5.0, ge=0, allow_inf_nan=False)
    starving_order: Literal["run", "arrival"] = "run"
    shared: bool = True


class PoolBusy(BackendUnavailable):
    """Every engine of a pool that is up is busy (it answered HTTP 429 or 503) for longer
    than the call may wait. A pool that is a member of another is busy, then, not
    failed: the outer pool backs off from it for ``retry_after_s``, the earliest moment
    one of its engines could take a call (the end of a busy back-off, or when one taken
    out is due for its probe), instead of counting a failure.

    :param retry_after_s: seconds until the first of its engines may be asked again.
    """

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class _Moved(Exception):
    """The engine a call waited for was taken out; route the call again."""


class _Watched(Usage):
    """The usage counter a pool gives its member for one attempt of a call: it adds what
    the member counts to the caller's counter (``inner``, when there is one) and calls
    ``notify`` (when given) when a count grows, which is the member's progress (see
    ``stall_timeout_s``); its own counts are what the attempt spent. It travels (to a Ray
    actor) as a plain :class:`Usage`.

    A backend may count from a worker thread (``local``: llama.cpp's logits processor
    runs in the thread that decodes); ``notify``, which reads the event loop's clock and
    moves cancel scopes' deadlines, then runs in the event loop's thread (a hop per
    count, small beside a decoded token), as it could not run in the worker's."""

    __slots__ = ("_inner", "_notify", "_thread")
    _inner: Usage | None
    _notify: Callable[[], None] | None
    _thread: int

    def __init__(self, inner: Usage | None, notify: Callable[[], None] | None) -> None:
        object.__setattr__(self, "_inner", None)
        object.__setattr__(self, "_notify", notify)
        object.__setattr__(self, "_thread", threading.get_ident())
        super().__init__()
        object.__setattr__(self, "_inner", inner)

    def __setattr__(self, name: str, value: Any) -> None:
        before = getattr(self, name, 0)
        object.__setattr__(self, name, value)
        if name in ("prompt_tokens", "completion_tokens") and value != before:
            if self._inner is not None:
                setattr(self._inner, name, getattr(self._inner, name) + value - before)
            if self._notify is None:
                return
            if threading.get_ident() == self._thread:
                self._notify()
                return
            try:
                anyio.from_thread.run_sync(self._notify)
            except RuntimeError:
                pass  # not an AnyIO worker thread, or the loop is gone: progress unseen

    def __reduce__(self) -> tuple[Any, ...]:
        return (Usage, (self.prompt_tokens, self.completion_tokens))

    def touch(self) -> None:
        """Progress without a token: a pool that is a member of another moved the call
        to another of its engines (it is at work, not hung)."""
        if self._notify is not None:
            self._notify()


@dataclass(eq=False, slots=True)
class _Attempt:
    """The stall watch of one call on one member. It is armed from the call's start where
    the member's progress is known to show from there (:meth:`_PoolCore.from_start`), else
    from the call's first progress (a token counted, a chunk): until then the pool cannot
    tell a hung engine from a server that does not stream and is still writing its
    answer. ``scope`` is the scope of the wait for the member now, if any."""

    member: Member
    armed: bool
    scope: anyio.CancelScope | None = None

    def deadline(self) -> float:
        stall_s = self.member.stall_s
        if stall_s is None:
            return math.inf
        return anyio.current_time() + stall_s * STALL_OVERRUN  # see _PoolCore.progressed

    def arm(self) -> None:
        if self.armed:
            return
        self.armed = True
        if self.scope is not None and self.scope.deadline == math.inf:
            self.scope.deadline = self.deadline()


class _Stall(StepTimeout):
    """A call's engine made no progress for its ``stall_timeout_s``."""


class _CannotStart(Exception):
    """A member that cannot start on this machine: its backend's package is not
    installed, or the machine lacks what the backend needs (a CUDA GPU for ``vllm``).
    The pool goes on without it while another member can start.

    :param reason: why, beginning with ``not installed:`` or ``cannot run here:``.
    """

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def cuda_problem(gpu: object = None) -> str | None:
    """Why this machine cannot run an engine on a CUDA GPU (``gpu``: the index one
    needs), as PyTorch sees it; None when it can."""
    try:
        import torch
    except ImportError as exc:
        return f"PyTorch is not installed ({exc})"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible (torch.cuda.is_available() is False)"
    count = int(torch.cuda.device_count())
    if isinstance(gpu, int) and not isinstance(gpu, bool) and gpu >= count:
        return f"gpu {gpu} does not exist ({count} visible)"
    return None


#: what a member's backend needs of the machine, by backend name: ModelConfig -> why it
#: cannot run here (None: it can)
HOST_REQUIREMENTS: dict[str, Callable[[ModelConfig], str | None]] = {
    "vllm": lambda cfg: cuda_problem(cfg.options.get("gpu")),
}


def _missing_package(exc: BaseException) -> bool:
    """Whether a ConfigError comes from a failed import (its context chain holds an
    ImportError, also when it was raised ``from None``)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ImportError):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


@dataclass(slots=True)
class MemberStats:
    """What one engine of a pool did.

    :param affinity: calls routed to it by prefix affinity.
    :param ejections: times it was taken out.
    :param busy: calls it turned away as busy (HTTP 429 or 503), not counted in ``failed``.
    :param stalls: calls it held without progress for its ``stall_timeout_s``.
    """

    calls: int = 0
    completed: int = 0
    failed: int = 0
    affinity: int = 0
    ejections: int = 0
    max_in_flight: int = 0
    busy: int = 0
    stalls: int = 0


@dataclass(eq=False, slots=True)
class _Waiter:
    call: Call
    event: anyio.Event = field(default_factory=anyio.Event)
    granted: bool = False
    moved: bool = False


@dataclass(eq=False)
class Member:
    """One engine of a pool: its backend, limit, queue and health."""

    name: str
    backend: LLMBackend
    limit: int
    in_flight: int = 0
    waiters: list[_Waiter] = field(default_factory=list)
    failures: int = 0
    down_since: float | None = None
    #: set while one call probes it (see _PoolCore.usable)
    probed: anyio.Event | None = None
    last_error: str = ""
    stats: MemberStats = field(default_factory=MemberStats)
    #: seconds without progress after which its calls are stalled (None: never)
    stall_s: float | None = None
    #: whether its calls run through its stream, where alone its progress shows
    via_stream: bool = False
    #: whether the progress of its calls shows before their answer
    observed: bool = True
    #: whether its progress is known to show from the start of a call, so that a call is
    #: watched from its start, not only from its first progress: not so for a member seen
    #: through its stream until one of its answers came streamed (with a time to first
    #: token), since a server that does not stream shows nothing before its answer
    proven: bool = True
    #: until when it is left alone after a busy answer, how many in a row it gave, and
    #: when the first of them came (None: none since its last answer)
    busy_until: float = -math.inf
    busy_streak: int = 0
    busy_since: float | None = None
    #: the deadlines of its calls in flight, pushed on by its progress
    watched: set[anyio.CancelScope] = field(default_factory=set)
    pushed_at: float = -math.inf
    #: set while a stall of one of its calls is being looked into
    suspect: bool = False
    #: back from a probe, it has not answered a call yet: it takes one at a time (a hung
    #: engine whose health check still answers would else hold its share of the calls,
    #: each for the stall limit, every time it is let back in)
    trial: bool = False

    @property
    def cap(self) -> int:
        """How many calls it may have in flight now: one while on ``trial``."""
        return 1 if self.trial else self.limit

    @property
    def load(self) -> float:
        return (self.in_flight + len(self.waiters)) / self.cap


def default_resolve(name: str, registry: Registry | None = None) -> BackendFactory:
    """The factory of a backend name: one registered on ``registry`` (the SDK's
    ``register_backend``), else this package's own, else the installed entry points (as
    ``registry`` serves them: a pool's members found in it too).

    :param registry: the registry of the run or workflow the pool is built for (None: a
        fresh one, of the installed backends only).
    :raises ConfigError: for a backend that is unknown or not installed.
    """
    if registry is not None and name in registry.backends:
        return registry.backend_factory(name)
    target = BUILTIN_BACKENDS.get(name)
    if target is None:
        from orchestrator.runtime.registry import Registry

        return (registry or Registry()).backend_factory(name)
    module, _, attr = target.partition(":")
    factory: BackendFactory = getattr(importlib.import_module(module), attr)
    return registry.bound_factory(factory) if registry is not None else factory


#: in a call's ``tried``: it has probed an engine before its time (no member has this name)
_PROBED_EARLY = "\x00probed early"


class _PoolCore:
    """The shared state of a pool: members, queues, affinity, service ledger."""

    def __init__(self, name: str, options: PoolOptions, members: list[Member]) -> None:
        self.name = name
        self.options = options
        self.members = members
        self.settings = PolicySettings(options.policy, options.quantum_tokens, options.levels,
                                       options.starvation_s, options.prompt_weight,
                                       options.starvation_ratio, options.starvation_floor_s,
                                       options.starving_order)
        self.ledger = ServiceLedger()
        self.affinity: OrderedDict[str, Member] = OrderedDict()
        self.seq = itertools.count()
        self.retries = 0
        #: members left out because they cannot start on this machine: name -> why
        self.skipped: dict[str, str] = {}

    # -- routing --------------------------------------------------------------------------
    async def route(self, request: LLMRequest, tried: set[str],
                    busy_deadline: float = math.inf, nested: bool = False,
                    arrived: float = math.inf) -> tuple[Member, bool]:
        """Pick an engine for a call; returns it and whether prefix affinity chose it.
        Engines that answered busy are left alone until their back-off ends; when only
        such engines are left, the call waits for the first of them, up to
        ``busy_deadline`` (``nested``: the pool is a member of another, which waits).
        When every engine not tried is out, one taken out before the call ``arrived``
        is probed at once (see the module docstring).

        :raises BackendUnavailable: when no untried engine is up.
        :raises PoolBusy: when every one that is up is busy past ``busy_deadline``.
        """
        while True:
            now = anyio.current_time()
            up = [m for m in self.members
                  if m.name not in tried and await self.usable(m, now)]
            now = anyio.current_time()
            candidates = [m for m in up if m.busy_until <= now]
            if candidates:
                break
            if up:  # every engine that is up asked for time: wait for the first one
                await self._wait_for_busy(up, tried, now, busy_deadline, nested)
                continue
            # nothing is up, but an engine is being probed: its answer may bring it back
            probing = [m.probed for m in self.members
                       if m.name not in tried and m.probed is not None]
            if probing:
                await probing[0].wait()
                continue
            # every engine not tried yet is out, none due for its probe: rather than fail
            # the call unasked (a step's retries were all spent so on one failure of a
            # pool's only engine), the one out longest is probed now, once per call, and
            # counts as tried; one taken out meanwhile (say for answering busy) is not
            # asked again
            out = [m for m in self.members if m.name not in tried
                   and m.down_since is not None and m.down_since <= arrived]
            if out and _PROBED_EARLY not in tried:
                first = min(out, key=lambda m: m.down_since or 0.0)
                tried.update((first.name, _PROBED_EARLY))
                if await self.usable(first, now, early=True):
                    candidates = [first]
                    break
            raise BackendUnavailable(self._unavailable_message(tried))
        least = min(candidates, key=lambda m: m.load)
        key = self._prefix(request) if self.options.routing == "prefix_affinity" else None
        if key is None:
            return least, False
        sticky = self.affinity.get(key)
        if (sticky is not None and sticky in candidates and not sticky.trial
                and sticky.load <= least.load + self.options.affinity_slack):
            self.affinity.move_to_end(key)
            return sticky, True
        self.affinity[key] = least
        while len(self.affinity) > 100_000:
            self.affinity.popitem(last=False)
        return least, False

    async def _wait_for_busy(self, up: list[Member], tried: set[str], now: float,
                             busy_deadline: float, nested: bool) -> None:
        """Every engine that is up is busy: wait until the first engine not yet tried may
        take the call (a busy one's back-off ends, one taken out is due for its probe, one
        being probed passes it), up to ``busy_deadline``.

        :raises PoolBusy: when that is past ``busy_deadline``, with the earliest moment any
            of its engines (tried ones too: the retry is a new call) could take a call.
        """
        down = [m for m in self.members if m.name not in tried and m.down_since is not None]
        probing = [m.probed for m in down if m.probed is not None]
        ready = min(self.free_at(m, now) for m in up + [m for m in down if m.probed is None])
        if ready > busy_deadline and (not probing or now >= busy_deadline):
            soonest = min(self.free_at(m, now) for m in self.members)
            raise PoolBusy(self._unavailable_message(tried, busy=True, nested=nested),
                           retry_after_s=max(0.0, soonest - anyio.current_time()))
        if not probing:
            await anyio.sleep_until(ready)
            return
        with anyio.move_on_after(min(ready, busy_deadline) - now):
            await probing[0].wait()

    def free_at(self, member: Member, now: float) -> float:
        """The earliest moment the member could take a call: now when it is up and not
        busy, when its busy back-off ends, and, taken out, when it is due for a probe
        (now while one runs: it may pass at any moment)."""
        free = max(member.busy_until, now)
        if member.down_since is not None and member.probed is None:
            free = max(free, member.down_since + self.options.probe_after_s)
        return free

    async def usable(self, member: Member, now: float, early: bool = False) -> bool:
        """Whether the member may take a call: it is up, or it was taken out, is due for
        a probe (``early``: whether due or not) and passes it (half-open: its next
        failure takes it out again)."""
        if member.down_since is None:
            return True
        if member.probed is not None or (
                not early and now - member.down_since < self.options.probe_after_s):
            return False
        # one call probes it; those arriving meanwhile go to the other engines instead of
        # all waiting up to health_timeout_s for an engine that may be hung (or, when no
        # other engine is up, wait for this probe: see route)
        probed = member.probed = anyio.Event()
        try:
            ok = await self.probe(member)
        finally:
            member.probed = None
            probed.set()
        if ok is False:
            member.down_since = anyio.current_time()
            return False
        # half-open: the next failure takes it out again, and until it answers a call it
        # takes one at a time
        member.down_since = None
        member.failures = self.options.eject_after - 1
        member.trial = True
        return True

    def _prefix(self, request: LLMRequest) -> str | None:
        if request.prefix_key:
            return "k:" + request.prefix_key
        text = "".join(m.get("content", "") for m in request.messages)
        if len(text) < self.options.prefix_chars:
            return None
        head = text[: self.options.prefix_chars].encode()
        run = run_of(request.run_id, request.request_id)
        return f"h:{run}:" + hashlib.blake2b(head, digest_size=12).hexdigest()

    def _unavailable_message(self, tried: set[str], busy: bool = False,
                             nested: bool = False) -> str:
        now = anyio.current_time()
        states = []
        for m in self.members:
            state = ("tried" if m.name in tried else "down" if m.down_since is not None
                     else f"busy for {m.busy_until - now:.3g}s more" if m.busy_until > now
                     else "up")
            states.append(f"{m.name} ({state}{': ' + m.last_error if m.last_error else ''})")
        states.extend(f"{name} ({why})" for name, why in self.skipped.items())
        why = ("no engine can take the call" if not busy
               else "every engine is busy (a member of another pool, it does not wait)"
               if nested else f"every engine is busy for longer than the call may wait "
               f"({self.options.busy_wait_s:g}s, busy_wait_s)")
        return f"pool {self.name!r}: {why}; engines: " + ", ".join(states)

    # -- slots ----------------------------------------------------------------------------
    @asynccontextmanager
    async def slot(self, member: Member, call: Call) -> Any:
        """Hold one of the member's slots; waiting calls are let in by the policy.

        :raises _Moved: when the member is taken out, or answers busy, while the call
            waits.
        """
        if member.in_flight < member.cap and not member.waiters:
            member.in_flight += 1
        else:
            waiter = _Waiter(call)
            member.waiters.append(waiter)
            self.ledger.queued(call, anyio.current_time())
            try:
                await waiter.event.wait()
            except BaseException:
                if waiter.granted:
                    self._release(member)
                elif waiter in member.waiters:
                    member.waiters.remove(waiter)
                raise
            finally:
                self.ledger.dequeued(call, anyio.current_time())
            if waiter.moved:
                raise _Moved
            if member.busy_until > anyio.current_time() or member.down_since is not None:
                # the slot freed by a call it turned away as busy, or that took it out:
                # the member asked for time, or is out
                self._release(member)
                raise _Moved
        member.stats.max_in_flight = max(member.stats.max_in_flight, member.in_flight)
        try:
            yield
        finally:
            self._release(member)

    def _release(self, member: Member) -> None:
        member.in_flight -= 1
        self._let_in(member)

    def _let_in(self, member: Member) -> None:
        """Give the member's free slots to the calls waiting for them, in the policy's
        order."""
        while member.waiters and member.in_flight < member.cap:
            now = anyio.current_time()
            best = min(member.waiters, key=lambda w: sort_key(w.call, self.settings,
                                                               self.ledger, now))
            member.waiters.remove(best)
            best.granted = True
            member.in_flight += 1
            best.event.set()

    # -- health ---------------------------------------------------------------------------
    async def probe(self, member: Member) -> bool | None:
        """The member's ``health()`` within ``health_timeout_s`` (a hung check is a
        failed one, recorded in ``last_error``); None when it has no ``health()``."""
        health = getattr(member.backend, "health", None)
        if health is None:
            return None
        timeout = self.options.health_timeout_s
        ok = False
        with anyio.move_on_after(timeout):
            try:
                ok = bool(await health())
            except Exception as exc:
                member.last_error = f"health check failed: {type(exc).__name__}: {exc}"[:300]
                return False
            if not ok:
                member.last_error = "failed its health check"
            return ok
        member.last_error = f"health check did not answer within {timeout:g}s"
        return False

    def failed(self, member: Member, exc: BaseException) -> None:
        """A call of the member failed (not busy): one more failure in a row, which may
        take it out (``eject_after``). It ends the member's busy streak: a member whose
        answers are busy, a 500, busy has not answered *only* busy (``busy_eject_after_s``),
        and its busy back-off starts over."""
        member.stats.failed += 1
        member.busy_streak = 0
        member.busy_since = None
        member.last_error = f"{type(exc).__name__}: {exc}"[:300]
        member.failures += 1
        if member.failures >= self.options.eject_after and member.down_since is None:
            self.eject(member)

    def busy(self, member: Member, exc: BackendHTTPError | PoolBusy) -> None:
        """The member turned a call away as busy: it stays in, but gets no call until its
        ``Retry-After`` (at most ``busy_wait_s``) or else a back-off that doubles with
        each busy answer in a row (``busy_backoff_s`` up to ``busy_backoff_max_s``). A
        ``Retry-After`` that asks for no wait (0, a date past; a negative or NaN number
        relayed by a ``ray-engine``) counts as none: taken at its word, every call would
        ask the member again at once, for ever (``route`` never waits for it).

        A member that has answered nothing but busy for ``busy_eject_after_s`` (a proxy
        whose upstream is gone answers 503 for ever), :data:`_BUSY_EJECT_STREAK` times at
        least, is taken out as one that fails its health check is, and tried again after
        ``probe_after_s``; its streak goes on until it answers or fails a call (see
        :meth:`failed`), so that a busy answer after the probe takes it out again.

        The calls waiting at the pool for one of its slots move to routing, as they do
        from a member taken out: they go to another engine or wait out its back-off."""
        member.stats.busy += 1
        member.busy_streak += 1
        member.last_error = f"busy: {type(exc).__name__}: {exc}"[:300]
        options = self.options
        now = anyio.current_time()
        if member.busy_since is None:
            member.busy_since = now
        limit = options.busy_eject_after_s
        if (limit is not None and now - member.busy_since >= limit
                and member.busy_streak >= _BUSY_EJECT_STREAK):
            member.last_error = (f"answered only busy for {now - member.busy_since:.3g}s "
                                 f"(busy_eject_after_s {limit:g}), last: "
                                 f"{type(exc).__name__}: {exc}")[:300]
            if member.down_since is None:
                self.eject(member)
            return
        wait = exc.retry_after_s
        if wait is None or not wait > 0:  # (NaN too)
            wait = min(options.busy_backoff_s * 2 ** min(member.busy_streak - 1, 30),
                       options.busy_backoff_max_s)
        wait = min(wait, options.busy_wait_s)
        member.busy_until = max(member.busy_until, now + wait)
        # the calls waiting for one of its slots would be sent to it as the slots free
        self._move_waiters(member)

    def from_start(self, member: Member) -> bool:
        """Whether a call of the member is watched from its start (see :class:`_Attempt`):
        its progress is known to show from there, and so is that of every engine behind it
        (a ``progress_from_start`` attribute: a pool member's members)."""
        behind = getattr(member.backend, "progress_from_start", True)
        return member.proven and behind is not False

    def progress(self, member: Member, attempt: _Attempt) -> None:
        """A call of the member made progress: it is watched from now on (see
        :class:`_Attempt`), and the member's calls are pushed on (see :meth:`progressed`)."""
        attempt.arm()
        self.progressed(member)

    def progressed(self, member: Member) -> None:
        """The member did something (a token, a chunk, a call finished): push the stall
        deadlines of its calls in flight on. At most once per eighth of its ``stall_s``
        (a busy engine counts tokens for every call many times a second), each time to
        that much past ``stall_s`` from now: a call is never stopped before ``stall_s``
        without progress, and at most an eighth later."""
        if member.stall_s is None:
            return
        now = anyio.current_time()
        slack = member.stall_s / 8
        if now - member.pushed_at < slack:
            return
        member.pushed_at = now
        deadline = now + member.stall_s + slack
        for scope in member.watched:
            scope.deadline = max(scope.deadline, deadline)

    @contextmanager
    def watch(self, member: Member, attempt: _Attempt) -> Iterator[anyio.CancelScope]:
        """A scope around waiting for the member, cancelled when the member makes no
        progress for its ``stall_s`` once ``attempt`` is armed (the caller checks
        ``cancelled_caught``)."""
        deadline = attempt.deadline() if attempt.armed else math.inf
        with anyio.CancelScope(deadline=deadline) as scope:
            member.watched.add(scope)
            attempt.scope = scope
            try:
                yield scope
            finally:
                attempt.scope = None
                member.watched.discard(scope)

    async def stalled(self, member: Member, exc: StepTimeout) -> None:
        """A call of the member made no progress for its ``stall_s``: it counts as a
        failure, and the member's ``health()`` is asked at once; one that fails it is taken
        out whatever ``eject_after`` says. A member taken out has its other calls in flight
        moved too."""
        member.stats.stalls += 1
        if member.down_since is not None or member.suspect:
            member.stats.failed += 1  # one of its other calls: being looked into already
            return
        member.suspect = True
        try:
            ok = await self.probe(member)
        finally:
            member.suspect = False
        probe_error = member.last_error if ok is False else ""
        self.failed(member, exc)
        if ok is False:
            member.last_error = f"{member.last_error}; {probe_error}"[:300]
            if member.down_since is None:
                self.eject(member)
        if member.down_since is not None:
            for scope in list(member.watched):
                scope.cancel()

    def eject(self, member: Member) -> None:
        """Take a member out now; its waiting calls move to other engines."""
        member.down_since = anyio.current_time()
        member.stats.ejections += 1
        self._move_waiters(member)
        for key in [k for k, m in self.affinity.items() if m is member]:
            del self.affinity[key]

    @staticmethod
    def _move_waiters(member: Member) -> None:
        """Send the calls waiting for one of the member's slots back to routing."""
        for waiter in member.waiters:
            waiter.moved = True
            waiter.event.set()
        member.waiters.clear()

    def succeeded(self, member: Member, call: Call, response: LLMResponse) -> None:
        if response.ttft_s is not None:
            member.proven = True  # its answers stream: a silent start is a hung one
        member.failures = 0
        if member.trial:  # it answers again: it takes its share of the calls
            member.trial = False
            self._let_in(member)
        member.busy_streak = 0
        member.busy_since = None
        member.last_error = ""
        member.stats.completed += 1
        self.ledger.served(call, response.prompt_tokens, response.completion_tokens,
                           response.latency_s, self.settings.prompt_weight)

    async def aclose(self) -> None:
        """:raises Exception: the first error of a member's close, once all have run."""
        await close_all(member.backend.aclose for member in self.members)


def is_busy(exc: BaseException) -> bool:
    """Whether an engine turned the call away because it is full (HTTP 429 or 503, or a
    pool member all of whose engines are: :class:`PoolBusy`): it is up, and the call may
    be retried on it later."""
    return isinstance(exc, PoolBusy) or (isinstance(exc, BackendHTTPError)
                                         and exc.status in _BUSY_STATUSES)


def is_engine_fault(exc: BaseException) -> bool:
    """Whether another engine might succeed where this one failed: the engine is down,
    busy or broken, or it refused the call for what the member's config says (its address,
    credentials or model name: HTTP 401, 403, 404, 405) rather than for the call itself."""
    if isinstance(exc, BackendHTTPError):
        return exc.status in _ENGINE_STATUSES or exc.status >= 500
    if isinstance(exc, BackendUnavailable | StepTimeout | BackendError):
        return True
    if isinstance(exc, PonderError) or is_request_error(exc):
        return False  # the call's own fault (configuration, schema...)
    return isinstance(exc, Exception)


class PoolBackend:
    """An LLM backend that spreads calls over several engines (see the module docstring).

    Options (``ModelConfig.options``):

    ================== =============== ==================================================
    option             default         meaning
    ================== =============== ==================================================
    members            (required)      engines: ModelConfig mappings, each with optional
                                       ``name`` and ``replicas`` (copies of it)
    policy             program_aware   ``fifo`` | ``critical_path`` | ``program_aware``
    routing            prefix_affinity ``prefix_affinity`` | ``least_loaded``
    prefix_chars       1024            prompt characters hashed when no ``prefix_key``
    affinity_slack     1.0             loads by which affinity may exceed the least load
    max_attempts       3               engines tried per call
    eject_after        1               consecutive engine failures before it is taken out
    probe_after_s      30              seconds before an ejected engine is tried again
                                       (one call at a time until it answers one)
    health_timeout_s   10              seconds an engine's ``health()`` may take; one
                                       that does not answer counts as failed
    busy_backoff_s     1               first wait after a busy answer (429, 503) without
                                       ``Retry-After``; doubles with each one in a row
    busy_backoff_max_s 30              the longest such wait
    busy_wait_s        120             how long a call waits for busy engines before it
                                       fails (``BackendUnavailable``); also caps a
                                       ``Retry-After``
    busy_eject_after_s 300             seconds of nothing but busy answers after which
                                       an engine is taken out (as if it failed its
                                       health check; ``null``: never)
    stall_timeout_s    300             seconds without progress after which a member's
                                       calls move elsewhere (a member may set its own;
                                       ``null``: never); only for members whose
                                       progress shows before their answer, and
                                       not for a member that is a pool (see the
                                       module docstring)
    quantum_tokens     2048            ``program_aware``: service of level 0
    levels             8               ``program_aware``: number of levels
    starvation_s       60              ``program_aware``: a call's wait that jumps every level
    starvation_ratio   4               ``program_aware``: a run whose calls waited this many
                                       times their engine time jumps every level
    starvation_floor_s 5               ``program_aware``: engine seconds the ratio assumes
                                       at least (a new run does not starve at once)
    starving_order     run             ``program_aware``: starving calls oldest run first
                                       (``run``) or by the call's arrival (``arrival``)
    prompt_weight      0.1             ``program_aware``: service of one prompt token
    shared             true            runs of this process with the same config share
                                       one pool (its engines, queues and ledger)
    ================== =============== ==================================================

    A member may also set ``stall_timeout_s`` of its own. A member's ``concurrency`` is
    its limit of calls in flight (default: its backend's
    ``default_concurrency``, capped at 64). Every response records ``pool``,
    ``engine``, ``policy``, ``priority``, ``service_level``, ``queue_s``,
    ``attempts`` and ``prefix_routed`` in its meta.

    A run is refused before it starts when a member lacks what its backend needs in the
    environment (:meth:`config_problems`: an ``openai`` member with no model name, or no
    server and no key), each member's problems named.
    """

    options_model = PoolOptions  # what `ponder validate` checks the model's options against
    #: where members' backends are found, checked and built (see :meth:`with_registry`);
    #: None: a fresh registry, of the installed backends only
    _registry: ClassVar[Registry | None] = None

    @classmethod
    def with_registry(cls, registry: Registry) -> type[PoolBackend]:
        """This backend with its members' backends found in ``registry``: a run's or a
        workflow's, which asks this (:meth:`Registry.bound_factory`) before it serves the
        pool, so that a member whose backend is registered there only (the SDK's
        ``register_backend``) is built, and its options and config checked, like an
        installed one.

        :returns: a subclass bound to ``registry`` (a member that is a pool is bound too).
        """
        bound = type(cls.__name__, (cls,), {"_registry": registry, "__module__": cls.__module__,
                                            "__qualname__": cls.__qualname__})
        return cast("type[PoolBackend]", bound)

    @classmethod
    def option_problems(cls, options: dict[str, Any]) -> list[OptionProblem]:
        """Every problem of a pool's ``options:`` that the spec shows, each at its path in
        them (``ponder validate`` reports them at their lines): the options themselves,
        then each member's ``replicas``, fields, backend and options, and member names
        used twice. A member whose backend's package is not installed here is not checked
        further (a run leaves it out). What needs the machine or the engines (a GPU, two
        members reaching one engine) is left to the run. Members' backends are found as
        the run finds them (see :meth:`with_registry`).
        """
        problems = option_problems(PoolOptions, options, "pool backend")
        members = options.get("members")
        if (not isinstance(members, list) or not all(isinstance(m, dict) for m in members)
                or any(where[:1] == ("members",) for where, _ in problems)):
            return problems  # the members themselves cannot be read
        registry = registry_or_default(cls._registry)
        names: list[str] = []
        named_at: list[tuple[str | int, ...]] = []  # where each name is given
        for index, raw in enumerate(members):
            at: tuple[str | int, ...] = ("members", index)
            data = dict(raw)
            name = data.pop("name", None)
            replicas = data.pop("replicas", 1)
            bad_replicas = _replicas_problem(replicas)
            if bad_replicas is not None:
                problems.append(((*at, "replicas"),
                                 f"pool backend options: member {index}: {bad_replicas}"))
                continue
            bad_stall = _stall_problem(data.pop("stall_timeout_s", None))
            if bad_stall is not None:
                problems.append(((*at, "stall_timeout_s"),
                                 f"pool backend options: member {index}: {bad_stall}"))
            cfg, own, of_options = engine_config_problems(data, registry)
            problems += [((*at, *where), f"pool backend options: member {index}: {message}")
                         for where, message in own]
            if cfg is None:
                continue
            base = name or f"{cfg.backend}-{index}"
            names += _member_names(base, replicas)
            named_at += [(*at, "name") if name is not None else at] * replicas
            problems += [((*at, *where), f"pool backend options: member {base!r}: {message}")
                         for where, message in of_options]
        duplicate = _unique_names_problem(names)
        if duplicate is not None:
            again = next(i for i, n in enumerate(names) if n in names[:i])
            problems.append((named_at[again], f"pool backend options: {duplicate}"))
        if not problems:
            problems += _nested_stall_problems(members, registry)
        return problems

    @classmethod
    def config_problems(cls, config: ModelConfig, env: Mapping[str, str]
                        ) -> list[ConfigProblem]:
        """What the pool's members lack in the environment ``env`` (each member's backend's
        ``config_problems``, asked through the registry; a member that is a pool asks its
        own), each named with its member: an ``openai`` member with no model name, or no
        server and no key. A run is refused before it starts when any member has one, as
        a run would fail its first call to the pool, whose other members are fine: only
        what cannot start on this machine (a package, a GPU) is left out at run time.
        Options or members that cannot be read are left to validation and to the run."""
        try:
            options = PoolOptions.model_validate(config.options)
        except ValidationError:
            return []
        registry = registry_or_default(cls._registry)
        problems: list[ConfigProblem] = []
        for index, raw in enumerate(options.members):
            data = dict(raw)
            name = data.pop("name", None)
            for key in ("replicas", "stall_timeout_s"):
                data.pop(key, None)
            try:
                cfg = ModelConfig.model_validate(data)
            except ValidationError:
                continue
            member = name or f"{cfg.backend}-{index}"
            problems += [p._replace(problem=f"pool member {shown(member)}: {p.problem}")
                         for p in registry.backend_config_problems(cfg, env)]
        return problems

    default_concurrency = 4096

    def __init__(self, config: ModelConfig, *,
                 resolve: Callable[[str], BackendFactory] | None = None,
                 shared: SharedObjects | None = None) -> None:
        """A member that cannot start on this machine is left out, with a warning and in
        :attr:`skipped`, while another member can start: its backend's package is not
        installed (an import fails), or the machine lacks what the backend needs
        (:data:`HOST_REQUIREMENTS`: a ``vllm`` member without a visible CUDA GPU, or
        whose ``gpu`` index does not exist).

        :param resolve: backend name -> factory (default: :func:`default_resolve`, in the
            registry this class is bound to by :meth:`with_registry`, if any).
        :param shared: where shared pools live (default: the process's).
        :raises ConfigError: for a bad option or member, or when no member can start here
            (the message gives each one's reason).
        """
        self.config = config
        self.options = parse_options(self.options_model, config.options, "pool")
        self.name = config.model or "pool"
        registry = self._registry
        self._resolve = resolve or (default_resolve if registry is None
                                    else lambda name: default_resolve(name, registry))
        self._shared = shared if shared is not None else SHARED
        self._key: str | None = None
        if self.options.shared:
            self._key = "pool:" + config.model_dump_json() + self._registered_members()
            self._core = self._shared.acquire(self._key, self._build, _PoolCore.aclose)
        else:
            self._core = self._build()
        self._closed = False
        #: set when this pool is a member of another: a call that finds every engine
        #: busy then fails at once with :class:`PoolBusy` (the outer pool waits for the
        #: soonest, or sends the call to its other members) instead of waiting here
        self.nested = False

    def _registered_members(self) -> str:
        """What the key of a shared pool adds for members (of nested pools too) whose
        backend the registry this class is bound to serves other than the installed one
        (the SDK's ``register_backend``): each such name with its factory, so that two
        workflows serving one name with different backends do not share one pool of the
        same config; empty when there is none."""
        registry = self._registry
        if registry is None:
            return ""
        own = []
        for name in sorted(_member_backends(self.options.members)):
            factory = registry.backends.get(name)
            if factory is None:
                continue
            try:
                installed: BackendFactory | None = default_resolve(name)
            except (ConfigError, ImportError):
                installed = None
            if factory is not installed:
                own.append(f"{name}={id(factory):x}")
        return " registered:" + ",".join(own) if own else ""

    @property
    def members(self) -> list[Member]:
        """The engines, in configuration order."""
        return self._core.members

    @property
    def policy(self) -> PolicyName:
        return self.options.policy

    @property
    def retries(self) -> int:
        """Calls retried on another engine so far."""
        return self._core.retries

    def stats(self) -> dict[str, MemberStats]:
        """Per-engine counters, by member name."""
        return {m.name: m.stats for m in self._core.members}

    @property
    def skipped(self) -> dict[str, str]:
        """Members left out because they cannot start on this machine: name -> the reason,
        ``not installed: ...`` or ``cannot run here: ...`` (also logged as a warning when
        the pool is built)."""
        return dict(self._core.skipped)

    async def health(self) -> bool:
        """True while at least one engine is up, or, taken out, is due for a probe (see
        ``probe_after_s``) and passes it, which brings it back. A pool that is a member of
        another is asked this when it is probed: its engines come back only when it is
        asked, and it would not be asked again."""
        core = self._core
        if any(m.down_since is None for m in core.members):
            return True
        now = anyio.current_time()
        for member in core.members:
            if await core.usable(member, now):
                return True
        return False

    async def check_health(self) -> dict[str, bool]:
        """Ask every member with a ``health()`` method, all at once, each within
        ``health_timeout_s``; take out those that fail it or do not answer. Members left
        out as unable to start here are reported False."""
        result: dict[str, bool] = {}

        async def check(member: Member) -> None:
            ok = await self._core.probe(member)
            if ok is None:
                result[member.name] = member.down_since is None
                return
            if not ok and member.down_since is None:
                self._core.eject(member)
            result[member.name] = ok

        async with anyio.create_task_group() as tg:
            for member in self._core.members:
                tg.start_soon(check, member)
        return {**{m.name: result[m.name] for m in self._core.members},
                **{name: False for name in self._core.skipped}}

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Run one call on an engine of the pool, retrying elsewhere on engine faults.

        :raises BackendUnavailable: when no engine could serve it (retryable).
        :raises BackendError: (or a subclass) for an error of the call itself.
        """
        call = self._call(request)
        try:
            return await self._complete(request, call)
        finally:
            self._core.ledger.leave(call)

    async def _complete(self, request: LLMRequest, call: Call) -> LLMResponse:
        core = self._core
        tried: set[str] = set()
        attempts = 0
        moves: list[_Miss] = []  # every attempt that did not answer, busy ones too
        arrived = anyio.current_time()
        busy_deadline = arrived + self._busy_wait_s
        spent = Usage()  # by the attempts that failed
        while True:
            member, by_prefix = await core.route(request, tried, busy_deadline, self.nested,
                                                 arrived)
            started = anyio.current_time()
            sent: LLMRequest | None = None
            probe = False  # the call is the first back on an engine taken out
            try:
                async with core.slot(member, call):
                    probe = member.trial
                    member.stats.calls += 1
                    member.stats.affinity += by_prefix
                    attempts += 1
                    waited = anyio.current_time() - started
                    attempt = _Attempt(member, core.from_start(member))
                    sent = self._for_engine(request, call, member, attempt)
                    sent_level = self._level(call)
                    with core.watch(member, attempt) as scope:
                        try:
                            response = await self._answer(member, sent, attempt)
                        except Exception:
                            core.progressed(member)  # an error is an answer: it is alive
                            raise
                    if scope.cancelled_caught:
                        raise self._stall(member)
                    core.progressed(member)
            except _Moved:
                continue
            except Exception as exc:
                if not is_engine_fault(exc):
                    if is_request_error(exc):
                        raise self._rejected(member, exc) from exc
                    raise
                _add_spent(spent, sent)
                await self._move_on(request, _Miss(member.name, exc, probe), member, tried,
                                    moves)
                continue
            core.succeeded(member, call, response)
            return self._annotate(_with_spent(response, spent), member, sent.priority,
                                  sent_level, waited, attempts, by_prefix, moves)

    async def _answer(self, member: Member, request: LLMRequest, attempt: _Attempt
                      ) -> LLMResponse:
        """The member's answer: from its ``complete()``, or, for a member whose progress
        shows only in its stream, the final chunk of its stream, each chunk being
        progress (closing the stream, as a stall does, stops the engine's work)."""
        if not member.via_stream:
            return await member.backend.complete(request)
        async with aclosing(member.backend.stream(request)) as chunks:  # type: ignore[type-var]
            async for chunk in chunks:
                self._core.progress(member, attempt)
                if chunk.final is not None:
                    return chunk.final
        raise BackendError(f"pool {self.name!r}: engine {member.name!r}: the stream ended "
                           "without a final chunk")

    async def _move_on(self, request: LLMRequest, miss: _Miss, member: Member,
                       tried: set[str], moves: list[_Miss]) -> None:
        """An attempt of the call did not answer (an engine fault, or a busy answer):
        record it in ``moves`` and in the engine's state; the call goes on to be routed
        again.

        :raises BackendUnavailable: when the call has failed on ``max_attempts`` engines:
            busy answers, which are no failures, are not counted, nor is a failure of an
            engine the call was the probe of (the engine's, found by probing it; the call
            would have gone to another engine, and goes there now).
        """
        moves.append(miss)
        if await self._engine_failed(member, miss.error, tried):
            faults = [m for m in moves if m.counted]
            if len(faults) >= self.options.max_attempts:
                raise self._gave_up(faults) from miss.error
        self._core.retries += 1
        _moved_on(request)

    async def _engine_failed(self, member: Member, exc: Exception, tried: set[str]) -> bool:
        """Record an engine's fault: False for a busy answer (the engine stays, and may
        take the call again after its back-off), True for a failure (the engine is not
        tried again for this call)."""
        core = self._core
        if isinstance(exc, BackendHTTPError | PoolBusy) and is_busy(exc):
            core.busy(member, exc)
            return False
        if isinstance(exc, _Stall):
            await core.stalled(member, exc)
        else:
            core.failed(member, exc)
        tried.add(member.name)
        return True

    def _stall(self, member: Member) -> _Stall:
        return _Stall(f"pool {self.name!r}: engine {member.name!r} made no progress (no "
                      f"token, chunk or answer) for {member.stall_s:g}s (stall_timeout_s): "
                      "it is hung or overloaded")

    async def stream(self, request: LLMRequest) -> AsyncGenerator[LLMChunk, None]:
        """Stream one call from an engine of the pool; retried elsewhere only before its
        first chunk.

        :raises BackendUnavailable, BackendError: as :meth:`complete`.
        """
        call = self._call(request)
        try:
            async with aclosing(self._stream(request, call)) as chunks:
                async for chunk in chunks:
                    yield chunk
        finally:
            self._core.ledger.leave(call)

    async def _stream(self, request: LLMRequest, call: Call) -> AsyncGenerator[LLMChunk, None]:
        core = self._core
        tried: set[str] = set()
        attempts = 0
        moves: list[_Miss] = []  # every attempt that did not answer, busy ones too
        arrived = anyio.current_time()
        busy_deadline = arrived + self._busy_wait_s
        spent = Usage()  # by the attempts that failed
        while True:
            member, by_prefix = await core.route(request, tried, busy_deadline, self.nested,
                                                 arrived)
            started = anyio.current_time()
            sent = False
            engine_request: LLMRequest | None = None
            probe = False  # the call is the first back on an engine taken out
            try:
                async with core.slot(member, call):
                    probe = member.trial
                    member.stats.calls += 1
                    member.stats.affinity += by_prefix
                    attempts += 1
                    waited = anyio.current_time() - started
                    attempt = _Attempt(member, core.from_start(member))
                    engine_request = self._for_engine(request, call, member, attempt)
                    sent_level = self._level(call)
                    chunks = member.backend.stream(engine_request)
                    async with aclosing(chunks) as iterator:  # type: ignore[type-var]
                        while True:
                            # the wait for each chunk is watched, not the caller's use of it
                            with core.watch(member, attempt) as scope:
                                try:
                                    chunk = await anext(iterator)
                                except StopAsyncIteration:
                                    break
                                except Exception:
                                    core.progressed(member)  # an error is an answer too
                                    raise
                            if scope.cancelled_caught:
                                raise self._stall(member)
                            core.progress(member, attempt)
                            if chunk.final is not None:
                                core.succeeded(member, call, chunk.final)
                                chunk = LLMChunk(chunk.text, final=self._annotate(
                                    _with_spent(chunk.final, spent), member,
                                    engine_request.priority, sent_level, waited, attempts,
                                    by_prefix, moves))
                            sent = True
                            yield chunk
                    return
            except _Moved:
                continue
            except Exception as exc:
                if not is_engine_fault(exc):
                    if is_request_error(exc):
                        raise self._rejected(member, exc) from exc
                    raise
                if sent:  # too late to move it; the next calls go elsewhere
                    if isinstance(exc, _Stall):
                        await core.stalled(member, exc)
                    else:
                        core.failed(member, exc)
                    raise
                _add_spent(spent, engine_request)
                await self._move_on(request, _Miss(member.name, exc, probe), member, tried,
                                    moves)

    async def aclose(self) -> None:
        """Release this handle; the last handle of a shared pool closes its engines."""
        if self._closed:
            return
        self._closed = True
        if self._key is not None:
            await self._shared.release(self._key)
        else:
            await self._core.aclose()

    # -- internals ------------------------------------------------------------------------
    def _build(self) -> _PoolCore:
        # Members hold no engine until their first call (vllm starts lazily), so a pool
        # whose later member fails to build leaves nothing behind.
        members: list[Member] = []
        skipped: dict[str, str] = {}
        for index, raw in enumerate(self.options.members):
            try:
                members.extend(self._members_of(index, raw))
            except _CannotStart as exc:
                skipped[exc.name] = exc.reason
        names = [m.name for m in members] + list(skipped)
        duplicate = _unique_names_problem(names)
        if duplicate is not None:
            raise ConfigError(f"pool {self.name!r}: {duplicate}")
        self._refuse_same_engine(members)
        if not members:
            raise ConfigError(f"pool {self.name!r}: no member can start here: " + "; ".join(
                f"{name}: {reason}" for name, reason in skipped.items()))
        for name, reason in skipped.items():
            _log.warning("pool %r starts without member %r: %s", self.name, name, reason)
        core = _PoolCore(self.name, self.options, members)
        core.skipped = skipped
        return core

    def _refuse_same_engine(self, members: list[Member]) -> None:
        """:raises ConfigError: when two members reach one engine (the same server's model,
        vLLM engines with the same arguments): the pool would count it twice, give it
        twice the calls and "fail over" to the engine that just failed."""
        seen: dict[str, Member] = {}
        for member in members:
            key = getattr(member.backend, "engine_key", None)
            if not isinstance(key, str):
                continue
            first = seen.setdefault(key, member)
            if first is not member:
                raise ConfigError(
                    f"pool {self.name!r}: members {first.name!r} and {member.name!r} reach "
                    f"the same engine ({clipped(key, 200)}); list it once and raise "
                    "its `concurrency` instead")

    def _members_of(self, index: int, raw: dict[str, Any]) -> list[Member]:
        """The member's replicas.

        :raises _CannotStart: when its backend's package is not installed here, or the
            machine lacks what the backend needs.
        :raises ConfigError: for anything else wrong with it.
        """
        data = dict(raw)
        name = data.pop("name", None)
        replicas = data.pop("replicas", 1)
        bad_replicas = _replicas_problem(replicas)
        if bad_replicas is not None:
            raise ConfigError(f"pool {self.name!r}: member {index}: {bad_replicas}")
        own_stall = "stall_timeout_s" in data
        stall_s = data.pop("stall_timeout_s", self.options.stall_timeout_s)
        bad_stall = _stall_problem(stall_s)
        if bad_stall is not None:
            raise ConfigError(f"pool {self.name!r}: member {index}: {bad_stall}")
        try:
            cfg = ModelConfig.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(m for _, m in _member_config_problems(exc))
            raise ConfigError(f"pool {self.name!r}: member {index}: {problems}") from None
        base = name or f"{cfg.backend}-{index}"
        try:
            factory = self._resolve(cfg.backend)
        except ConfigError as exc:
            if _missing_package(exc):
                raise _CannotStart(base, f"not installed: {exc}") from None
            raise ConfigError(f"pool {self.name!r}: member {index}: {exc}") from None
        out = []
        for member_name in _member_names(base, replicas):
            try:
                backend = factory(cfg)
            except ConfigError as exc:
                if _missing_package(exc):
                    raise _CannotStart(base, f"not installed: {exc}") from None
                # asked only once the backend refused: a member that starts is not second-
                # guessed, and one refused for another reason (a bad option) on a machine
                # that could run it is an error of the configuration
                lacking = HOST_REQUIREMENTS.get(cfg.backend, _can_run)(cfg)
                if lacking is not None:
                    raise _CannotStart(base, f"cannot run here: {lacking}") from None
                raise ConfigError(f"pool {self.name!r}: member {member_name!r}: {exc}") from None
            if isinstance(backend, PoolBackend):
                backend.nested = True
                stall_s = self._nested_stall(member_name, backend, stall_s, own_stall)
            out.append(_member(member_name, backend, _limit(cfg, backend), stall_s,
                               progress_in(cfg.backend, backend), own_stall))
        return out

    def _nested_stall(self, name: str, inner: PoolBackend, stall_s: float | None,
                      own_stall: bool) -> float | None:
        """The stall limit of a member that is a pool. The inner pool watches its own
        engines and moves a hung one's call to the others; with this pool's
        ``stall_timeout_s`` too, both limits would run out together and this pool would
        take the whole inner pool out for one hung engine. So it is watched only with a
        ``stall_timeout_s`` of its own, which must exceed what the inner pool takes to move
        a call (its longest limit, and an eighth, and its ``health_timeout_s``); each move
        counts as progress of the inner pool (see :meth:`_Watched.touch`).

        :raises ConfigError: for an own limit that does not exceed that."""
        if not own_stall or stall_s is None:
            return None
        needs = inner.failover_s
        if needs is not None and not stall_s > needs:
            raise ConfigError(
                f"pool {self.name!r}: member {name!r}: stall_timeout_s {stall_s:g} must be "
                f"more than {needs:g}s, what the pool it is takes to move a call off a "
                "hung engine (its longest stall_timeout_s and an eighth, plus its "
                "health_timeout_s); or leave it out: that pool watches its own engines")
        return stall_s

    @property
    def failover_s(self) -> float | None:
        """The longest this pool takes to stop a call on a hung engine and move it (its
        members' longest ``stall_timeout_s``, with the eighth it may run over, plus its
        ``health_timeout_s`` for the health check that follows); None when it watches
        none of its members."""
        limits = [m.stall_s for m in self._core.members if m.stall_s is not None]
        if not limits:
            return None
        return max(limits) * STALL_OVERRUN + self.options.health_timeout_s

    @property
    def progress_in(self) -> Progress:
        """Where this pool, as a member of another, shows progress: ``"complete"`` when
        every member's shows before its answer, else ``"none"``."""
        return "complete" if all(m.observed for m in self._core.members) else "none"

    @property
    def progress_from_start(self) -> bool:
        """Whether every member's progress is known to show from the start of a call (see
        :attr:`Member.proven`): while one's is not (an ``openai`` server that has not
        streamed an answer yet, or one that does not stream), a pool whose member this
        pool is watches its calls only from their first progress."""
        return all(self._core.from_start(m) for m in self._core.members)

    def _call(self, request: LLMRequest) -> Call:
        call = Call(run_of(request.run_id, request.request_id), request.priority,
                    anyio.current_time(), next(self._core.seq))
        if call.run_id:
            self._core.ledger.arrive(call)
        return call

    def _for_engine(self, request: LLMRequest, call: Call, member: Member,
                    attempt: _Attempt) -> LLMRequest:
        """The request as the member gets it: the policy's priority, and a usage counter
        that tells the pool of the member's progress (it adds to the caller's)."""
        priority = engine_priority(call, self._core.settings, self._core.ledger,
                                   anyio.current_time())
        if member.stall_s is None:
            # counted apart all the same, so that a failed attempt's spend is known
            usage = None if request.usage is None else _Watched(request.usage, None)
            return replace(request, priority=priority, usage=usage)
        core = self._core
        usage = _Watched(request.usage, lambda: core.progress(member, attempt))
        return replace(request, priority=priority, usage=usage)

    def _level(self, call: Call) -> int:
        return level(self._core.ledger.get(call.run_id), self._core.settings)

    def _annotate(self, response: LLMResponse, member: Member, priority: float,
                  service_level: int, waited: float, attempts: int, by_prefix: bool,
                  moves: list[_Miss]) -> LLMResponse:
        """The response with what the pool decided for it: the priority and service level
        the call was dispatched with, its engine, wait and attempts, and the engines its
        earlier attempts failed on or were turned away by (``failed_attempts``, when
        there were any: in the trace, the reason a call answered by one engine took
        several attempts)."""
        return with_meta(response, {
            "pool": self.name,
            "engine": member.name,
            "policy": self._core.settings.name,
            "priority": priority,
            "service_level": service_level,
            "queue_s": waited,
            "attempts": attempts,
            "prefix_routed": by_prefix,
            "failed_attempts": [m.record() for m in moves] or None,
        })

    @property
    def _busy_wait_s(self) -> float:
        return 0.0 if self.nested else self.options.busy_wait_s

    def _rejected(self, member: Member, exc: Exception) -> BackendHTTPError:
        """The error of a call an engine refused for what it asks (:func:`is_request_error`):
        a 400, as the ``vllm`` backend and an HTTP server give it, so that the step fails
        without retries and a pool this one is a member of fails it too, naming the engine
        and its words."""
        return BackendHTTPError(f"pool {self.name!r}: engine {member.name!r} rejected the "
                                f"request: {type(exc).__name__}: {exc}", status=400)

    def _gave_up(self, faults: list[_Miss]) -> BackendUnavailable:
        """The error of a call that failed on ``max_attempts`` engines, naming each one
        and its error (busy answers, which are not failures, left out)."""
        each = "; ".join(f"{m.engine} ({type(m.error).__name__}: {clipped(str(m.error), 300)})"
                         for m in faults)
        return BackendUnavailable(
            f"pool {self.name!r}: the call failed on {len(faults)} engine(s) "
            f"(max_attempts {self.options.max_attempts}): {each}")


@dataclass(frozen=True, slots=True)
class _Miss:
    """An attempt of a call that did not answer: the engine, its error, and whether the
    call was the engine's probe (the first call back on it after it was taken out)."""

    engine: str
    error: Exception
    probe: bool = False

    @property
    def counted(self) -> bool:
        """Whether it counts toward the call's ``max_attempts``: a failure (not a busy
        answer) of an engine the call was not the probe of."""
        return not self.probe and not is_busy(self.error)

    def record(self) -> dict[str, Any]:
        """As the response's meta records it (``failed_attempts``): the engine, its error,
        and whether it was a busy answer (no failure: see ``busy``) or a probe."""
        move: dict[str, Any] = {"engine": self.engine,
                                "error": clipped(f"{type(self.error).__name__}: {self.error}",
                                                 300)}
        if is_busy(self.error):
            move["busy"] = True
        if self.probe:
            move["probe"] = True
        return move


def _add_spent(spent: Usage, request: LLMRequest | None) -> None:
    """Add what an attempt that failed spent (its counter's counts, where the pool gave
    it one) to ``spent``."""
    usage = None if request is None else request.usage
    if isinstance(usage, _Watched):
        spent.prompt_tokens += usage.prompt_tokens
        spent.completion_tokens += usage.completion_tokens


def _moved_on(request: LLMRequest) -> None:
    """The call moves to another engine: progress for a pool this pool is a member of
    (the request's counter is then that pool's, see :meth:`_Watched.touch`), whose own
    limit for this pool thus bounds each engine's attempt, not the call's moves in all."""
    if isinstance(request.usage, _Watched):
        request.usage.touch()


def _with_spent(response: LLMResponse, spent: Usage) -> LLMResponse:
    """The response of a call with the tokens its failed attempts spent added: they were
    spent for it, and the caller's usage counter has them too (a caller that reads the
    response's counts, as the LLM executor does for a call that succeeds, lost them).
    ``failed_attempts_tokens`` in its meta says how many."""
    if not spent.total:
        return response
    return replace(response,
                   prompt_tokens=response.prompt_tokens + spent.prompt_tokens,
                   completion_tokens=response.completion_tokens + spent.completion_tokens,
                   meta={**response.meta, "failed_attempts_tokens": {
                       "prompt_tokens": spent.prompt_tokens,
                       "completion_tokens": spent.completion_tokens}})


def _nested_stall_problems(members: list[dict[str, Any]], registry: Registry
                           ) -> list[OptionProblem]:
    """Each member that is a pool and has a ``stall_timeout_s`` of its own no longer than
    that pool takes to move a call off a hung engine (what :meth:`PoolBackend.
    _nested_stall` refuses when the pool is built), from the options alone, so that
    ``ponder validate`` names it at the member's line. Deeper pools are checked by their
    own options' check (:meth:`PoolBackend.option_problems` runs for each member's)."""
    problems: list[OptionProblem] = []
    for index, member in enumerate(members):
        inner = member.get("options")
        own = _positive_seconds(member.get("stall_timeout_s"))
        if member.get("backend") != "pool" or not isinstance(inner, dict) or own is None:
            continue
        needs = _failover_of(inner, registry)
        if needs is None or own > needs:
            continue
        name = member.get("name") or f"pool-{index}"
        problems.append((("members", index, "stall_timeout_s"),
                         f"pool member {name!r}: stall_timeout_s {own:g} must be more than "
                         f"{needs:g}s, what the pool it is takes to move a call off a hung "
                         "engine (its longest stall_timeout_s and an eighth, plus its "
                         f"health_timeout_s); make it more than {needs:g}, or leave it out: "
                         "that pool watches its own engines"))
    return problems


def _member_backends(members: list[Any]) -> set[str]:
    """The backend names of a pool's ``members`` and of its nested pools' members."""
    names: set[str] = set()
    default = ModelConfig.model_fields["backend"].default
    for member in members:
        if not isinstance(member, dict):
            continue
        backend = member.get("backend", default)
        if not isinstance(backend, str):
            continue
        names.add(backend)
        inner = member.get("options")
        if backend == "pool" and isinstance(inner, dict) \
                and isinstance(inner.get("members"), list):
            names |= _member_backends(inner["members"])
    return names


def _failover_of(options: dict[str, Any], registry: Registry) -> float | None:
    """:attr:`PoolBackend.failover_s` of the pool ``options`` describe, before it is
    built; None when it would watch none of its members (or the options do not read)."""
    try:
        pool = PoolOptions.model_validate(options)
    except ValidationError:
        return None
    limits: list[float] = []
    for member in pool.members:
        backend = member.get("backend")
        own = "stall_timeout_s" in member
        stall = _positive_seconds(member.get("stall_timeout_s", pool.stall_timeout_s))
        if stall is None or (not own and (backend == "pool"
                                          or _declared_progress(backend, registry) == "none")):
            continue  # not watched: a pool without a limit of its own, or no progress shown
        limits.append(stall)
    return max(limits) * STALL_OVERRUN + pool.health_timeout_s if limits else None


def _declared_progress(backend: Any, registry: Registry) -> Progress:
    """Where a member's backend shows a call's progress, from its class (its
    ``progress_in`` attribute when it declares one, else :data:`PROGRESS_IN`)."""
    if not isinstance(backend, str):
        return "none"
    try:
        declared = getattr(registry.backend_factory(backend), "progress_in", None)
    except ConfigError:
        declared = None
    if declared in ("complete", "stream", "none"):
        return declared  # type: ignore[no-any-return]
    return PROGRESS_IN.get(backend, "none")


def _positive_seconds(value: Any) -> float | None:
    """A positive, finite number of seconds, else None."""
    if isinstance(value, int | float) and not isinstance(value, bool) \
            and math.isfinite(value) and value > 0:
        return float(value)
    return None


def progress_in(name: str, backend: object) -> Progress:
    """Where a member's backend (``name``: its backend name) shows the progress of a call:
    its ``progress_in`` attribute, else :data:`PROGRESS_IN`, else ``"none"``."""
    declared = getattr(backend, "progress_in", None)
    if declared in ("complete", "stream", "none"):
        return declared  # type: ignore[no-any-return]
    return PROGRESS_IN.get(name, "none")


def _member(name: str, backend: LLMBackend, limit: int, stall_s: float | None,
            progress: Progress, own_stall: bool) -> Member:
    """A member, watched for stalls where its progress shows (through its stream for a
    ``"stream"`` backend); one whose progress does not show is watched only with a
    ``stall_timeout_s`` of its own (``own_stall``), which then bounds its calls."""
    if progress == "none" and not own_stall:
        stall_s = None
    via_stream = progress == "stream" and stall_s is not None
    observed = progress == "complete" or via_stream
    return Member(name, backend, limit, stall_s=stall_s, via_stream=via_stream,
                  observed=observed, proven=not via_stream)


def _replicas_problem(replicas: object) -> str | None:
    """What is wrong with a member's ``replicas``; None when it is a positive integer."""
    if isinstance(replicas, int) and not isinstance(replicas, bool) and replicas >= 1:
        return None
    return f"replicas must be a positive integer, not {replicas!r}"


def _stall_problem(value: object) -> str | None:
    """What is wrong with a member's ``stall_timeout_s``; None when it is a positive
    number of seconds or null (no limit)."""
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)
                         and math.isfinite(value) and value > 0):
        return None
    return f"stall_timeout_s must be a positive number of seconds or null, not {value!r}"


def registry_or_default(bound: Registry | None) -> Registry:
    """The registry a backend bound with ``with_registry`` finds its engines' backends in
    (a pool's members, a ray-engine's engine): ``bound``, else the installed backends'."""
    if bound is not None:
        return bound
    from orchestrator.runtime.registry import Registry

    return Registry()


def engine_config_problems(data: Mapping[str, Any], registry: Registry
                           ) -> tuple[ModelConfig | None, list[OptionProblem],
                                      list[OptionProblem]]:
    """An engine's model config as a pool member or a ``ray-engine``'s ``engine`` gives
    it, checked as the spec shows it: the config (None when its fields are no model
    config's), the problems of its fields and backend, and those of its ``options:``
    (asked of its backend), each at its path in ``data``. A backend whose package is not
    installed here is not checked further: the machine that runs it may have it."""
    try:
        cfg = ModelConfig.model_validate(data)
    except ValidationError as exc:
        return None, _member_config_problems(exc), []
    try:
        registry.backend_factory(cfg.backend)
    except ConfigError as exc:
        return cfg, [] if _missing_package(exc) else [(("backend",), str(exc))], []
    return cfg, [], [(("options", *where), message) for where, message
                     in registry.backend_option_problems(cfg.backend, cfg.options)]


def _member_config_problems(exc: ValidationError) -> list[tuple[tuple[str | int, ...], str]]:
    """A member's fields that are no model config's, each at its path in the member."""
    return [(tuple(e["loc"]), f"{'.'.join(map(str, e['loc']))}: {e['msg']}")
            for e in exc.errors(include_url=False)]


def _member_names(base: str, replicas: int) -> list[str]:
    """The names of a member's engines: its own, or ``base.N`` for each replica."""
    return [base] if replicas == 1 else [f"{base}.{r}" for r in range(replicas)]


def _unique_names_problem(names: list[str]) -> str | None:
    """Why a pool's member names do not do (one is used twice); None when they do."""
    if len(set(names)) == len(names):
        return None
    return f"member names must be unique: {names}"


def _can_run(cfg: ModelConfig) -> str | None:
    """A backend without requirements on the machine can run anywhere."""
    return None


def _limit(cfg: ModelConfig, backend: LLMBackend) -> int:
    if cfg.concurrency is not None:
        return cfg.concurrency
    default = getattr(backend, "default_concurrency", None)
    return min(default, DEFAULT_MEMBER_CONCURRENCY) if isinstance(default, int) else 8
