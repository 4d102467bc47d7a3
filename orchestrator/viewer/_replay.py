"""Replay keyframes: what the run page shows of a run after its first events, saved at
intervals while the viewer first reads the run. Pure: no I/O.

The run page replays a run event by event. It used to keep every event in the browser;
on a long run it now asks for the keyframe at or before the position it moves to and
folds only the events after it (see ``GET /api/v1/runs/{id}/keyframe``).

:class:`ReplayFold` folds events as the page's ``RunState`` does (``static/js/fold.js``),
keeping only what the graph, the timeline and the counts need of each step: its status,
its attempts' times and outcomes, its tokens and its place in the graph. A step's input,
output, raw output, metadata and error texts are left out: the page asks for the
step's own events when a step is opened. A page test checks that a keyframe read back
by the page equals the page's own fold of the same events.

Each step's state is a list while it changes; a keyframe holds each step as the JSON
text the page reads, encoded again only for the steps that changed since the previous
keyframe, so that keyframes share what did not change and one is sent without
encoding every step again.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.graph import declared as _declared
from orchestrator.store import RawEvent, StoredEvent
from orchestrator.viewer._graph import is_replan

__all__ = ["KEYFRAME_EVERY", "Keyframe", "ReplayFold"]

KEYFRAME_EVERY = 2000
"""A keyframe is kept after every this many events of a run."""

# The fields of a step, in the order of a keyframe's step arrays (fold.js reads them
# in this order: STEP_FIELDS there).
(ID, FIRST_SEQ, STATUS, KIND, DECLARED, PARENT, DEPS, ADDED_BY, ADDED_SEQ, REASON,
 REPLANNED, SCHEDULED_AT, POOL, ATTEMPTS, LATENCY, PROMPT, COMPLETION, CAUSE, DECISIONS,
 PLAN_ERRORS) = range(20)
# an attempt: [n, start, end, outcome]; a decision: [round, action, ts]; a rejected
# plan: [round, code, ts]
_N, _START, _END, _OUTCOME = range(4)


@dataclass(frozen=True)
class Keyframe:
    """The replay state after the events up to ``index`` (0-based; -1: before any).

    :ivar seq: the ``seq`` of the event at ``index`` (None before any event).
    :ivar run: the run-level fields, as the page's ``RunState.run``.
    :ivar steps: one JSON array per step, in order of first appearance (its fields in
        the order of this module's field constants), encoded once when the step
        changed and shared by the keyframes after.
    """

    index: int
    seq: int | None
    ts: float | None
    run: dict[str, Any]
    steps: tuple[str, ...]

    def to_json(self, fold: ReplayFold) -> str:
        """The keyframe as the page reads it (``RunState.fromKeyframe``): a JSON object
        with ``index``, ``seq``, ``ts``, ``run``, ``t0`` and ``strings`` (see
        :meth:`ReplayFold.encode`) and ``steps``.

        :param fold: the fold it was taken from (its strings and first event's time).
        """
        head = json.dumps({"index": self.index, "seq": self.seq, "ts": self.ts,
                           "run": self.run, "t0": fold.t0, "strings": fold.strings})
        return head[:-1] + ',"steps":[' + ",".join(self.steps) + "]}"


def _new_run() -> dict[str, Any]:
    return {"status": "running", "workflow": None, "startTs": None, "endTs": None,
            "error": None, "prompt": 0, "completion": 0, "duration": None, "finished": False}


def _tokens(e: StoredEvent) -> tuple[int, int]:
    usage = getattr(e, "usage", None)
    if usage is None:
        return 0, 0
    return usage.prompt_tokens or 0, usage.completion_tokens or 0


class ReplayFold:
    """Folds a run's events into the page's replay state, keeping a :class:`Keyframe`
    after every ``every`` events.

    :param every: events between keyframes.
    """

    def __init__(self, every: int = KEYFRAME_EVERY) -> None:
        self.every = every
        self.index = -1
        self.seq: int | None = None
        self.ts: float | None = None
        self.run = _new_run()
        self._ids: dict[str, int] = {}
        self._steps: list[list[Any]] = []
        self._frozen: list[str] = []
        self._dirty: set[int] = set()
        self._declared: dict[str, tuple[str | None, Sequence[str]]] = {}
        self.keyframes: list[Keyframe] = [Keyframe(-1, None, None, _new_run(), ())]
        self._step_seqs: dict[str, array[int]] = {}
        self.t0: float | None = None
        self.strings: list[str] = []
        self._string_ids: dict[str, int] = {}

    # -- reading ------------------------------------------------------------------------

    def keyframe_at(self, index: int) -> Keyframe:
        """The last keyframe at or before event ``index``."""
        kfs = self.keyframes
        lo, hi = 0, len(kfs) - 1
        while lo < hi:  # the last keyframe whose index <= index
            mid = (lo + hi + 1) // 2
            if kfs[mid].index <= index:
                lo = mid
            else:
                hi = mid - 1
        return kfs[lo]

    def step_seqs(self, step_id: str) -> array[int]:
        """The seqs of the events naming ``step_id`` (``step_id`` field), in order."""
        return self._step_seqs.get(step_id, array("q"))

    def snapshot(self) -> Keyframe:
        """The state after every event folded so far."""
        frozen = self._frozen
        frozen.extend(self.encode(s) for s in self._steps[len(frozen):])
        for i in self._dirty:
            if i < len(frozen):
                frozen[i] = self.encode(self._steps[i])
        self._dirty.clear()
        return Keyframe(self.index, self.seq, self.ts, dict(self.run), tuple(frozen))

    def _string(self, value: str | None) -> int | None:
        if value is None:
            return None
        sid = self._string_ids.get(value)
        if sid is None:
            sid = self._string_ids[value] = len(self.strings)
            self.strings.append(value)
        return sid

    def _time(self, ts: float | None) -> float | None:
        return None if ts is None or self.t0 is None else round(ts - self.t0, 6)

    def encode(self, step: list[Any]) -> str:
        """A step as a keyframe holds it: a JSON array of its fields in the order of this
        module's constants; status, kind, parent, added-by, reason, pool, outcomes,
        actions and codes as indexes into :attr:`strings`; times as seconds after
        :attr:`t0` (the first event's time), to the microsecond; flags as 0/1; trailing
        fields that are null or empty left out."""
        s, st, t = step, self._string, self._time
        out: list[Any] = [
            s[ID], s[FIRST_SEQ], st(s[STATUS]), st(s[KIND]), int(s[DECLARED]), st(s[PARENT]),
            s[DEPS], st(s[ADDED_BY]), s[ADDED_SEQ], st(s[REASON]), int(s[REPLANNED]),
            t(s[SCHEDULED_AT]), st(s[POOL]),
            [[a[_N], t(a[_START]), t(a[_END]), st(a[_OUTCOME])] for a in s[ATTEMPTS]],
            s[LATENCY], s[PROMPT], s[COMPLETION], s[CAUSE],
            [[d[0], st(d[1]), t(d[2])] for d in s[DECISIONS]],
            [[p[0], st(p[1]), t(p[2])] for p in s[PLAN_ERRORS]],
        ]
        while out and (out[-1] is None or out[-1] == []):
            out.pop()
        return json.dumps(out, separators=(",", ":"))

    # -- folding ------------------------------------------------------------------------

    def add(self, e: StoredEvent) -> None:
        """Fold the run's next event (in ``seq`` order)."""
        self.index += 1
        self.seq = e.seq
        self.ts = e.ts
        if self.t0 is None:
            self.t0 = e.ts
        sid = getattr(e, "step_id", None)
        if isinstance(sid, str):
            seqs = self._step_seqs.get(sid)
            if seqs is None:
                seqs = self._step_seqs[sid] = array("q")
            seqs.append(e.seq)
        if not isinstance(e, RawEvent):
            handler = _HANDLERS.get(e.kind)
            if handler is not None:
                handler(self, e)
        if (self.index + 1) % self.every == 0:
            self.keyframes.append(self.snapshot())

    def _step(self, sid: str, seq: int) -> list[Any]:
        i = self._ids.get(sid)
        if i is None:
            i = self._ids[sid] = len(self._steps)
            kind, deps = self._declared.get(sid, (None, ()))
            self._steps.append([sid, seq, "pending", kind, False, None, list(deps), None,
                                None, None, False, None, None, [], None, 0, 0, None, [], []])
        else:
            self._dirty.add(i)
        return self._steps[i]

    def _last_attempt(self, s: list[Any], ts: float) -> list[Any]:
        attempts = s[ATTEMPTS]
        if not attempts or attempts[-1][_END] is not None:
            attempts.append([len(attempts) + 1, ts, None, "running"])
        return attempts[-1]  # type: ignore[no-any-return]

    def _on_run_started(self, e: Any) -> None:
        run = self.run
        if run["startTs"] is None:
            run["startTs"] = e.ts
        run.update(status="running", workflow=e.workflow, endTs=None, error=None)
        if not self._declared:  # the page's declared steps: the API graph's, from the first
            self._declared = {s.id: (s.kind, s.deps)
                              for s in _declared.declared_steps(e.spec)}
        raw_steps = e.spec.get("steps") if isinstance(e.spec, dict) else None
        for raw in raw_steps if isinstance(raw_steps, list) else []:
            if isinstance(raw, dict) and isinstance(raw.get("id"), str):
                s = self._step(raw["id"], e.seq)
                s[DECLARED] = True
                if not s[KIND] and isinstance(raw.get("kind"), str):
                    s[KIND] = raw["kind"]

    def _on_graph_patched(self, e: Any) -> None:
        reason = "" if e.reason is None else str(e.reason)
        replanned = is_replan(reason)
        for p in e.steps:
            if not isinstance(p, dict) or not isinstance(p.get("id"), str):
                continue
            s = self._step(p["id"], e.seq)
            if isinstance(p.get("kind"), str):
                s[KIND] = p["kind"]
            if isinstance(p.get("deps"), list):
                s[DEPS] = [d for d in p["deps"] if isinstance(d, str)]
            if isinstance(p.get("parent"), str):
                s[PARENT] = p["parent"]
            s[ADDED_BY] = e.source_step
            s[ADDED_SEQ] = e.seq
            s[REASON] = reason
            s[REPLANNED] = replanned

    def _on_step_scheduled(self, e: Any) -> None:
        s = self._step(e.step_id, e.seq)
        s[STATUS] = "scheduled"
        s[KIND] = e.step_kind or s[KIND]
        s[POOL] = e.pool
        if s[SCHEDULED_AT] is None:
            s[SCHEDULED_AT] = e.ts

    def _on_step_started(self, e: Any) -> None:
        s = self._step(e.step_id, e.seq)
        s[STATUS] = "running"
        s[KIND] = e.step_kind or s[KIND]
        s[ATTEMPTS].append([e.attempt, e.ts, None, "running"])

    def _end_attempt(self, e: Any, status: str) -> list[Any]:
        s = self._step(e.step_id, e.seq)
        a = self._last_attempt(s, e.ts)
        a[_END], a[_OUTCOME] = e.ts, status
        s[STATUS] = status
        return s

    def _on_step_retrying(self, e: Any) -> None:
        self._end_attempt(e, "retrying")

    def _on_step_succeeded(self, e: Any) -> None:
        s = self._end_attempt(e, "succeeded")
        s[LATENCY] = e.latency_s
        self._add_tokens(s, e)

    def _on_step_failed(self, e: Any) -> None:
        self._add_tokens(self._end_attempt(e, "failed"), e)

    def _add_tokens(self, s: list[Any], e: StoredEvent) -> None:
        p, c = _tokens(e)
        s[PROMPT] += p
        s[COMPLETION] += c

    def _on_step_skipped(self, e: Any) -> None:
        s = self._step(e.step_id, e.seq)
        s[STATUS] = "skipped"
        s[CAUSE] = e.cause_step

    def _on_step_cancelled(self, e: Any) -> None:
        s = self._step(e.step_id, e.seq)
        if s[ATTEMPTS] and s[ATTEMPTS][-1][_END] is None:
            s[ATTEMPTS][-1][_END], s[ATTEMPTS][-1][_OUTCOME] = e.ts, "cancelled"
        s[STATUS] = "cancelled"
        self._add_tokens(s, e)

    def _on_run_finished(self, e: Any) -> None:
        p, c = _tokens(e)
        self.run.update(status=e.status, endTs=e.ts, error=e.error, duration=e.duration_s,
                        prompt=p, completion=c, finished=True)

    def _on_plan_decision(self, e: Any) -> None:
        self._step(e.step_id, e.seq)[DECISIONS].append([e.round, e.action, e.ts])

    def _on_plan_error(self, e: Any) -> None:
        self._step(e.step_id, e.seq)[PLAN_ERRORS].append([e.round, e.code, e.ts])


_HANDLERS: dict[str, Any] = {
    "run_started": ReplayFold._on_run_started,
    "graph_patched": ReplayFold._on_graph_patched,
    "step_scheduled": ReplayFold._on_step_scheduled,
    "step_started": ReplayFold._on_step_started,
    "step_retrying": ReplayFold._on_step_retrying,
    "step_succeeded": ReplayFold._on_step_succeeded,
    "step_failed": ReplayFold._on_step_failed,
    "step_skipped": ReplayFold._on_step_skipped,
    "step_cancelled": ReplayFold._on_step_cancelled,
    "run_finished": ReplayFold._on_run_finished,
    "plan_decision": ReplayFold._on_plan_decision,
    "plan_error": ReplayFold._on_plan_error,
}

