"""Which waiting call an engine pool serves first: pure functions, no I/O.

``fifo``
    arrival order at the pool.
``critical_path``
    the step's remaining critical path (``LLMRequest.priority``, set by the scheduler),
    longest first; then arrival. This is what the scheduler does inside one run: good
    for that run's makespan, but across runs it lets long runs overtake short ones.
``program_aware``
    Autellix-style program-level scheduling. A call's *level* comes from the service its
    run has already received (PLAS: least attained service first), in levels that double:
    level ``k`` holds runs with ``quantum * (2**k - 1) <= service < quantum * (2**(k+1) - 1)``.
    Lower levels first; within a level, the *shorter* remaining critical path first (the
    run closest to its end: shortest-remaining-work, which minimises mean run latency);
    then arrival. A call that has waited longer than ``starvation_s`` goes before every
    level (anti-starvation), in arrival order.

Service of a run = its completion tokens + ``prompt_weight`` x its prompt tokens,
summed over its finished calls (prefill is cheaper per token than decode).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

PolicyName = Literal["fifo", "critical_path", "program_aware"]
POLICIES: tuple[PolicyName, ...] = ("fifo", "critical_path", "program_aware")


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """The knobs of a policy (see the module docstring)."""

    name: PolicyName = "program_aware"
    quantum_tokens: float = 2048.0
    levels: int = 8
    starvation_s: float = 60.0
    prompt_weight: float = 0.1


@dataclass(slots=True)
class Call:
    """A call waiting for (or holding) an engine slot."""

    run_id: str
    critical_path: float
    arrival: float
    seq: int


class ServiceLedger:
    """Service each run has received, for the most recent ``capacity`` runs."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._service: OrderedDict[str, float] = OrderedDict()
        self._capacity = capacity

    def add(self, run_id: str, prompt_tokens: int, completion_tokens: int,
            prompt_weight: float) -> None:
        if not run_id:
            return
        served = completion_tokens + prompt_weight * prompt_tokens
        self._service[run_id] = self._service.pop(run_id, 0.0) + served
        while len(self._service) > self._capacity:
            self._service.popitem(last=False)

    def get(self, run_id: str) -> float:
        return self._service.get(run_id, 0.0)


def level(service: float, settings: PolicySettings) -> int:
    """The doubling level of a run that has received ``service``."""
    if service <= 0:
        return 0
    return min(settings.levels - 1, int(math.log2(1 + service / settings.quantum_tokens)))


def sort_key(call: Call, settings: PolicySettings, ledger: ServiceLedger,
             now: float) -> tuple[float, ...]:
    """Smaller is served first."""
    if settings.name == "fifo":
        return (call.arrival, call.seq)
    if settings.name == "critical_path":
        return (-call.critical_path, call.arrival, call.seq)
    if now - call.arrival >= settings.starvation_s:
        return (-1.0, call.arrival, 0.0, call.seq)
    return (float(level(ledger.get(call.run_id), settings)), call.critical_path,
            call.arrival, call.seq)


def engine_priority(call: Call, settings: PolicySettings, ledger: ServiceLedger) -> float:
    """The priority passed on to the engine (larger = more urgent), consistent with
    :func:`sort_key`, so an engine with a priority queue orders its own backlog alike.

    ``fifo`` gives every call 0 (the engine's arrival order decides); ``program_aware``
    gives ``1000 * (levels - level) + 999 - min(critical_path, 999)``.
    """
    if settings.name == "fifo":
        return 0.0
    if settings.name == "critical_path":
        return call.critical_path
    lvl = level(ledger.get(call.run_id), settings)
    return 1000.0 * (settings.levels - lvl) + 999.0 - min(max(call.critical_path, 0.0), 999.0)


def run_of(run_id: str, request_id: str) -> str:
    """The run a call belongs to: ``run_id``, else the first part of ``run/step/attempt``."""
    if run_id:
        return run_id
    head, sep, _ = request_id.partition("/")
    return head if sep else ""
