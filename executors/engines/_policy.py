"""Which waiting call an engine pool serves first: pure functions, no I/O.

``fifo``
    arrival order at the pool.
``critical_path``
    the step's remaining critical path (``LLMRequest.priority``, set by the scheduler),
    longest first; then arrival. This is what the scheduler does inside one run: good
    for that run's makespan, but across runs it lets long runs overtake short ones.
``program_aware``
    Autellix's ATLAS (Luo et al. 2025, "Autellix: An Efficient Serving Engine for LLM
    Agents as General Programs", section 4): programs (here: runs) are served least
    attained service first, in discrete levels, first come first served inside a level.

    - *Attained service* of a run is the longest critical path of service among its
      finished calls: a call snapshots its run's service when it arrives at the pool
      (``start``) and, when it finishes, the run's service becomes
      ``max(service, start + this call's service)``. Calls running side by side all
      start from the same snapshot, so a run with wide fan-out is not pushed down for
      its width, and a sequential run adds up every call (PLAS). The service of a call
      is its completion tokens plus ``prompt_weight`` x its prompt tokens (prefill is
      cheaper per token than decode).
    - *Levels* double: level ``k`` holds runs with
      ``quantum * (2**k - 1) <= service < quantum * (2**(k+1) - 1)``; lower levels first.
    - *Inside a level*, Ponder knows more than Autellix, which sees programs as black
      boxes: the scheduler sets each call's remaining critical path (``critical_path``,
      from ``LLMRequest.priority``). A run's remaining critical path is the longest
      one among its calls now at the pool (waiting or running); a call's *slack* is
      how much shorter its own is (how long it may wait without delaying its run).
      The call with the smallest ``remaining + slack`` goes first: across runs, the
      run nearest its end (shortest remaining processing time, which minimises mean
      latency: Schrage 1968), a call off its run's critical path counting as if its
      run were longer by its slack; inside a run, the call with the longest critical
      path (what the scheduler does within one run; never across runs, where it
      would let long runs overtake short ones). Then the run that arrived first
      (ATLAS's first come first served inside a queue: of equal runs some finish
      early instead of all finishing late), then arrival.
    - *Anti-starvation*: a run that has waited at the pool (the time during which at
      least one of its calls waited: calls waiting side by side delay the run once, as
      they add to its service once) at least ``starvation_ratio`` times the engine time
      its calls have had (Autellix's wait-to-service ratio of a program, with the
      service floored at ``starvation_floor_s``), or a
      call that has waited ``starvation_s``, goes before every level; starving calls go
      oldest run first, then by arrival. (By the call's arrival alone, an overloaded pool
      where every run starves would serve each run's first calls before anyone's later
      ones, and every run would finish at the end, as under ``fifo``.)
    - *Waiting* is the time a call spends in an engine's queue at the pool, counted once:
      from when it enters the queue on an attempt (:meth:`ServiceLedger.queued`) until it
      gets a slot or moves (:meth:`ServiceLedger.dequeued`); its run waits while any of
      its calls does (every call of the run sees the same wait, growing with time, not
      with how many wait). A call's waits on all its attempts add up; the time it
      ran at an engine (an attempt that failed), or was routed or waited out a busy
      engine's back-off, is not waiting. A call that has its slot waits no more: the
      priority it is sent to the engine with counts its wait in its run's.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal

PolicyName = Literal["fifo", "critical_path", "program_aware"]
POLICIES: tuple[PolicyName, ...] = ("fifo", "critical_path", "program_aware")

#: engine priorities of the levels are this far apart (see :func:`engine_priority`)
_LEVEL_SPAN = 1e9
#: milliseconds of urgency a level can tell apart (11.5 days; longer ones tie)
_URGENCY_MAX = 999_999_999


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """The knobs of a policy (see the module docstring)."""

    name: PolicyName = "program_aware"
    quantum_tokens: float = 2048.0
    levels: int = 8
    starvation_s: float = 60.0
    prompt_weight: float = 0.1
    starvation_ratio: float = 4.0
    starvation_floor_s: float = 5.0
    #: how starving calls are ordered: ``run`` (oldest run first, then the call's
    #: arrival) or ``arrival`` (the call's arrival alone, the order before; the pool's
    #: ``starving_order`` option, so that bench/engine_bench.py --starvation-order can
    #: compare the two)
    starving_order: Literal["run", "arrival"] = "run"


@dataclass(slots=True)
class Call:
    """A call waiting for (or holding) an engine slot.

    :param critical_path: the step's remaining critical path (larger = more urgent).
    :param run_seq: order in which the pool first saw the call's run.
    :param start_service: the run's attained service when the call arrived (ATLAS).
    :param queued_at: when it entered the queue it waits in now (None: not waiting).
    :param waited_s: its waiting in the queues it has left (earlier attempts, moves).
    """

    run_id: str
    critical_path: float
    arrival: float
    seq: int
    run_seq: int = 0
    start_service: float = 0.0
    queued_at: float | None = None
    waited_s: float = 0.0

    def waiting(self, now: float) -> float:
        """How long it has waited in the queue it is in now (0 when it is in none)."""
        return 0.0 if self.queued_at is None else max(0.0, now - self.queued_at)


@dataclass(slots=True)
class RunRecord:
    """What the pool knows about one run.

    :param service: attained service, the longest critical path of served tokens.
    :param waited_s: time it spent waiting at the pool (some call of it waiting for a
        slot), up to the last time none of its calls waited.
    :param served_s: engine time of its finished calls.
    :param queued: how many of its calls wait in a queue now, and ``queued_since`` since
        when one has, without a break.
    """

    seq: int
    service: float = 0.0
    waited_s: float = 0.0
    served_s: float = 0.0
    pending: dict[int, float] = field(default_factory=dict)
    queued: int = 0
    queued_since: float = 0.0

    def wait(self, now: float) -> float:
        """How long it has waited at the pool by ``now``."""
        open_s = now - self.queued_since if self.queued else 0.0
        return self.waited_s + max(0.0, open_s)

    @property
    def remaining(self) -> float:
        """The run's remaining critical path as far as the pool can see: the longest
        one among its calls now waiting or running."""
        return max(self.pending.values(), default=0.0)


class ServiceLedger:
    """Attained service, waiting and engine time of the most recent ``capacity`` runs."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._runs: OrderedDict[str, RunRecord] = OrderedDict()
        self._capacity = capacity
        self._next_seq = 0

    def record(self, run_id: str) -> RunRecord:
        """The run's record, made (and numbered) the first time the run is seen."""
        record = self._runs.get(run_id)
        if record is None:
            record = self._runs[run_id] = RunRecord(self._next_seq)
            self._next_seq += 1
            while len(self._runs) > self._capacity:
                self._runs.popitem(last=False)
        else:
            self._runs.move_to_end(run_id)
        return record

    def arrive(self, call: Call) -> None:
        """Stamp a call arriving at the pool with its run's order and service."""
        record = self.record(call.run_id)
        call.run_seq = record.seq
        call.start_service = record.service
        record.pending[call.seq] = call.critical_path

    def leave(self, call: Call) -> None:
        """The call is over (answered, failed or cancelled)."""
        record = self._runs.get(call.run_id)
        if record is not None:
            record.pending.pop(call.seq, None)

    def queued(self, call: Call, now: float) -> None:
        """The call begins to wait for a slot (on this attempt); its run waits with it."""
        if call.queued_at is not None:
            self.dequeued(call, now)
        call.queued_at = now
        if call.run_id:
            record = self.record(call.run_id)
            if record.queued == 0:
                record.queued_since = now
            record.queued += 1

    def dequeued(self, call: Call, now: float) -> None:
        """The call stops waiting (it has a slot, moves or is cancelled): its wait counts
        to itself, and its run's ends when none of its calls waits any more."""
        if call.queued_at is None:
            return
        seconds = call.waiting(now)
        record = self._runs.get(call.run_id) if call.run_id else None
        if record is not None and record.queued > 0:
            record.queued -= 1
            if record.queued == 0:
                record.waited_s += max(0.0, now - record.queued_since)
        call.queued_at = None
        call.waited_s += seconds

    def waited(self, call: Call, seconds: float) -> None:
        """Charge ``seconds`` of waiting for a slot to the call's run."""
        if call.run_id:
            self.record(call.run_id).waited_s += seconds

    def served(self, call: Call, prompt_tokens: int, completion_tokens: int,
               engine_s: float, prompt_weight: float) -> None:
        """Fold a finished call into its run: service by the critical-path (max) rule."""
        if not call.run_id:
            return
        record = self.record(call.run_id)
        served = completion_tokens + prompt_weight * prompt_tokens
        record.service = max(record.service, call.start_service + served)
        record.served_s += max(0.0, engine_s)

    def add(self, run_id: str, prompt_tokens: int, completion_tokens: int,
            prompt_weight: float) -> None:
        """Add service to a run as one call that followed all its others (tests, tools)."""
        if not run_id:
            return
        record = self.record(run_id)
        record.service += completion_tokens + prompt_weight * prompt_tokens

    def get(self, run_id: str) -> float:
        """The run's attained service (0 for a run never seen)."""
        record = self._runs.get(run_id)
        return record.service if record is not None else 0.0

    def run(self, run_id: str) -> RunRecord | None:
        """The run's record, or None for a run never seen (does not make one)."""
        return self._runs.get(run_id)


def level(service: float, settings: PolicySettings) -> int:
    """The doubling level of a run that has received ``service`` (the last level for a
    service past a float's range: a huge ``prompt_weight`` times a long prompt)."""
    if service <= 0:
        return 0
    doublings = math.log2(1 + service / settings.quantum_tokens)
    if not doublings < settings.levels - 1:  # (inf and NaN too: int() refuses them)
        return settings.levels - 1
    return int(doublings)


def starving(call: Call, settings: PolicySettings, ledger: ServiceLedger, now: float) -> bool:
    """Whether a call jumps every level (``program_aware`` anti-starvation): its own
    waiting, or its run's, the time during which any of the run's calls waited (see the
    module docstring, *Waiting*)."""
    if call.waited_s + call.waiting(now) >= settings.starvation_s:
        return True
    record = ledger.run(call.run_id)
    if record is None or not call.run_id:
        return False
    served = max(record.served_s, settings.starvation_floor_s)
    return record.wait(now) >= settings.starvation_ratio * served


def sort_key(call: Call, settings: PolicySettings, ledger: ServiceLedger,
             now: float) -> tuple[float, ...]:
    """Smaller is served first."""
    if settings.name == "fifo":
        return (call.arrival, call.seq)
    if settings.name == "critical_path":
        return (-call.critical_path, call.arrival, call.seq)
    if starving(call, settings, ledger, now):
        if settings.starving_order == "arrival":
            return (-1.0, call.arrival, 0.0, 0.0, 0.0, call.seq)
        return (-1.0, float(call.run_seq), call.arrival, 0.0, 0.0, call.seq)
    lvl = float(level(ledger.get(call.run_id), settings))
    return (lvl, urgency(call, ledger), float(call.run_seq), -call.critical_path,
            call.arrival, call.seq)


def remaining(call: Call, ledger: ServiceLedger) -> float:
    """The remaining critical path of the call's run (the call's own when the run is
    unknown)."""
    record = ledger.run(call.run_id) if call.run_id else None
    if record is None or not record.pending:
        return call.critical_path
    return max(record.remaining, call.critical_path)


def urgency(call: Call, ledger: ServiceLedger) -> float:
    """Smaller is more urgent: the remaining critical path of the call's run plus the
    call's slack (how long it may wait without delaying its run)."""
    rest = remaining(call, ledger)
    return rest + (rest - call.critical_path)


def engine_priority(call: Call, settings: PolicySettings, ledger: ServiceLedger,
                    now: float | None = None) -> float:
    """The priority passed on to the engine (larger = more urgent), consistent with
    :func:`sort_key`, so an engine with a priority queue orders its own backlog (and
    picks whom to preempt) alike. An engine whose priorities are integers gets
    :func:`executors.llm._common.engine_int` of it.

    ``fifo`` gives every call 0 (the engine's arrival order decides); ``critical_path``
    the step's critical path (seconds); ``program_aware``
    ``1e9 * (levels - level) + 999999999 - milliseconds of urgency`` (see
    :func:`urgency`), and ``1e9 * (levels + 1) + 999999999 - the run's order`` for a call
    starving at ``now`` (older runs first); among equals the engine's arrival order
    decides.
    """
    if settings.name == "fifo":
        return 0.0
    if settings.name == "critical_path":
        return call.critical_path
    if now is not None and starving(call, settings, ledger, now):
        if settings.starving_order == "arrival":
            return _LEVEL_SPAN * (settings.levels + 1)
        return _LEVEL_SPAN * (settings.levels + 1) + (_URGENCY_MAX
                                                      - min(call.run_seq, _URGENCY_MAX))
    lvl = level(ledger.get(call.run_id), settings)
    millis = min(max(round(urgency(call, ledger) * 1000), 0), _URGENCY_MAX)
    return _LEVEL_SPAN * (settings.levels - lvl) + (_URGENCY_MAX - millis)


def run_of(run_id: str, request_id: str) -> str:
    """The run a call belongs to: ``run_id``, else the first part of ``run/step/attempt``."""
    if run_id:
        return run_id
    head, sep, _ = request_id.partition("/")
    return head if sep else ""
