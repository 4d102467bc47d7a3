"""Fold a run's events into a :class:`RunRecord`. Pure: no I/O, inputs untouched.

The same fold serves ``ponder show``, the viewer, and resume/replay, so it is
lenient: events are taken in ``seq`` order whatever order they come in, kinds it
does not know (and :class:`RawEvent`) are ignored, steps are known from the
workflow spec, from ``graph_patched`` events and from any event naming them.
Declared steps get their dependencies from the spec (as the compiler gives them,
see :mod:`orchestrator.graph.declared`), added steps from their patch.

A step's tokens are its ended attempts' (each ending event's ``usage``), and, while the
run is interrupted (its writer process gone, see :func:`~orchestrator.store.is_interrupted`:
the one thing read beyond the events), those its cut attempt's recorded ``plan_call``
events paid. A resume ends that attempt with a ``step_cancelled`` carrying the same
tokens; a live attempt's calls count when it ends (as the viewer's run page shows them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from orchestrator.runtime import events as ev
from orchestrator.runtime._process import writer_gone
from orchestrator.store._models import RawEvent, RunInfo, RunRecord, StepRecord, StoredEvent

__all__ = ["CutCalls", "RunFold", "fold_events", "fold_info"]

#: a step's statuses once an attempt of it ended for good (its time is set)
_ENDED = frozenset({"succeeded", "failed", "skipped", "cancelled"})



class CutCalls:
    """The tokens of plan steps' attempts cut by a crash: what their recorded
    ``plan_call`` events paid while no event ended the attempt, counted while the run's
    writer is gone (the run interrupted, not resumed yet). The attempt's
    ``step_retrying``/``step_succeeded``/``step_failed``/``step_cancelled`` (a resume's
    "interrupted" one included) counts them from then on.

    Fed every event of one run in ``seq`` order (:meth:`add`); :class:`RunFold` and the
    viewer's run summary keep one.
    """

    #: the event kinds :meth:`add` looks at
    KINDS = ev.ATTEMPT_ENDS | {"plan_call", "run_started", "run_finished"}

    def __init__(self) -> None:
        #: (step, attempt) -> its calls' [prompt, completion] tokens, while not ended
        self._open: dict[tuple[str, int], list[int]] = {}
        self._ended: set[tuple[str, int]] = set()
        #: the run_started in force (None: none yet, or the run finished)
        self._writer: ev.RunStarted | None = None

    def add(self, e: StoredEvent) -> None:
        if e.kind not in self.KINDS:
            return
        if isinstance(e, ev.PlanCall):
            key = (e.step_id, e.attempt)
            if key not in self._ended:
                used = self._open.setdefault(key, [0, 0])
                used[0] += e.usage.prompt_tokens
                used[1] += e.usage.completion_tokens
        elif isinstance(e, ev.RunStarted):
            self._writer = e
        elif isinstance(e, ev.RunFinished):
            self._writer = None
        elif isinstance(e, ev.StepRetrying | ev.StepSucceeded | ev.StepFailed
                        | ev.StepCancelled):
            key = (e.step_id, e.attempt)
            self._ended.add(key)
            self._open.pop(key, None)

    def by_step(self) -> dict[str, tuple[int, int]]:
        """Each step's cut attempts' tokens (prompt, completion) that no event counts."""
        if not self._open:
            return {}
        w = self._writer
        if w is None or not writer_gone(w.writer_host, w.writer_pid, w.writer_start):
            return {}
        out: dict[str, tuple[int, int]] = {}
        for (step_id, _), (p, c) in self._open.items():
            was = out.get(step_id, (0, 0))
            out[step_id] = (was[0] + p, was[1] + c)
        return out


class RunFold:
    """Incremental fold of one run's events (the live view and RunResult use it as
    events arrive; :func:`fold_events` folds a stored list)."""

    def __init__(self, run_id: str) -> None:
        self.run: dict[str, Any] = {"id": run_id, "resumes": 0}
        self.steps: dict[str, dict[str, Any]] = {}
        self.finished = False
        self.n_events = 0
        self.next_seq = 0
        # a step's first start in the run's current execution (see StepRecord.duration_s)
        self._live_from: dict[str, float] = {}
        self._resumed_at: float | None = None
        #: each step whose attempt an earlier execution stopped in -> the time that attempt
        #: is known to have run: from its start to that execution's last event
        self._cut_s: dict[str, float] = {}
        self._last_ts: float | None = None
        self._cut_calls = CutCalls()

    def apply(self, e: StoredEvent) -> None:
        """Fold one event, given in ``seq`` order; events of other runs are ignored."""
        if e.run_id != self.run["id"]:
            return
        self.n_events += 1
        self.next_seq = max(self.next_seq, e.seq + 1)
        handler = _HANDLERS.get(e.kind)
        if handler is not None and not isinstance(e, RawEvent):
            handler(self, e)
        self._cut_calls.add(e)
        self._last_ts = e.ts if self._last_ts is None else max(self._last_ts, e.ts)

    def record(self) -> RunRecord:
        """The run as folded so far."""
        return self.result(self.n_events, self.next_seq)

    def step(self, step_id: str) -> dict[str, Any]:
        rec = self.steps.get(step_id)
        if rec is None:
            rec = self.steps[step_id] = {"id": step_id, "attempts": 0, "status": "pending"}
        return rec

    def add_usage(self, rec: dict[str, Any], usage: ev.UsageModel) -> None:
        rec["prompt_tokens"] = rec.get("prompt_tokens", 0) + usage.prompt_tokens
        rec["completion_tokens"] = rec.get("completion_tokens", 0) + usage.completion_tokens

    def on_run_started(self, e: ev.RunStarted) -> None:
        run = self.run
        if "started_at" in run:
            run["resumes"] += 1 if e.resumed else 0
            # A new execution: the time a step spent before it, and the downtime between
            # the two, are not its running time.
            last = self._last_ts if self._last_ts is not None else e.ts
            for sid, start in self._live_from.items():
                if self.steps[sid]["status"] not in _ENDED:  # its attempt was cut
                    self._cut_s[sid] = max(0.0, last - start)
            self._live_from.clear()
            self._resumed_at = e.ts
        else:
            run["started_at"] = e.ts
        run.update(
            workflow=e.workflow,
            inputs=e.inputs,
            spec=e.spec,
            source=e.source,
            parent_run_id=e.parent_run_id,
            parent_step_id=e.parent_step_id,
            parent_attempt=e.parent_attempt,
            status="running",
            finished_at=None,
            duration_s=None,
            output=None,
            error=None,
        )
        self.finished = False
        # (imported here: the graph's modules, networkx among them, are half the time of
        # importing the store, which `ponder runs` and the other store commands need alone)
        from orchestrator.graph.declared import declared_steps

        for s in declared_steps(e.spec):
            rec = self.step(s.id)
            rec.setdefault("kind", s.kind)
            rec.setdefault("deps", list(s.deps))

    def on_graph_patched(self, e: ev.GraphPatched) -> None:
        for s in e.steps:
            if not isinstance(s.get("id"), str):
                continue
            rec = self.step(s["id"])
            rec["added_by"] = e.source_step
            for key in ("kind", "parent", "spec"):
                if s.get(key) is not None:
                    rec[key] = s[key]
            if isinstance(s.get("deps"), list):
                rec["deps"] = [d for d in s["deps"] if isinstance(d, str)]

    def on_step_scheduled(self, e: ev.StepScheduled) -> None:
        rec = self.step(e.step_id)
        rec.update(status="scheduled", kind=e.step_kind, pool=e.pool, scheduled_at=e.ts)

    def on_step_started(self, e: ev.StepStarted) -> None:
        rec = self.step(e.step_id)
        rec["attempts"] += 1
        rec.setdefault("started_at", e.ts)
        self._live_from.setdefault(e.step_id, e.ts)
        self._cut_s.pop(e.step_id, None)
        rec.update(status="running", kind=e.step_kind, input=e.input, finished_at=None,
                   duration_s=None)

    def _ended(self, rec: dict[str, Any], ts: float) -> None:
        """Set the step's ``finished_at`` and ``duration_s`` at its terminal event."""
        rec["finished_at"] = ts
        start = self._live_from.get(rec["id"])
        if start is None and rec.get("started_at") is not None:
            start = self._resumed_at  # started in an earlier execution, ended in this one
        rec["duration_s"] = None if start is None else ts - start

    def on_step_retrying(self, e: ev.StepRetrying) -> None:
        rec = self.step(e.step_id)
        rec.update(status="retrying", error=e.error, error_type=e.error_type)
        self.add_usage(rec, e.usage)

    def on_step_succeeded(self, e: ev.StepSucceeded) -> None:
        rec = self.step(e.step_id)
        self._ended(rec, e.ts)
        rec.update(
            status="succeeded",
            output=e.output,
            raw=e.raw,
            latency_s=e.latency_s,
            meta=e.meta,
            error=None,
            error_type=None,
        )
        self.add_usage(rec, e.usage)

    def on_step_failed(self, e: ev.StepFailed) -> None:
        rec = self.step(e.step_id)
        self._ended(rec, e.ts)
        rec.update(status="failed", error=e.error, error_type=e.error_type, raw=e.raw)
        if e.meta:  # the failure it repeats (reused_from), beside a plan's story
            rec["meta"] = {**(rec.get("meta") or {}), **e.meta}
        self.add_usage(rec, e.usage)

    def on_step_skipped(self, e: ev.StepSkipped) -> None:
        rec = self.step(e.step_id)
        self._ended(rec, e.ts)
        rec.update(status="skipped", error=e.reason)

    def on_step_cancelled(self, e: ev.StepCancelled) -> None:
        rec = self.step(e.step_id)
        self._ended(rec, e.ts)
        cut = self._cut_s.pop(e.step_id, None)
        if cut is not None:  # a cut attempt the resume ended: it did not run since
            rec["duration_s"] = cut
        rec.update(status="cancelled", error=e.reason)
        self.add_usage(rec, e.usage)

    def _note(self, step_id: str, key: str, entry: dict[str, Any]) -> None:
        """Keep a planner's story in its step's ``meta`` as it happens: a plan step that
        fails records no meta of its own, and its plan errors and the joiner's decisions
        would show nowhere but the events (one that succeeds replaces this meta with its
        own, which holds them all)."""
        rec = self.step(step_id)
        meta = dict(rec.get("meta") or {})
        meta[key] = [*meta.get(key, ()), entry]
        rec["meta"] = meta

    def on_plan_error(self, e: ev.PlanError) -> None:
        error = {"round": e.round, "attempt": e.attempt, "code": e.code, "error": e.error,
                 "line": e.line, "will_retry": e.will_retry}
        if e.by is not None:  # (traces written before it was recorded say not)
            error["by"] = e.by
        if e.layer is not None:
            error["layer"] = e.layer
        self._note(e.step_id, "plan_errors", error)

    def on_plan_decision(self, e: ev.PlanDecision) -> None:
        decision = {"round": e.round, "action": e.action, "answer": e.answer,
                    "reason": e.reason}
        if e.by is not None:  # (traces written before it was recorded say not)
            decision["by"] = e.by
        self._note(e.step_id, "decisions", decision)

    def on_run_finished(self, e: ev.RunFinished) -> None:
        self.run.update(
            status=e.status,
            finished_at=e.ts,
            duration_s=e.duration_s,
            output=e.output,
            error=e.error,
            prompt_tokens=e.usage.prompt_tokens,
            completion_tokens=e.usage.completion_tokens,
        )
        self.finished = True

    def result(self, n_events: int, next_seq: int) -> RunRecord:
        cut = self._cut_calls.by_step()
        steps = [StepRecord.model_validate(_with_cut(s, cut.get(s["id"])))
                 for s in self.steps.values()]
        run = dict(self.run)
        if not self.finished:
            run["prompt_tokens"] = sum(s.prompt_tokens for s in steps)
            run["completion_tokens"] = sum(s.completion_tokens for s in steps)
        return RunRecord.model_validate(
            {**run, "steps": steps, "n_events": n_events, "next_seq": next_seq}
        )


def _with_cut(rec: dict[str, Any], cut: tuple[int, int] | None) -> dict[str, Any]:
    """The step's record with a cut attempt's tokens added (``rec`` untouched)."""
    if cut is None:
        return rec
    return {**rec, "prompt_tokens": rec.get("prompt_tokens", 0) + cut[0],
            "completion_tokens": rec.get("completion_tokens", 0) + cut[1]}


_HANDLERS: dict[str, Callable[[RunFold, Any], None]] = {
    "run_started": RunFold.on_run_started,
    "graph_patched": RunFold.on_graph_patched,
    "step_scheduled": RunFold.on_step_scheduled,
    "step_started": RunFold.on_step_started,
    "step_retrying": RunFold.on_step_retrying,
    "step_succeeded": RunFold.on_step_succeeded,
    "step_failed": RunFold.on_step_failed,
    "step_skipped": RunFold.on_step_skipped,
    "step_cancelled": RunFold.on_step_cancelled,
    "plan_error": RunFold.on_plan_error,
    "plan_decision": RunFold.on_plan_decision,
    "run_finished": RunFold.on_run_finished,
}


def fold_events(events: Iterable[StoredEvent]) -> RunRecord:
    """Fold one run's events into its record.

    :param events: the run's events, in any order (they are folded in ``seq`` order).
    :returns: the run with its steps in order of first appearance (declared steps first).
    :raises ValueError: when ``events`` is empty or holds events of several runs.
    """
    ordered = sorted(events, key=lambda e: e.seq)
    if not ordered:
        raise ValueError("fold_events needs at least one event")
    run_ids = {e.run_id for e in ordered}
    if len(run_ids) > 1:
        raise ValueError(f"fold_events got events of several runs: {sorted(run_ids)}")
    fold = RunFold(ordered[0].run_id)
    for e in ordered:
        fold.apply(e)
    return fold.record()


def fold_info(prev: RunInfo | None, event: StoredEvent, *, n_steps: int) -> RunInfo | None:
    """Apply one event to a run's ``list_runs`` row; both store backends use this.

    :param prev: the run's row so far (``None``: no row yet).
    :param event: the next event; only ``run_started`` and ``run_finished`` change a row.
    :param n_steps: distinct step ids in the run's events including this one (used
        by ``run_finished``).
    :returns: the new row (``prev`` itself when unchanged), or ``None`` when there is
        still no row (a ``run_finished`` without ``run_started``).
    """
    if isinstance(event, ev.RunStarted):
        if prev is None:
            return RunInfo(
                id=event.run_id,
                workflow=event.workflow,
                status="running",
                parent_run_id=event.parent_run_id,
                parent_step_id=event.parent_step_id,
                parent_attempt=event.parent_attempt,
                started_at=event.ts,
                source=event.source,
            )
        # A resumed run's run_started says which step of which run now runs it (a
        # fan-out that ran again on resume numbers its children after its new attempt:
        # `s@2[0]`, no longer `s[0]`), as fold_events folds it for `ponder show`.
        return prev.model_copy(
            update={
                "parent_run_id": event.parent_run_id,
                "parent_step_id": event.parent_step_id,
                "parent_attempt": event.parent_attempt,
                "status": "running",
                "finished_at": None,
                "duration_s": None,
                "prompt_tokens": None,
                "completion_tokens": None,
                "n_steps": None,
                "error": None,
            }
        )
    if isinstance(event, ev.RunFinished) and prev is not None:
        return prev.model_copy(
            update={
                "status": event.status,
                "finished_at": event.ts,
                "duration_s": event.duration_s,
                "prompt_tokens": event.usage.prompt_tokens,
                "completion_tokens": event.usage.completion_tokens,
                "n_steps": n_steps,
                "error": event.error,
            }
        )
    return prev
