"""Fault injection around any LLM backend, step executor or tool, for chaos tests.

    backend = ChaosBackend(SimulatedBackend(cfg), error_rate=0.3, seed=1)
    wf.register_backend("chaos", chaos_backend_factory(SimulatedBackend, error_rate=0.3))
    wf.register_executor("tool", ChaosExecutor(ToolExecutor(), timeout_rate=0.1))
    wf.register_tool(chaos_tool(my_tool, drop_mid_stream_rate=0.2))

Each call draws at most one failure and, independently, a latency spike:

=========== ================================================================ ===========
fault       what the caller sees                                              retryable
=========== ================================================================ ===========
error       ``BackendHTTPError`` 503 or 429, or ``BackendUnavailable``         yes
error       with ``permanent=True``: ``BackendHTTPError`` 400 or 404, a plain  no
            ``BackendError`` (``ToolError`` for tool steps and tools)
timeout     ``StepTimeout`` after ``timeout_after_s``                          yes
drop        the call runs at the inner engine (a stream delivers some chunks,  yes
            never the final one), then its answer is lost: ``BackendUnavailable``
spike       ``spike_s`` more latency before the call, then the call as usual    (no error)
=========== ================================================================ ===========

A draw is a hash of ``(seed, the call's key, how often that key was seen)``, so the
same sequence of calls gets the same faults whatever order concurrency interleaves
them in. The key is the request's messages (backends), the step id and attempt
(executors) or the arguments (tools). Permanent errors are drawn from the key alone:
a call that is permanently broken stays broken.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import anyio

from orchestrator.errors import (
    BackendError,
    BackendHTTPError,
    BackendUnavailable,
    ConfigError,
    StepError,
    StepTimeout,
    ToolError,
)
from orchestrator.runtime.contracts import (
    ExecContext,
    Executor,
    LLMBackend,
    LLMChunk,
    LLMRequest,
    LLMResponse,
    Result,
    Task,
)
from orchestrator.spec.models import ModelConfig

__all__ = [
    "ChaosBackend",
    "ChaosExecutor",
    "ChaosStats",
    "Faults",
    "chaos_backend_factory",
    "chaos_tool",
]

FaultKind = Literal["error", "permanent", "timeout", "drop"]


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Faults:
    """How often each fault is injected (see the module docstring).

    :param error_rate: share of calls that fail with an error (transient, or permanent
        with ``permanent``).
    :param timeout_rate: share of calls that raise :class:`StepTimeout`.
    :param latency_spike_rate: share of calls delayed by ``spike_s`` first.
    :param spike_s: the extra latency of a spike.
    :param drop_mid_stream_rate: share of calls whose answer is lost after the work.
    :param permanent: make the ``error_rate`` share non-retryable and sticky.
    :param timeout_after_s: how long an injected timeout waits before raising.
    :param seed: seed of every draw.
    :raises ConfigError: for a rate outside [0, 1], or failure rates summing above 1.
    """

    error_rate: float = 0.0
    timeout_rate: float = 0.0
    latency_spike_rate: float = 0.0
    spike_s: float = 0.5
    drop_mid_stream_rate: float = 0.0
    permanent: bool = False
    timeout_after_s: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        rates = {"error_rate": self.error_rate, "timeout_rate": self.timeout_rate,
                 "latency_spike_rate": self.latency_spike_rate,
                 "drop_mid_stream_rate": self.drop_mid_stream_rate}
        for name, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                raise ConfigError(f"chaos: {name} must be between 0 and 1, got {rate}")
        if self.error_rate + self.timeout_rate + self.drop_mid_stream_rate > 1.0:
            raise ConfigError("chaos: error_rate + timeout_rate + drop_mid_stream_rate "
                              "must not exceed 1")
        if self.spike_s < 0 or self.timeout_after_s < 0:
            raise ConfigError("chaos: spike_s and timeout_after_s must be >= 0")


@dataclass(frozen=True, slots=True)
class _Draw:
    fault: FaultKind | None
    spike: bool
    pick: float  # a further uniform number: which error, where a stream is cut


@dataclass(slots=True)
class ChaosStats:
    """What a chaos wrapper injected.

    :param calls: calls seen.
    :param injected: faults by kind (``error``, ``permanent``, ``timeout``, ``drop``, ``spike``).
    :param log: ``(key, fault)`` for every injected fault, in call order (key: the step
        id for executors, a digest for backends and tools).
    """

    calls: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    log: list[tuple[str, str]] = field(default_factory=list)

    @property
    def failures(self) -> int:
        """Calls that raised because of an injected fault."""
        return sum(n for kind, n in self.injected.items() if kind != "spike")


class _Injector:
    """The seeded draw and the error for each fault: no I/O."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.stats = ChaosStats()
        self._seen: Counter[str] = Counter()

    def draw(self, key: str, sticky_key: str | None = None) -> _Draw:
        """Draw the fault of one call; a permanent one is drawn from ``sticky_key`` alone."""
        f = self.faults
        self.stats.calls += 1
        self._seen[key] += 1
        nth = self._seen[key]
        u = _unit(f"{f.seed}|fail|{nth}|{key}")
        pick = _unit(f"{f.seed}|pick|{nth}|{key}")
        spike = f.latency_spike_rate > 0 and _unit(f"{f.seed}|spike|{nth}|{key}") < (
            f.latency_spike_rate)
        fault: FaultKind | None = None
        if f.permanent:
            if f.error_rate > 0 and _unit(f"{f.seed}|permanent|{sticky_key or key}") < f.error_rate:
                fault = "permanent"
            elif u < f.timeout_rate:
                fault = "timeout"
            elif u < f.timeout_rate + f.drop_mid_stream_rate:
                fault = "drop"
        elif u < f.error_rate:
            fault = "error"
        elif u < f.error_rate + f.timeout_rate:
            fault = "timeout"
        elif u < f.error_rate + f.timeout_rate + f.drop_mid_stream_rate:
            fault = "drop"
        return _Draw(fault, spike, pick)

    def record(self, label: str, kind: str) -> None:
        self.stats.injected[kind] += 1
        self.stats.log.append((label, kind))

    async def before(self, draw: _Draw, label: str) -> None:
        """The spike, then the fault that happens before the call (error, timeout)."""
        if draw.spike:
            self.record(label, "spike")
            await anyio.sleep(self.faults.spike_s)
        if draw.fault == "timeout":
            self.record(label, "timeout")
            if self.faults.timeout_after_s > 0:
                await anyio.sleep(self.faults.timeout_after_s)
            raise StepTimeout(f"chaos: injected timeout ({label})")

    def error(self, draw: _Draw, label: str, *, tool: bool = False) -> StepError:
        """The error of an ``error`` or ``permanent`` draw."""
        assert draw.fault in ("error", "permanent")
        self.record(label, draw.fault)
        if draw.fault == "error":
            if draw.pick < 1 / 3:
                return BackendHTTPError(f"chaos: injected HTTP 503 ({label})", status=503)
            if draw.pick < 2 / 3:
                return BackendHTTPError(f"chaos: injected HTTP 429 ({label})", status=429)
            return BackendUnavailable(f"chaos: injected connection reset ({label})")
        if tool:
            return ToolError(f"chaos: injected permanent tool failure ({label})")
        if draw.pick < 1 / 3:
            return BackendHTTPError(f"chaos: injected HTTP 400 ({label})", status=400)
        if draw.pick < 2 / 3:
            return BackendHTTPError(f"chaos: injected HTTP 404 ({label})", status=404)
        return BackendError(f"chaos: injected permanent backend failure ({label})")

    def dropped(self, label: str) -> BackendUnavailable:
        self.record(label, "drop")
        return BackendUnavailable(f"chaos: injected connection drop mid-answer ({label})")


class _Chaotic(Generic[T]):
    """What both wrappers share: the wrapped object and a seeded fault injector."""

    def __init__(self, inner: T, error_rate: float = 0.0, timeout_rate: float = 0.0,
                 latency_spike_rate: float = 0.0, spike_s: float = 0.5,
                 drop_mid_stream_rate: float = 0.0, seed: int = 0, *,
                 permanent: bool = False, timeout_after_s: float = 0.0) -> None:
        self.inner = inner
        self._chaos = _Injector(Faults(error_rate, timeout_rate, latency_spike_rate, spike_s,
                                       drop_mid_stream_rate, permanent, timeout_after_s, seed))

    @property
    def stats(self) -> ChaosStats:
        """Faults injected so far (the log's keys are prompts' or steps' labels)."""
        return self._chaos.stats


class ChaosBackend(_Chaotic[LLMBackend]):
    """An :class:`~orchestrator.runtime.contracts.LLMBackend` that injects faults into another.

    :param inner: the backend that answers when no fault is drawn.
    :param error_rate: see :class:`Faults` (and the other keyword arguments).
    :raises ConfigError: for bad rates.
    """

    inner: LLMBackend

    @property
    def default_concurrency(self) -> int | None:
        """The inner backend's, when it has one."""
        value = getattr(self.inner, "default_concurrency", None)
        return value if isinstance(value, int) else None

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """The inner answer, unless a fault is drawn.

        :raises BackendError: (a subclass) or :class:`StepTimeout` for a drawn fault.
        """
        label = _request_key(request)
        draw = self._chaos.draw(label)
        await self._chaos.before(draw, label)
        if draw.fault in ("error", "permanent"):
            raise self._chaos.error(draw, label)
        if draw.fault == "drop":
            # the engine does part of the work; the connection dies before the answer
            async with aclosing(_closable(self.inner.stream(request))) as chunks:
                async for chunk in chunks:
                    if chunk.final is not None or chunk.text:
                        break
            raise self._chaos.dropped(label)
        return await self.inner.complete(request)

    async def stream(self, request: LLMRequest) -> AsyncIterator[LLMChunk]:
        """The inner stream, unless a fault is drawn; a drop cuts it before its final chunk.

        :raises BackendError: (a subclass) or :class:`StepTimeout` for a drawn fault.
        """
        label = _request_key(request)
        draw = self._chaos.draw(label)
        await self._chaos.before(draw, label)
        if draw.fault in ("error", "permanent"):
            raise self._chaos.error(draw, label)
        cut = 1 + int(draw.pick * 3) if draw.fault == "drop" else None
        delivered = 0
        async with aclosing(_closable(self.inner.stream(request))) as chunks:
            async for chunk in chunks:
                if cut is not None and (chunk.final is not None or delivered >= cut):
                    raise self._chaos.dropped(label)
                delivered += 1
                yield chunk

    async def aclose(self) -> None:
        """Close the inner backend."""
        await self.inner.aclose()


class ChaosExecutor(_Chaotic[Executor]):
    """An :class:`~orchestrator.runtime.contracts.Executor` that injects faults into another.

    A drop runs the inner executor to the end and then loses its result, so the step
    runs again on retry (at-least-once execution, as after a lost response).

    :param inner: the executor that runs the step when no fault is drawn.
    :param error_rate: see :class:`Faults` (and the other keyword arguments).
    :raises ConfigError: for bad rates.
    """

    inner: Executor

    async def execute(self, task: Task, ctx: ExecContext) -> Result:
        """Run the inner executor, unless a fault is drawn.

        :raises StepError: (a subclass) for a drawn fault.
        """
        # a permanent fault sticks to the step, whatever the attempt
        draw = self._chaos.draw(f"{task.step_id}#{task.attempt}", sticky_key=task.step_id)
        label = task.step_id
        await self._chaos.before(draw, label)
        if draw.fault in ("error", "permanent"):
            exc = self._chaos.error(draw, label, tool=task.kind == "tool")
            exc.step_id = task.step_id
            raise exc
        result = await self.inner.execute(task, ctx)
        if draw.fault == "drop":
            exc = self._chaos.dropped(label)
            exc.step_id = task.step_id
            raise exc
        return result

    def estimate_s(self, step: Any, ctx_model: ModelConfig | None) -> float:
        """The inner executor's estimate."""
        return self.inner.estimate_s(step, ctx_model)


def chaos_tool(fn: Callable[..., Any], error_rate: float = 0.0, timeout_rate: float = 0.0,
               latency_spike_rate: float = 0.0, spike_s: float = 0.5,
               drop_mid_stream_rate: float = 0.0, seed: int = 0, *, permanent: bool = False,
               timeout_after_s: float = 0.0, name: str | None = None) -> Callable[..., Any]:
    """Wrap a tool callable (sync or async) so that its calls draw faults.

    The wrapper is async, keeps the signature and docstring (so argument validation
    is unchanged) and has a ``chaos_stats`` attribute. A sync tool runs in a worker
    thread. Register it with ``wf.register_tool(wrapped)`` or ``Registry.add_tool``.

    :raises ConfigError: for bad rates.
    """
    chaos = _Injector(Faults(error_rate, timeout_rate, latency_spike_rate, spike_s,
                             drop_mid_stream_rate, permanent, timeout_after_s, seed))
    tool_name = name or str(getattr(fn, "__name__", "tool"))
    is_async = inspect.iscoroutinefunction(fn)

    @functools.wraps(fn)
    async def wrapper(**kwargs: Any) -> Any:
        key = f"{tool_name}:{_digest(json.dumps(kwargs, sort_keys=True, default=repr))}"
        draw = chaos.draw(key)
        await chaos.before(draw, tool_name)
        if draw.fault in ("error", "permanent"):
            raise chaos.error(draw, tool_name, tool=True)
        if is_async:
            value = await fn(**kwargs)
        else:
            value = await anyio.to_thread.run_sync(functools.partial(fn, **kwargs))
        if draw.fault == "drop":
            raise chaos.dropped(tool_name)
        return value

    wrapper.__name__ = tool_name
    wrapper.chaos_stats = chaos.stats  # type: ignore[attr-defined]
    return wrapper


def chaos_backend_factory(
    factory: Callable[[ModelConfig], LLMBackend], *, inner_backend: str | None = None,
    **faults: Any,
) -> Callable[[ModelConfig], ChaosBackend]:
    """A backend factory (for ``register_backend``) wrapping another's instances in chaos.

    :param factory: makes the inner backend from a ModelConfig (e.g. ``SimulatedBackend``).
    :param inner_backend: the ``backend`` name to give the inner backend's config (its
        own name, when the chaos backend is registered under another).
    :param faults: keyword arguments of :class:`ChaosBackend`.
    """
    made: list[ChaosBackend] = []

    def make(config: ModelConfig) -> ChaosBackend:
        inner_cfg = (config.model_copy(update={"backend": inner_backend}) if inner_backend
                     else config)
        backend = ChaosBackend(factory(inner_cfg), **faults)
        made.append(backend)
        return backend

    make.instances = made  # type: ignore[attr-defined]
    return make


def _closable(stream: AsyncIterator[LLMChunk]) -> AsyncGenerator[LLMChunk, None]:
    # the contract says AsyncIterator; every backend's stream is an async generator
    return stream  # type: ignore[return-value]


def _request_key(request: LLMRequest) -> str:
    return "llm:" + _digest(json.dumps([request.messages, request.n, request.seed],
                                       sort_keys=True, default=repr))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _unit(text: str) -> float:
    """A deterministic number in [0, 1) derived from ``text``."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64
