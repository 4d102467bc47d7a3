"""The task-fetching unit: a thin anyio loop around the pure :class:`RunState`.

Steps run on worker tasks in the run's task group. Whoever holds the run's baton
(one task at a time: the loop task, or a worker that just finished a step) applies
reports to the state, hands the resulting events to the hooks (and waits for them:
a result is durable before anything that depends on it starts), then dispatches
what became ready. Reports that arrive while the baton is held wait in the run's
inbox; the holder applies them before letting go. Nothing polls: the loop task
sleeps until a report arrives that nobody else took.

A worker (the loop task is one too) runs the steps it is given one after another,
each *eagerly*: a step runs in the worker until it first has to wait (a sleep, a
request...); at that moment the worker's other steps move to another worker, so steps
that wait overlap as before, while steps that never wait (and the bookkeeping after
each) cost no task switch and no task start. A worker that finishes a step while
nobody holds the baton applies its own report and takes on the steps that became
ready. Reports travel in a deque, not a memory object stream: a stream's send and
receive cost checkpoints on every step, and nothing here needs its backpressure.
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
import traceback
import types
from collections import deque
from collections.abc import Callable, Coroutine, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import anyio
from anyio.abc import TaskGroup
from anyio.lowlevel import checkpoint

from orchestrator.errors import (
    BudgetExceeded,
    PonderError,
    StepError,
    StepTimeout,
    is_retryable,
    requested_wait_s,
)
from orchestrator.runtime import events as ev
from orchestrator.runtime._gc import note_steps
from orchestrator.runtime.contracts import ExecContext, Executor, Result, Task, Usage
from orchestrator.runtime.retry import backoff_s
from orchestrator.runtime.state import RunState, Status
from orchestrator.spec.base import RetryPolicy


@dataclass(slots=True)
class StepPlan:
    """What the scheduler needs to know of one step (planned, not running)."""

    id: str
    kind: str
    step: Any
    deps: tuple[str, ...]
    pool: str
    priority: float
    locals: dict[str, Any] | None = None
    group: str | None = None
    #: may be cancelled on its own (first-finish losers...): runs in its own cancel scope
    cancellable: bool = False


@dataclass(slots=True)
class Job:
    """A running step: its plan and current attempt."""

    plan: StepPlan
    task: Task
    executor: Executor
    timeout_s: float | None
    retry: RetryPolicy
    #: seconds to wait before the first attempt: the rest of a retry back-off that an
    #: earlier execution of the run stopped in (resume)
    wait_s: float = 0.0


# Messages from step tasks to the loop -------------------------------------------
@dataclass(slots=True)
class _Done:
    job: Job
    result: Result
    latency_s: float


@dataclass(slots=True)
class _Failed:
    job: Job
    error: BaseException


@dataclass(slots=True)
class _Retrying:
    job: Job
    error: BaseException
    delay_s: float
    #: the wait the failure asked for (a server's Retry-After), None when it asked none
    retry_after_s: float | None = None
    #: set once applied (the attempt's tokens counted), for a step a budget may stop
    applied: anyio.Event | None = None


@dataclass(slots=True)
class _Attempt:
    job: Job


@dataclass(slots=True)
class _Patch:
    """Steps to add to the live graph (from a planner or an executor)."""

    source_step: str
    reason: str
    plans: list[StepPlan]
    group_owner: str | None = None
    group_limit: int | None = None
    applied: anyio.Event | None = None


@dataclass(slots=True)
class _CancelStep:
    step_id: str
    reason: str


Message = _Done | _Failed | _Retrying | _Attempt | _Patch | _CancelStep

#: an event of the scheduler's own making not built yet: its class and fields. A run with
#: no hooks records these; whoever reads the record builds them (:func:`built`).
Deferred = tuple[type[ev._Event], dict[str, Any]]


def built(event: ev._Event | Deferred) -> ev._Event:
    """The event itself, built now if it was deferred."""
    if type(event) is tuple:
        return event[0].trusted(event[1])  # type: ignore[no-any-return]
    return event  # type: ignore[return-value]


@dataclass(slots=True)
class StepOutcome:
    """How a step ended, for code that waits on it (planners, fan-outs)."""

    step_id: str
    status: str
    output: Any
    error: str | None
    #: tokens it used, every attempt's (as the run's totals and ``RunResult.steps`` count
    #: them): a success's, and what each failed, retried or cancelled attempt had used
    #: (what its executor noted, see note_usage, else its error's or its runs' count),
    #: those an earlier execution of the run recorded included (resume: its attempts
    #: then, the one the run stopped in too)
    usage: Usage = field(default_factory=Usage)
    #: it failed without being dispatched: the run's token budget was spent (a fan-out
    #: marks such a child ``not_started``, as under its own budget)
    over_budget: bool = False
    #: how many of its answers its model stopped at ``max_tokens`` (they may be cut off):
    #: 1 for a step whose result's ``finish_reason`` is ``length``, for a fan-out the
    #: children its ``meta["cut_short"]`` lists
    cut_short: int = 0


def cut_short_of(meta: dict[str, Any]) -> int:
    """How many answers of a step's success stopped at ``max_tokens``, from its result's
    ``meta`` (:attr:`StepOutcome.cut_short`): a fan-out's ``cut_short`` list, else 1 for
    ``finish_reason: length``."""
    cut = meta.get("cut_short")
    return len(cut) if type(cut) is list else int(meta.get("finish_reason") == "length")


_MAX_IDLE_WORKERS = 32
#: a worker running steps that never wait yields to the event loop this often
_INLINE_STEPS_PER_CHECKPOINT = 32
#: step kinds that spend tokens, and so stop at a run's token budget
_TOKEN_KINDS = frozenset({"llm", "sample", "plan", "spawn", "workflow"})


@dataclass
class Pool:
    """Ready steps of one executor pool, ordered by priority, under a concurrency limit.

    ``running`` counts its steps dispatched and not yet reported; the run's workers
    (shared by all pools) run them.
    """

    name: str
    limit: int | None
    running: int = 0
    heap: list[tuple[float, int, str]] = field(default_factory=list)

    def pop_ready(self) -> list[str]:
        """Take as many queued steps as there are free slots, highest priority first."""
        out = []
        while self.heap and (self.limit is None or self.running < self.limit):
            out.append(heapq.heappop(self.heap)[2])
            self.running += 1
        return out


@dataclass(slots=True)
class _Parked:
    """An idle worker: it sleeps on ``wake`` until given ``jobs`` (None: stop)."""

    wake: anyio.Event
    jobs: deque[Job] | None = None


Preparer = Callable[["Scheduler", StepPlan], dict[str, Any]]
ControlHandler = Callable[["Scheduler", StepPlan], list[ev._Event]]


class Scheduler:
    """Runs one workflow run's steps as their inputs become ready.

    :param plans: the initial steps, in an order where dependencies come first.
    :param executor_for: step kind -> executor.
    :param pool_limits: pool name -> concurrency limit (None = unlimited).
    :param prepare: resolves a step's inputs (rendering templates) into ``Task.inputs``.
    :param control: step kind -> in-loop handler for control steps (map, branch...).
    :param emit: delivers a batch of events to the hooks (awaited: durability); None when
        there are no hooks.
    :param record: called first with every batch, synchronously (the engine keeps the
        run's events with it); with no hooks, a batch may hold :data:`Deferred` events.
    :param jsonable_events: make step inputs and result metadata JSON-safe in the events
        as they are made (a hook will read them); when False, whoever reads the events
        later converts them (the engine's fold does, for ``RunResult.steps``).
    :param retry_due: steps whose earlier execution stopped in a retry back-off (resume)
        -> when it began (Unix time) and its length: each waits out the rest before its
        next attempt (its ``step_started`` comes first).
    :param recorded_usage: tokens each step's attempts in earlier executions of the run
        used, as their events counted them (resume): :meth:`outcome` adds them. A step
        that takes the output of another recorded step (``meta.reused_from``) counts
        that one's, as does a step that takes its output in this execution.
    :param interrupted: steps whose attempt an earlier execution stopped in (resume: its
        ``step_started`` and nothing after) -> that attempt and the tokens it used that
        no event counted (a plan step's completed calls), already in the run's total.
        The attempt is recorded as ended, cancelled with those tokens, before the step's
        next one starts (or when the run is cancelled first).
    :param recorded_cut_short: each recorded success's answers stopped at max_tokens
        (:func:`cut_short_of` its ``meta``; resume, fork): a step whose output
        ``preset`` gives (or that takes another's, ``meta.reused_from``) has the
        recorded count in :meth:`outcome`, as it had when it ran.
    """

    def __init__(
        self,
        run_id: str,
        plans: Sequence[StepPlan],
        *,
        executor_for: Callable[[str], Executor],
        ctx: ExecContext,
        pool_limits: dict[str, int | None],
        prepare: Preparer,
        control: dict[str, ControlHandler],
        emit: Callable[[Sequence[ev._Event]], Any] | None,
        retry_default: RetryPolicy,
        timeout_default: float | None,
        model_for: Callable[[StepPlan], Any] = lambda p: None,
        budget_tokens: int | None = None,
        preset: dict[str, Any] | None = None,
        attempts: dict[str, int] | None = None,
        exclude: set[str] | None = None,
        first_seq: int = 0,
        seed: int | None = None,
        jsonable_events: bool = True,
        record: Callable[[list[ev._Event | Deferred]], Any] | None = None,
        nested_in: tuple[Scheduler, str] | None = None,
        retry_due: dict[str, tuple[float, float]] | None = None,
        recorded_usage: dict[str, Usage] | None = None,
        interrupted: dict[str, tuple[int, Usage]] | None = None,
        recorded_cut_short: dict[str, int] | None = None,
        failed_before: dict[str, str] | None = None,
    ) -> None:
        self.run_id = run_id
        self.state = RunState()
        self.plans: dict[str, StepPlan] = {}
        self._executor_for = executor_for
        self._executors: dict[str, Executor] = {}
        self._jsonable_events = jsonable_events
        self.ctx = ctx
        self._pool_limits = pool_limits
        self._pools: dict[str, Pool] = {}
        self._prepare = prepare
        self._control = control
        self._emit_hooks = emit
        self._record = record
        self._retry_default = retry_default
        #: id of a step's own retry policy -> (it, it over the default): each merged once
        #: (a map's items share one), not at each dispatch
        self._retries: dict[int, tuple[RetryPolicy, RetryPolicy]] = {}
        self._timeout_default = timeout_default
        self._model_for = model_for
        self._seq = itertools.count(first_seq)
        self._qseq = itertools.count()
        self._pending_events: list[ev._Event | Deferred] = []
        self._tg: TaskGroup | None = None
        #: reports that arrived while the baton was held (or for the loop task)
        self._inbox: deque[Message] = deque()
        #: a task is applying reports / settling (awaiting the hooks, perhaps)
        self._busy = False
        #: set to wake the loop task while it sleeps
        self._wake: anyio.Event | None = None
        self._running = False
        #: workers waiting for jobs
        self._parked: list[_Parked] = []
        #: a task is about to apply the inbox
        self._drainer = False
        #: a dispatched step failed before it started: its pool has a free slot
        self._slot_freed = False
        #: steps of this run counted towards the process's GC tuning (see _gc.py)
        self._gc_steps = 0
        self._scopes: dict[str, anyio.CancelScope] = {}
        self._seed = seed
        self._rng_: random.Random | None = None
        self.usage = Usage()
        self.cancelled = False
        self._cancel_scope: anyio.CancelScope | None = None
        self._waiters: dict[str, list[anyio.Event]] = {}
        #: the error of a hook that failed; the run stops and records nothing more
        self.hook_error: Exception | None = None
        self._budget = budget_tokens
        #: the run this one is nested in (a sub-workflow's run) and the step running it: the
        #: tokens spent here count towards that run's budget as they are spent
        self._nested_in = nested_in
        #: a budget holds this run: its own, or that of a run it is nested in
        self._budgeted: bool = budget_tokens is not None or (
            nested_in is not None and nested_in[0]._budgeted)
        #: tokens the runs nested in this one's steps have spent so far, by step (counted
        #: by the step's own usage once it ends)
        self._nested_usage: dict[str, Usage] = {}
        #: steps failed undispatched because the run's token budget was spent
        self._over_budget: set[str] = set()
        #: steps with answers stopped at max_tokens -> how many (see StepOutcome.cut_short)
        self._cut_short: dict[str, int] = {}
        #: tokens per step: a success's, or what a cancelled/failed attempt had used
        self.step_usage: dict[str, Usage] = {}
        #: tokens per step of its attempts that failed and were retried (StepOutcome.usage
        #: adds them, as the run's totals and the trace's fold of the step do)
        self._retried_usage: dict[str, Usage] = {}
        #: groups (joined maps) whose owner succeeds with failed members as nulls
        self.tolerant_groups: set[str] = set()
        #: outputs known from an earlier execution (resume, replay): those steps do not run,
        #: also when a map or a planner adds them again
        self._preset = preset or {}
        self._prior_attempts = attempts or {}
        #: steps an earlier execution stopped in a retry back-off -> (its start, length)
        self._retry_due = dict(retry_due) if retry_due else {}
        #: tokens of each step's attempts that earlier executions recorded (resume)
        self._recorded_usage = dict(recorded_usage) if recorded_usage else {}
        #: steps an earlier execution stopped in mid-attempt -> (that attempt, its tokens)
        self._interrupted = dict(interrupted) if interrupted else {}
        #: recorded successes' answers stopped at max_tokens, by step (resume, fork)
        self._recorded_cut = recorded_cut_short or {}
        #: steps an earlier execution recorded as failed -> the error (resume): they fail
        #: again without running, as they did, and what needs them is skipped again
        self._failed_before = failed_before or {}
        if exclude:
            self.state.exclude_later(exclude)
        if self._preset or self._prior_attempts or self._failed_before:
            for p in plans:
                self._add_plan(p)
        else:  # a fresh run: the plain part of _add_plan
            add, by_id = self.state.add, self.plans
            for p in plans:
                by_id[p.id] = p
                add(p.id, p.deps, group=p.group)

    # -- public ------------------------------------------------------------------
    def event(self, cls: type[ev._Event], **fields: Any) -> ev._Event:
        """Create an event of this run with the next sequence number and queue it."""
        # (validated __init__ measured faster than model_construct here)
        e = cls(run_id=self.run_id, seq=next(self._seq), ts=time.time(), **fields)
        self._pending_events.append(e)
        return e

    def trusted_event(self, cls: type[ev._Event], fields: dict[str, Any]) -> None:
        """Queue an event of the runtime's own making (its per-step events, the run's
        start and end), built from values of the declared types without validating them
        again (see ``_Event.trusted``). Anything else goes through :meth:`event`.

        When the run has no hooks, the event is only built if someone reads it: the
        batches given to ``record`` then hold :data:`Deferred` pairs (see :func:`built`).
        """
        fields["run_id"] = self.run_id
        fields["seq"] = next(self._seq)
        fields["ts"] = time.time()
        if self._emit_hooks is None:
            # no hook will see it: only the record (RunResult.steps) may, later
            self._pending_events.append((cls, fields))
        else:
            self._pending_events.append(cls.trusted(fields))

    async def flush(self) -> None:
        """Deliver queued events to the hooks and wait until they have them.

        A hook that fails (a trace store that cannot write) stops the run: nothing may be
        acted on that was not recorded. The error is kept in :attr:`hook_error`.
        """
        if self.hook_error is not None:
            raise self.hook_error
        if self._pending_events:
            batch, self._pending_events = self._pending_events, []
            if self._record is not None:
                self._record(batch)
            if self._emit_hooks is None:
                return
            try:
                await self._emit_hooks(cast("list[ev._Event]", batch))  # all built
            except Exception as exc:
                self.hook_error = exc
                raise

    def take_pending(self) -> list[ev._Event]:
        """The events queued and not delivered, taken from the queue: after a hook failed
        (:attr:`hook_error`), what the hooks before it are still given (see
        :func:`~orchestrator.runtime.engine.execute`)."""
        batch, self._pending_events = self._pending_events, []
        return [e for e in batch if isinstance(e, ev._Event)]

    def cancel(self) -> None:
        """Cancel the run: in-flight calls are cancelled and recorded as such."""
        self.cancelled = True
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()

    def cancel_step(self, step_id: str, reason: str = "cancelled") -> None:
        """Cancel one step: a running ``cancellable`` one at its executor, a waiting one
        before it starts (e.g. first-finish losers). Safe to call from step tasks."""
        scope = self._scopes.get(step_id)
        if scope is not None:
            scope.cancel()
        elif self._running:
            self._post(_CancelStep(step_id, reason))

    async def add_steps(self, patch: _Patch) -> None:
        """Add steps to the live graph from a step task; returns once they are in it."""
        assert self._running
        patch.applied = anyio.Event()
        self._post(patch)
        await patch.applied.wait()

    def prepare(self, plan: StepPlan) -> dict[str, Any]:
        """What ``plan``'s task would get as ``inputs`` (references resolved, templates
        rendered with the run's inputs, the steps' outputs and the plan's locals), for a
        call made on a step's behalf that is not itself a step (a join's reward-model
        endpoint renders its prompt as an LLM judge's step would).

        :raises ReferenceResolutionError: (a subclass) when a reference or template fails.
        """
        return self._prepare(self, plan)

    @property
    def _rng(self) -> random.Random:
        # seeded on first use (a retry): most runs never need it
        if self._rng_ is None:
            self._rng_ = random.Random(self._seed)
        return self._rng_

    async def wait_steps(self, step_ids: Sequence[str]) -> dict[str, StepOutcome]:
        """Wait until every given step is resolved; return how each ended.

        :raises KeyError: for an id that is not (yet) in the graph.
        """
        for sid in step_ids:
            if sid not in self.state.steps:
                raise KeyError(sid)
            st = self.state.steps[sid]
            if st.status.value not in ("succeeded", "failed", "skipped", "cancelled"):
                event = anyio.Event()
                self._waiters.setdefault(sid, []).append(event)
                await event.wait()
        return {sid: self.outcome(sid) for sid in step_ids}

    def outcome(self, step_id: str) -> StepOutcome:
        st = self.state.steps[step_id]
        used = self.step_usage.get(step_id) or Usage()
        earlier = self._retried_usage.get(step_id)
        if earlier is not None:
            used = used + earlier
        recorded = self._recorded_usage.get(step_id) if self._recorded_usage else None
        if recorded is not None:
            used = used + recorded
        return StepOutcome(step_id, st.status.value, st.output, st.error, used,
                           st.status.value == "failed" and step_id in self._over_budget,
                           self._cut_short.get(step_id, 0)
                           if st.status.value == "succeeded" else 0)

    def _notify_waiters(self) -> None:
        log = self.state.resolved_log
        if self._waiters:
            for sid in log:
                for event in self._waiters.pop(sid, ()):
                    event.set()
        log.clear()

    async def run(self) -> None:
        """Run until every step is resolved or the run is cancelled."""
        self._running = True
        self._note_steps()
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                self._cancel_scope = tg.cancel_scope
                if self.cancelled:
                    tg.cancel_scope.cancel()
                    await checkpoint()  # raises: nothing starts
                # this task runs steps too (eagerly: see _work), so a run whose steps never
                # wait starts no other task
                await self._work(deque(await self._drive(None)))
                while not self.state.done:
                    if self._inbox and not self._busy:
                        await self._work(deque(await self._drive(None)))
                        continue
                    self._wake = wake = anyio.Event()
                    await wake.wait()
                    self._wake = None
                self._running = False
                self._stop_parked()  # they return; nothing to cancel
                if any(p.running for p in self._pools.values()):
                    tg.cancel_scope.cancel()  # a step still in flight (a cancelled group...)
        finally:
            self._running = False
            self._stop_parked()
            self._tg = None  # no reference cycles left behind: refcounting frees the run
            self._wake = None
            note_steps(-self._gc_steps)
            self._gc_steps = 0
            # also when cancelled from outside (a sub-workflow whose step was cancelled):
            # its unfinished steps are recorded as cancelled before the run ends
            if not self.state.done or self.cancelled:
                with anyio.CancelScope(shield=True):
                    self._record_cancelled()
                    await self.flush()

    # -- the loop's steps ----------------------------------------------------------
    def _add_plan(self, plan: StepPlan, *, preset: bool = True) -> None:
        self.plans[plan.id] = plan
        self.state.add(plan.id, plan.deps, group=plan.group)
        if self._prior_attempts:
            self.state.steps[plan.id].attempts = self._prior_attempts.get(plan.id, 0)
        if preset:
            self._preset_known(plan.id)

    def _preset_known(self, step_id: str) -> None:
        """Mark a step succeeded with its output from an earlier execution, if known, or
        failed with its error, if it failed there."""
        if self._failed_before and step_id in self._failed_before \
                and self.state.status(step_id) is Status.PENDING:
            self.state.preset_failed(step_id, self._failed_before[step_id])
            return
        failure = getattr(self._preset, "failure", None)
        failed = failure(step_id) if failure is not None else None
        if failed is not None and self.state.status(step_id) is Status.PENDING:
            # a resumed fan-out's child whose namesake of before failed fails again so
            # (durable.Known.failure), its tokens counted as that one's, as a reused
            # success's are
            self.state.preset_failed(step_id, failed.error)
            spent = self._recorded_usage.get(failed.step_id)
            if spent is not None:
                self._recorded_usage[step_id] = (
                    self._recorded_usage.get(step_id, Usage()) + spent)
            self.event(ev.StepFailed, step_id=step_id, attempt=1, error=failed.error,
                       error_type=failed.error_type, raw=failed.raw,
                       meta={"reused_from": failed.step_id})
            return
        if self._preset and step_id in self._preset \
                and self.state.status(step_id) is Status.PENDING:
            output = self._preset[step_id]
            self.state.preset(step_id, output)
            origin = getattr(self._preset, "origin", None)
            source = origin(step_id) if origin is not None else None
            cut = self._recorded_cut.get(source or step_id) if self._recorded_cut else None
            if cut:
                self._cut_short[step_id] = cut
            if source is not None:  # a resumed fan-out's child takes its earlier output
                # ... and its outcome counts what that one spent (its fan-out's tokens
                # and budget count them); its event carries none: the run's total and
                # the recorded step's have those tokens already
                spent = self._recorded_usage.get(source)
                if spent is not None:
                    self._recorded_usage[step_id] = (
                        self._recorded_usage.get(step_id, Usage()) + spent)
                self.event(ev.StepSucceeded, step_id=step_id, attempt=1, output=output,
                           meta={"reused_from": source})

    def _note_steps(self) -> None:
        """Count this run's steps towards the process's GC tuning (large runs only)."""
        n = len(self.state.steps)
        if self._running and n != self._gc_steps:
            note_steps(n - self._gc_steps)
            self._gc_steps = n

    def _post(self, msg: Message) -> None:
        """A report from a step task: the baton holder applies it, else the loop task if
        it is waiting, else a task started to apply it."""
        self._inbox.append(msg)
        if self._busy:
            return
        if self._wake is not None:
            self._wake.set()
        elif not self._drainer and self._running and self._tg is not None:
            self._drainer = True
            self._tg.start_soon(self._drain, name=f"run {self.run_id} inbox")

    async def _drain(self) -> None:
        self._drainer = False
        if self._inbox and not self._busy and self._running:
            await self._work(deque(await self._drive(None)))

    async def _drive(self, msg: Message | None) -> list[Job]:
        """Holding the baton: apply ``msg`` and every queued report, then move every ready
        step forward until nothing changes, emitting as we go; repeat until the inbox is
        empty. Returns the jobs dispatched (their events are delivered first), for the
        caller to run or hand to workers."""
        self._busy = True
        out: list[Job] = []
        state = self.state
        inbox = self._inbox
        try:
            if msg is not None:
                inbox.append(msg)  # after the reports its step sent before it
            while True:
                while inbox:
                    msg = inbox.popleft()
                    if type(msg) is _Done:
                        self._succeed(msg)
                    else:
                        self._handle(msg)
                while True:
                    self._advance()
                    jobs = self._dispatch()
                    if self._pending_events:
                        if self._emit_hooks is None and self.hook_error is None:
                            batch, self._pending_events = self._pending_events, []
                            if self._record is not None:
                                self._record(batch)
                        else:
                            await self.flush()
                    out.extend(jobs)
                    if state.resolved_log:
                        if self._waiters:
                            self._notify_waiters()
                        else:
                            state.resolved_log.clear()
                    # another pass only if something became ready, has notices, or a slot
                    # came free
                    if not (state._ready or state.skipped or state.groups_done
                            or self._slot_freed):
                        break
                    self._slot_freed = False
                if not inbox:
                    return out
        finally:
            self._busy = False
            if state.done and self._wake is not None:
                self._wake.set()

    def _advance(self) -> bool:
        progressed = False
        if not self.state._ready:
            if self.state.skipped or self.state.groups_done:
                self._drain_state_notices()
            return progressed
        plans, control, pools = self.plans, self._control, self._pools
        for sid in self.state.take_ready():
            progressed = True
            plan = plans[sid]
            handler = control.get(plan.kind) if control else None
            if handler is not None:
                self.state.start(sid)
                try:
                    handler(self, plan)
                except Exception as exc:  # a bug in a control step must not kill the run
                    self._fail_step(sid, 1, _wrap_unexpected(exc))
                continue
            pool = pools.get(plan.pool) or self._pool(plan.pool)
            if pool.limit is not None and pool.running + len(pool.heap) >= pool.limit:
                # it has to wait for a slot: say so (a step that starts at once needs no event)
                self.event(ev.StepScheduled, step_id=sid, step_kind=plan.kind, pool=plan.pool,
                           priority=plan.priority)
            heapq.heappush(pool.heap, (-plan.priority, next(self._qseq), sid))
        if self.state.skipped or self.state.groups_done:
            self._drain_state_notices()
        return progressed

    def _drain_state_notices(self) -> None:
        if not (self.state.skipped or self.state.groups_done):
            return
        for skip in self.state.skipped:
            self.event(ev.StepSkipped, step_id=skip.step_id, reason=skip.reason,
                       cause_step=skip.cause_step, root_step=skip.root_step)
        self.state.skipped.clear()
        while self.state.groups_done:
            done = self.state.groups_done.pop(0)
            if done.failed and done.owner not in self.tolerant_groups:
                shown = ", ".join(done.failed[:5]) + ("..." if len(done.failed) > 5 else "")
                msg = f"{len(done.failed)} of {len(done.outputs)} items did not succeed: {shown}"
                self.event(ev.StepFailed, step_id=done.owner, attempt=1, error=msg,
                           error_type="GroupFailed")
                self.state.fail(done.owner, msg)
            else:
                self.event(ev.StepSucceeded, step_id=done.owner, attempt=1, output=done.outputs)
                self.state.succeed(done.owner, done.outputs)
            for skip in self.state.skipped:
                self.event(ev.StepSkipped, step_id=skip.step_id, reason=skip.reason,
                           cause_step=skip.cause_step, root_step=skip.root_step)
            self.state.skipped.clear()

    def _pool(self, name: str) -> Pool:
        pool = self._pools.get(name)
        if pool is None:
            pool = self._pools[name] = Pool(name, self._pool_limits.get(name))
        return pool

    def _dispatch(self) -> list[Job]:
        jobs: list[Job] = []
        steps, plans = self.state.steps, self.plans
        for pool in self._pools.values():
            if not pool.heap:
                continue
            for sid in pool.pop_ready():
                if steps[sid].status is not Status.READY:  # cancelled while queued
                    pool.running -= 1
                    continue
                job = self._make_job(plans[sid])
                if job is None:
                    pool.running -= 1
                    self._slot_freed = True
                else:
                    jobs.append(job)
        return jobs

    def _executor(self, kind: str) -> Executor:
        executor = self._executors[kind] = self._executor_for(kind)
        return executor

    def _retry_of(self, step: Any) -> RetryPolicy:
        """A step's retry policy: its own ``retry`` over the workflow's default, field by
        field (:meth:`RetryPolicy.over`), or the default."""
        own = getattr(step, "retry", None)
        if own is None:
            return self._retry_default
        known = self._retries.get(id(own))
        if known is None or known[0] is not own:
            known = self._retries[id(own)] = (own, own.over(self._retry_default))
        return known[1]

    def _make_job(self, plan: StepPlan) -> Job | None:
        attempt = self.state.start(plan.id)
        if self._interrupted and plan.id in self._interrupted:
            self._end_interrupted(plan.id, f"interrupted: the run stopped before this "
                                           f"attempt ended; resumed, the step runs again "
                                           f"as attempt {attempt}")
        spent = self._budget_spent() if self._budgeted and plan.kind in _TOKEN_KINDS else None
        if spent is not None:
            self.event(ev.StepStarted, step_id=plan.id, step_kind=plan.kind, attempt=attempt,
                       input={})
            self._over_budget.add(plan.id)
            self._fail_step(plan.id, attempt, BudgetExceeded(
                f"{self._budget_text(spent)}: {plan.id!r} not dispatched", step_id=plan.id))
            return None
        try:
            inputs = self._prepare(self, plan)
            executor = self._executors.get(plan.kind) or self._executor(plan.kind)
        except Exception as exc:  # preparing one step must never take the run down
            error = exc if isinstance(exc, PonderError) else _wrap_unexpected(exc)
            self.event(ev.StepStarted, step_id=plan.id, step_kind=plan.kind, attempt=attempt,
                       input={})
            self._fail_step(plan.id, attempt, error)
            return None
        step = plan.step
        task = Task(self.run_id, plan.id, plan.kind, step, inputs, attempt, plan.priority,
                    self._model_for(plan))
        timeout = getattr(step, "timeout_s", None) or self._timeout_default
        retry = self._retry_of(step)
        shown = _jsonable(inputs) if self._jsonable_events else inputs
        if shown is inputs:
            shown = dict(inputs)  # the executor gets `inputs`; what it does to them is its own
        if type(shown) is dict:
            self.trusted_event(ev.StepStarted, {"step_id": plan.id, "step_kind": plan.kind,
                                           "attempt": attempt, "input": shown})
        else:  # not a dict: let validation say so
            self.event(ev.StepStarted, step_id=plan.id, step_kind=plan.kind, attempt=attempt,
                       input=shown)
        job = Job(plan, task, executor, timeout, retry)
        if self._retry_due and plan.id in self._retry_due:
            began, delay = self._retry_due.pop(plan.id)
            # what is left of it, never more than all of it (a clock set back since)
            job.wait_s = min(delay, began + delay - time.time())
        return job

    # -- step tasks -----------------------------------------------------------------
    def _launch(self, jobs: list[Job]) -> None:
        """Give jobs to a parked worker, or to a new one."""
        if not jobs:
            return
        if self._parked:
            parked = self._parked.pop()
            parked.jobs = deque(jobs)
            parked.wake.set()
            return
        assert self._tg is not None
        self._tg.start_soon(self._worker, deque(jobs), name=f"run {self.run_id} worker")

    def _stop_parked(self) -> None:
        while self._parked:
            self._parked.pop().wake.set()  # jobs None: the worker returns

    async def _work(self, jobs: deque[Job]) -> None:
        """Run jobs one after another, each eagerly, until there are none.

        When a step (or the delivery of events to the hooks) has to wait, the jobs not yet
        begun move to another worker, so that they start at once. After each step, the
        task applies its report when no other task holds the baton and adds the steps
        that became ready to its own jobs; otherwise the report waits in the inbox.
        """

        def hand_off() -> None:
            if jobs:
                rest = list(jobs)
                jobs.clear()
                self._launch(rest)

        done = 0
        while jobs:
            job = jobs.popleft()
            run = self._run_cancellable(job) if job.plan.cancellable else self._attempts(job)
            if jobs:  # others wait behind it: run it until it first has to wait
                try:
                    waiting_on = run.send(None)
                except StopIteration as stop:
                    msg = stop.value
                else:
                    hand_off()
                    msg = await _resume(run, waiting_on)
            else:
                msg = await run
            if self._busy or not self._running:
                self._post(msg)
                continue
            drive = self._drive(msg)
            if jobs:
                try:
                    waiting_on = drive.send(None)
                except StopIteration as stop:
                    jobs.extend(stop.value)
                else:
                    hand_off()
                    jobs.extend(await _resume(drive, waiting_on))
            else:
                jobs.extend(await drive)
            done += 1
            if jobs and (self.cancelled or done % _INLINE_STEPS_PER_CHECKPOINT == 0):
                await checkpoint()  # let other tasks (and cancellation) in

    async def _worker(self, jobs: deque[Job]) -> None:
        """Run jobs (see :meth:`_work`), then park until given more or the run ends."""
        while True:
            await self._work(jobs)
            if len(self._parked) >= _MAX_IDLE_WORKERS or not self._running:
                return  # after a wide fan-out, don't keep thousands of parked tasks
            parked = _Parked(anyio.Event())
            self._parked.append(parked)
            await parked.wake.wait()
            if parked.jobs is None:
                return
            jobs = parked.jobs

    async def _run_cancellable(self, job: Job) -> Message:
        """A step that may be cancelled on its own: its attempts run in a cancel scope."""
        with anyio.CancelScope() as scope:
            self._scopes[job.plan.id] = scope
            try:
                msg = await self._attempts(job)
            finally:
                self._scopes.pop(job.plan.id, None)
        if scope.cancelled_caught:
            return _Failed(job, anyio.get_cancelled_exc_class()("step cancelled"))
        return msg

    async def _attempts(self, job: Job) -> Message:
        """Dispatch -> retry -> timeout -> execute once."""
        if job.wait_s > 0:  # resumed in a back-off: the rest of it first
            await anyio.sleep(job.wait_s)
        while True:
            start = time.perf_counter()
            try:
                if job.timeout_s is None:
                    result = await job.executor.execute(job.task, self.ctx)
                else:
                    result = await self._execute_timed(job)
                return _Done(job, result, time.perf_counter() - start)
            except Exception as exc:
                error = exc if isinstance(exc, PonderError) else _wrap_unexpected(exc)
            failed = await self._back_off(job, error)
            if failed is not None:
                return failed
            job.task.attempt += 1
            self._post(_Attempt(job))

    async def _back_off(self, job: Job, error: PonderError) -> _Failed | None:
        """After a failed attempt: wait before the next one, or say how the step fails
        (the error is final, the attempts are used up, or the token budget is spent).

        The wait is the policy's back-off, never shorter than what the server asked (an
        HTTP 429/503's Retry-After): the back-off alone would hammer it.

        :returns: None to try again, else the step's failure.
        """
        if not is_retryable(error) or job.task.attempt >= job.retry.max_attempts:
            return _Failed(job, error)
        asked = requested_wait_s(error)
        delay = backoff_s(job.retry, job.task.attempt, self._rng, at_least_s=asked)
        retrying = _Retrying(job, error, delay, asked)
        if self._budgeted and job.plan.kind in _TOKEN_KINDS:
            retrying.applied = anyio.Event()
        self._post(retrying)
        # the budget before the back-off (no use waiting it out) and after it (other steps
        # may have spent it meanwhile)
        if retrying.applied is not None \
                and (stop := await self._budget_stops_retry(retrying)) is not None:
            return _Failed(job, stop)
        await anyio.sleep(delay)
        if retrying.applied is not None \
                and (stop := await self._budget_stops_retry(retrying)) is not None:
            return _Failed(job, stop)
        return None

    async def _budget_stops_retry(self, retrying: _Retrying) -> BudgetExceeded | None:
        """A retry is a dispatch: once the token budget is spent (the failed attempt's
        tokens counted, which this waits for, and those spent during the back-off), the
        step is not tried again.

        :returns: the error to fail the step with, or None to go on.
        """
        assert retrying.applied is not None
        await retrying.applied.wait()
        spent = self._budget_spent()
        if spent is None:
            return None
        sid = retrying.job.plan.id
        stop = BudgetExceeded(f"{self._budget_text(spent)}: {sid!r} not retried after: "
                              f"{retrying.error}", step_id=sid)
        stop.__cause__ = retrying.error
        return stop

    async def _execute_timed(self, job: Job) -> Result:
        """Execute once under the step's timeout.

        The attempt timed out when its deadline cancelled it, whatever the executor did
        then: a tool that swallows its cancellation and returns late still timed out (it
        succeeded). A ``TimeoutError`` the executor raises before the deadline is its
        own (a tool's, retried as such), not a timeout of the step."""
        assert job.timeout_s is not None
        with anyio.CancelScope(deadline=anyio.current_time() + job.timeout_s) as scope:
            result = await job.executor.execute(job.task, self.ctx)
        if scope.cancel_called:
            raise StepTimeout(f"step {job.plan.id!r} timed out after {job.timeout_s:g}s",
                              step_id=job.plan.id)
        return result

    # -- applying reports -------------------------------------------------------------
    def _handle(self, msg: Message) -> None:
        if isinstance(msg, _Done):
            self._succeed(msg)
        elif isinstance(msg, _Failed):
            self._pool(msg.job.plan.pool).running -= 1
            self._fail_step(msg.job.plan.id, msg.job.task.attempt, msg.error)
        elif isinstance(msg, _Retrying):
            sid = msg.job.plan.id
            self.event(ev.StepRetrying, step_id=sid, attempt=msg.job.task.attempt,
                       error=str(msg.error), error_type=type(msg.error).__name__,
                       delay_s=msg.delay_s, retry_after_s=msg.retry_after_s,
                       usage=self._attempt_spent(sid, msg.error, retried=True))
            if msg.applied is not None:
                msg.applied.set()
        elif isinstance(msg, _CancelStep):
            st = self.state.steps.get(msg.step_id)
            if st is not None and st.status in (Status.PENDING, Status.READY):
                if self._interrupted and msg.step_id in self._interrupted:
                    self._end_interrupted(msg.step_id, msg.reason)
                else:
                    self.event(ev.StepCancelled, step_id=msg.step_id, attempt=st.attempts,
                               reason=msg.reason)
                self.state.cancel(msg.step_id)
        elif isinstance(msg, _Attempt):
            attempt = self.state.start(msg.job.plan.id)
            self.event(ev.StepStarted, step_id=msg.job.plan.id, step_kind=msg.job.plan.kind,
                       attempt=attempt, input=_jsonable(msg.job.task.inputs))
        else:
            self._apply_patch(msg)

    def _succeed(self, msg: _Done) -> None:
        job, result = msg.job, msg.result
        sid = job.plan.id
        self._pools[job.plan.pool].running -= 1
        used = result.usage
        self.step_usage[sid] = used
        if self._nested_usage or self._nested_in is not None:
            self._spent(used, sid)
            usage = event_usage(used)
        elif used.prompt_tokens or used.completion_tokens:
            self.usage += used
            usage = ev.UsageModel(prompt_tokens=used.prompt_tokens,
                                  completion_tokens=used.completion_tokens)
        else:
            usage = _NO_USAGE
        meta = _jsonable(result.meta) if self._jsonable_events else result.meta
        if meta is result.meta and meta:
            meta = dict(meta)  # as validation would: the event's own (top-level) copy
        raw = result.raw
        if type(meta) is dict and ("cut_short" in meta or "finish_reason" in meta):
            cut_n = cut_short_of(meta)
            if cut_n:
                self._cut_short[sid] = cut_n
        if type(meta) is dict and (raw is None or type(raw) is str):
            self.trusted_event(ev.StepSucceeded, {
                "step_id": job.plan.id, "attempt": job.task.attempt, "output": result.output,
                "raw": raw, "usage": usage, "latency_s": msg.latency_s, "meta": meta})
        else:  # an executor returned something odd: validation reports it
            self.event(ev.StepSucceeded, step_id=job.plan.id, attempt=job.task.attempt,
                       output=result.output, raw=raw, usage=usage, latency_s=msg.latency_s,
                       meta=meta)
        if self.state.steps[sid].status is Status.RUNNING:
            self.state.succeed(sid, result.output)

    def _spent(self, used: Usage, step_id: str) -> None:
        """Count tokens a step of this run used (its run's total and budget, and those of
        the runs this one is nested in, as they are spent)."""
        self.usage += used
        if self._nested_usage:
            self._nested_usage.pop(step_id, None)  # now counted by the step's own usage
        nested_in = self._nested_in
        if nested_in is not None and used.total:
            nested_in[0]._nested_spent(nested_in[1], used)

    def _nested_spent(self, step_id: str, used: Usage) -> None:
        """A run nested in step ``step_id`` of this run spent ``used``."""
        self._nested_usage[step_id] = self._nested_usage.get(step_id, Usage()) + used
        if self._nested_in is not None:
            self._nested_in[0]._nested_spent(self._nested_in[1], used)

    def _budget_spent(self) -> tuple[Scheduler, int, int] | None:
        """The run whose token budget is spent (this one or one it is nested in), with its
        limit and the tokens it used, or None."""
        sched: Scheduler | None = self
        while sched is not None:
            if sched._budget is not None:
                used = sched.usage.total + sum(u.total for u in sched._nested_usage.values())
                if used >= sched._budget:
                    return sched, sched._budget, used
            sched = sched._nested_in[0] if sched._nested_in is not None else None
        return None

    def _attempt_spent(self, step_id: str, error: BaseException | None, *,
                       retried: bool) -> ev.UsageModel:
        """Count the tokens an attempt of ``step_id`` that ended without a result (failed,
        to be retried, or cancelled) spent, and return them for its event.

        They are what its executor noted while unwinding (``ctx.note_usage``), else what
        its error carries, else what the runs nested in the step (sub-workflows) have
        spent so far.

        :param retried: the step goes on with another attempt: its note is taken away (the
            next attempt notes its own). The nested runs' running count goes either way
            (:meth:`_spent` takes it off): the next attempt's runs count afresh, and the
            step's result or final failure counts only those.
        :returns: the tokens as the event's usage (:data:`_NO_USAGE` for none).
        """
        noted = self.step_usage.pop(step_id, None) if retried else self.step_usage.get(step_id)
        used = noted or getattr(error, "usage", None) or self._nested_usage.get(step_id)
        if not isinstance(used, Usage) or not used.total:
            return _NO_USAGE
        self._spent(used, step_id)
        if retried:
            self._retried_usage[step_id] = self._retried_usage.get(step_id, Usage()) + used
        else:  # what its outcome says it used (its error's or its runs' count, if not noted)
            self.step_usage[step_id] = used
        return event_usage(used)

    def _budget_text(self, spent: tuple[Scheduler, int, int]) -> str:
        """Whose budget is spent, as a message says it (see :meth:`_budget_spent`)."""
        whose = "run" if spent[0] is self else f"enclosing run {spent[0].run_id}'s"
        return f"{whose} token budget of {spent[1]} spent ({spent[2]} used)"

    def _fail_step(self, step_id: str, attempt: int, error: BaseException) -> None:
        if self.state.status(step_id) is not Status.RUNNING:
            return
        usage = self._attempt_spent(step_id, error, retried=False)
        if isinstance(error, anyio.get_cancelled_exc_class()):
            self.event(ev.StepCancelled, step_id=step_id, attempt=attempt,
                       reason="cancelled at the engine", usage=usage)
            self.state.cancel(step_id)
            return
        raw = getattr(error, "raw_output", None)
        text = str(error) or type(error).__name__
        # a replayed failure carries the recorded error's type, not its own
        etype = getattr(error, "recorded_type", None) or type(error).__name__
        self.event(ev.StepFailed, step_id=step_id, attempt=attempt, error=text,
                   error_type=etype, raw=raw, usage=usage)
        self.state.fail(step_id, text)

    def _apply_patch(self, patch: _Patch) -> None:
        if patch.group_owner is not None:
            self.state.add_group(patch.group_owner, patch.group_limit)
        # every member first, then the outputs known from an earlier execution: a group
        # whose first members are known must not finish before the others are in it
        for plan in patch.plans:
            self._add_plan(plan, preset=False)
        self.event(ev.GraphPatched, source_step=patch.source_step, reason=patch.reason,
                   steps=[{"id": p.id, "kind": p.kind, "deps": list(p.deps),
                           "parent": patch.group_owner or patch.source_step,
                           "spec": _dump_step(p.step)} for p in patch.plans])
        if patch.group_owner is not None:
            self.state.seal_group(patch.group_owner)
        for plan in patch.plans:
            self._preset_known(plan.id)
        self._note_steps()
        if patch.applied is not None:
            patch.applied.set()

    def apply_patch_now(self, patch: _Patch) -> None:
        """Add steps from inside the loop (control handlers)."""
        self._apply_patch(patch)

    def _end_interrupted(self, step_id: str, reason: str) -> None:
        """Record the attempt of ``step_id`` that an earlier execution stopped in as ended
        (cancelled, with the tokens it used that no event counted): its step's record
        then counts them, and shows that attempt as over. The run's total has them
        already (``execute``'s ``prior_usage``)."""
        attempt, used = self._interrupted.pop(step_id)
        usage = _NO_USAGE
        if used.total:
            self._recorded_usage[step_id] = self._recorded_usage.get(step_id, Usage()) + used
            usage = ev.UsageModel(prompt_tokens=used.prompt_tokens,
                                  completion_tokens=used.completion_tokens)
        self.event(ev.StepCancelled, step_id=step_id, attempt=attempt, reason=reason,
                   usage=usage)

    def _record_cancelled(self) -> None:
        for sid in self.state.cancel_all():
            st = self.state.steps[sid]
            if self._interrupted and sid in self._interrupted:
                # cancelled before its next attempt: the stopped attempt is the one ending
                self._end_interrupted(sid, "run cancelled")
                continue
            # what an attempt in flight had used (its executor noted it while unwinding,
            # as for a step cancelled on its own): the run's totals include it
            usage = self._attempt_spent(sid, None, retried=False) if st.attempts else _NO_USAGE
            self.event(ev.StepCancelled, step_id=sid, attempt=st.attempts, usage=usage,
                       reason="run cancelled" if st.attempts else "run cancelled before start")


def _dump_step(step: Any) -> dict[str, Any]:
    dump = getattr(step, "model_dump", None)
    return dump(mode="json", by_alias=True, exclude_defaults=True) if dump else {}


_NO_USAGE = ev.UsageModel()  # frozen: shared by the events of steps that used no tokens


def event_usage(used: Usage) -> ev.UsageModel:
    """Tokens as an event's ``usage`` (:data:`_NO_USAGE` for none)."""
    if not used.total:
        return _NO_USAGE
    return ev.UsageModel(prompt_tokens=used.prompt_tokens,
                         completion_tokens=used.completion_tokens)
_PRIMITIVES = (str, int, float, bool, type(None))
_PRIMITIVE_TYPES = frozenset(_PRIMITIVES)


def _jsonable(value: Any) -> Any:
    """Make a value safe for an event (JSON types only); JSON-safe values, nested ones
    included, are returned as they are, without a copy (this runs for every step)."""
    t = type(value)
    if t in _PRIMITIVE_TYPES or isinstance(value, _PRIMITIVES):
        return value
    if t is dict:
        for k, v in value.items():
            if type(k) is not str or (type(v) not in _PRIMITIVE_TYPES and _jsonable(v) is not v):
                return {str(k): _jsonable(v) for k, v in value.items()}
        return value
    if t is list:
        for v in value:
            if type(v) not in _PRIMITIVE_TYPES and _jsonable(v) is not v:
                return [_jsonable(v) for v in value]
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        return _jsonable(dump(mode="json"))
    return repr(value)


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], waiting_on: Any) -> Generator[Any, Any, Any]:
    """Go on awaiting ``coro``, which this task started with ``coro.send(None)`` and which
    yielded ``waiting_on``: exactly what ``await coro`` would have done from there on
    (whatever it waits on, whatever is sent or thrown into it, cancellation included,
    passes through)."""
    while True:
        try:
            sent = yield waiting_on
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # cancellation and the like: into the coroutine
            try:
                waiting_on = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                waiting_on = coro.send(sent)
            except StopIteration as stop:
                return stop.value


def _wrap_unexpected(exc: Exception) -> StepError:
    tb = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return StepError(f"unexpected {tb}")
