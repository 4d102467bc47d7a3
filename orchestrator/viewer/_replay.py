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
keyframe. What is kept of a keyframe is only those changes (:class:`_Mark`: the
indexes of the steps that changed and their texts); a keyframe's steps are put
together from the marks up to it when it is asked for (a pass over the changes, not
over the events), so the memory of the keyframes grows with the changes of the steps,
not with the number of keyframes times the number of steps.
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pydantic_core
from pydantic_core import PydanticSerializationError

from orchestrator.graph import declared as _declared
from orchestrator.store import RawEvent, StoredEvent
from orchestrator.store.fold import CutCalls
from orchestrator.viewer._graph import intern_text as _intern
from orchestrator.viewer._graph import is_replan

__all__ = ["KEYFRAME_EVERY", "Keyframe", "ReplayFold", "ran_before"]

KEYFRAME_EVERY = 2000
"""A keyframe is kept after every this many events of a run."""

# The fields of a step, in the order of a keyframe's step arrays (fold.js reads them
# in this order: STEP_FIELDS there).
(ID, FIRST_SEQ, STATUS, KIND, DECLARED, PARENT, DEPS, ADDED_BY, ADDED_SEQ, REASON,
 REPLANNED, SCHEDULED_AT, POOL, ATTEMPTS, LATENCY, PROMPT, COMPLETION, CAUSE, DECISIONS,
 PLAN_ERRORS) = range(20)
# an attempt: [n, start, end, outcome]; a decision: [round, action, ts, by]; a rejected
# plan: [round, code, ts, layer]
_N, _START, _END, _OUTCOME = range(4)


@dataclass(frozen=True)
class Keyframe:
    """The replay state after the events up to ``index`` (0-based; -1: before any).

    :ivar seq: the ``seq`` of the event at ``index`` (None before any event).
    :ivar run: the run-level fields, as the page's ``RunState.run``.
    :ivar kind: that event's kind, and ``step_id`` the step it names (the page's
        replay label names the event at its position without holding it).
    :ivar steps: one JSON array per step, in order of first appearance (its fields in
        the order of this module's field constants), encoded once when the step
        changed and shared by the keyframes after.
    """

    index: int
    seq: int | None
    ts: float | None
    run: dict[str, Any]
    steps: tuple[str, ...]
    kind: str | None = None
    step_id: str | None = None

    def to_json(self, fold: ReplayFold) -> str:
        """The keyframe as the page reads it (``RunState.fromKeyframe``): a JSON object
        with ``index``, ``seq``, ``ts``, ``kind``, ``step_id``, ``run``, ``t0`` and
        ``strings`` (see
        :meth:`ReplayFold.encode`) and ``steps``.

        :param fold: the fold it was taken from (its strings and first event's time).
        """
        head = json.dumps({"index": self.index, "seq": self.seq, "ts": self.ts,
                           "kind": self.kind, "step_id": self.step_id, "run": self.run,
                           "t0": fold.t0, "strings": fold.strings})
        return head[:-1] + ',"steps":[' + ",".join(self.steps) + "]}"


@dataclass(frozen=True)
class _Mark:
    """What is kept of a keyframe: where it is, the run-level fields, and the steps
    that changed since the keyframe before (``changed``: their indexes, in order of
    first appearance for the steps first seen; ``texts``: their JSON)."""

    index: int
    seq: int | None
    ts: float | None
    run: dict[str, Any]
    kind: str | None = None
    step_id: str | None = None
    changed: array[int] = field(default_factory=lambda: array("l"))
    texts: tuple[str, ...] = ()


def _field(e: StoredEvent, name: str) -> Any:
    """A field of an event, or None: read from the instance's dict (pydantic answers a
    missing attribute through a slow ``__getattr__``), a :class:`RawEvent`'s extras
    through ``getattr``."""
    if type(e) is RawEvent:
        return getattr(e, name, None)
    return e.__dict__.get(name)


# The reason the plan executor records for a round whose plan named its answer
# (``direct_answer``: no joiner call, so no joiner output either); see _decided_by.
_PLAN_ANSWER = re.compile(r"the plan named \$\S+ as its answer")


def _decided_by(action: Any, reason: Any, raw: Any) -> str:
    """Who decided a plan round, for a ``plan_decision`` event that does not say (its
    ``by``, recorded in traces written since): ``"plan"`` for a direct answer (a finish
    with no joiner output, whose reason says the plan named it), else ``"joiner"``.
    fold.js's ``decidedBy`` is the same rule."""
    if (action == "finish" and raw is None and isinstance(reason, str)
            and _PLAN_ANSWER.fullmatch(reason)):
        return "plan"
    return "joiner"


def _decisions_by(meta: Any) -> dict[tuple[Any, Any], str]:
    """(round, action) -> by, of the decisions a plan step's metadata records with
    ``by`` (those of runs recorded before it was, none)."""
    out: dict[tuple[Any, Any], str] = {}
    decisions = meta.get("decisions") if isinstance(meta, dict) else None
    for d in decisions if isinstance(decisions, list) else ():
        if isinstance(d, dict) and d.get("by") in ("plan", "joiner"):
            out[(d.get("round"), d.get("action"))] = d["by"]
    return out


# The layer an AGoT plan error is about, as its message names it, for an event that does
# not record it (its ``layer``, in traces written since; AGoT has no rounds).
_PLAN_LAYER = re.compile(r"layer (\d+): |the proposal of layer (\d+) ")


def _error_layer(error: Any) -> int | None:
    """The AGoT layer plan error text ``error`` names, else None (as ``ponder show``
    reads it; fold.js's ``errorLayer`` is the same rule)."""
    m = _PLAN_LAYER.match(error) if isinstance(error, str) else None
    return None if m is None else int(m.group(1) or m.group(2))


def ran_before(before: float, exec_ts: float | None, last_ts: float | None) -> float:
    """The seconds a run ran before a new execution of it starts (a resume): ``before``,
    what its executions before the latest ran, and the latest's, from its start
    ``exec_ts`` to its last event at ``last_ts`` (the downtime until the resume left out).

    The one rule for a resumed run's duration: the run page's keyframes and the runs list
    count it so (as fold.js's ``run_started`` and ``runDuration`` do in the page).
    """
    if exec_ts is None or last_ts is None:
        return before
    return before + max(0.0, last_ts - exec_ts)


def _new_run() -> dict[str, Any]:
    return {"status": "running", "workflow": None, "startTs": None, "endTs": None,
            "error": None, "prompt": 0, "completion": 0, "duration": None, "finished": False,
            "execTs": None, "lastTs": None, "before": 0}


def _tokens(e: StoredEvent) -> tuple[int, int]:
    usage = _field(e, "usage")
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
        self.kind: str | None = None  # the last event's kind and the step it names
        self.step_id: str | None = None
        self.run = _new_run()
        self._ids: dict[str, int] = {}
        self._steps: list[list[Any]] = []
        self._frozen: list[str] = []
        self._marked = 0  # steps encoded at the last keyframe
        self._dirty: set[int] = set()
        self._declared: dict[str, tuple[str | None, Sequence[str]]] = {}
        self._marks: list[_Mark] = [_Mark(-1, None, None, _new_run())]
        self._built: Keyframe | None = None  # the keyframe put together last
        self._step_seqs: dict[str, array[int]] = {}
        self.t0: float | None = None
        self.strings: list[str] = []
        self._string_ids: dict[str, int] = {}
        self._cut = CutCalls()  # a cut plan attempt's calls, as ``ponder show`` counts them

    # -- reading ------------------------------------------------------------------------

    @property
    def n_keyframes(self) -> int:
        """Keyframes kept, the one before the first event included."""
        return len(self._marks)

    def keyframe_at(self, index: int) -> Keyframe:
        """The last keyframe at or before event ``index``."""
        marks = self._marks
        lo, hi = 0, len(marks) - 1
        while lo < hi:  # the last keyframe whose index <= index
            mid = (lo + hi + 1) // 2
            if marks[mid].index <= index:
                lo = mid
            else:
                hi = mid - 1
        mark = marks[lo]
        built = self._built
        if built is not None and built.index == mark.index:
            return built
        steps: list[str] = []
        for m in marks[1:lo + 1]:
            n = len(steps)
            for i, text in zip(m.changed, m.texts, strict=True):
                if i < n:
                    steps[i] = text
                else:  # a step first seen in this stretch: they come in order
                    steps.append(text)
        built = self._built = Keyframe(mark.index, mark.seq, mark.ts, mark.run, tuple(steps),
                                       mark.kind, mark.step_id)
        return built

    def step_seqs(self, step_id: str) -> array[int]:
        """The seqs of the events naming ``step_id`` (``step_id`` field), in order."""
        return self._step_seqs.get(step_id, array("q"))

    def cut_calls(self) -> dict[str, tuple[int, int]]:
        """Each plan step's cut attempts' tokens as of the last event folded, counted while
        the run's writer is gone (:meth:`~orchestrator.store.fold.CutCalls.by_step`)."""
        return self._cut.by_step()

    def snapshot(self) -> Keyframe:
        """The state after every event folded so far. While the run is interrupted (its
        writer gone, not resumed yet), a plan step's cut attempt's recorded ``plan_call``
        tokens count on that step, as the store's fold (``ponder show``) counts them
        (:class:`~orchestrator.store.fold.CutCalls`); the folded state is left as it is
        (a resume's ``step_cancelled`` counts them from then on)."""
        self._freeze()
        steps = self._frozen
        cut = self._cut.by_step()
        if cut:
            steps = list(steps)
            for sid, (p, c) in cut.items():
                i = self._ids.get(sid)
                if i is None:
                    continue
                s = list(self._steps[i])
                s[PROMPT] += p
                s[COMPLETION] += c
                steps[i] = self.encode(s)
        return Keyframe(self.index, self.seq, self.ts, dict(self.run), tuple(steps),
                        self.kind, self.step_id)

    def _freeze(self) -> list[int]:
        """Encode the steps changed or added since the last keyframe (those changed
        since the last call again); returns the indexes of the steps changed or added
        since the last keyframe, in order."""
        frozen, steps, marked = self._frozen, self._steps, self._marked
        n = len(frozen)
        for i in self._dirty:
            if i < n:
                frozen[i] = self.encode(steps[i])
        frozen.extend(self.encode(s) for s in steps[n:])
        # the steps added since the last keyframe (encoded by a snapshot or now) follow
        # the changed ones, in order: a keyframe is put together by appending them
        return sorted(i for i in self._dirty if i < marked) + list(range(marked, len(frozen)))

    def _mark(self) -> None:
        changed = self._freeze()
        self._dirty.clear()
        self._marked = len(self._frozen)
        frozen = self._frozen
        self._marks.append(_Mark(self.index, self.seq, self.ts, dict(self.run), self.kind,
                                 self.step_id, array("l", changed),
                                 tuple(frozen[i] for i in changed)))

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
            [[d[0], st(d[1]), t(d[2]), st(d[3])] for d in s[DECISIONS]],
            [[p[0], st(p[1]), t(p[2]), p[3]] for p in s[PLAN_ERRORS]],
        ]
        while out and (out[-1] is None or out[-1] == []):
            out.pop()
        try:  # pydantic_core's encoder: several times faster than json.dumps
            return pydantic_core.to_json(out).decode()
        except PydanticSerializationError:  # a lone surrogate (a memory store's text)
            return json.dumps(out, separators=(",", ":"))

    # -- folding ------------------------------------------------------------------------

    def add(self, e: StoredEvent) -> None:
        """Fold the run's next event (in ``seq`` order)."""
        self.index += 1
        self.seq = e.seq
        self.ts = e.ts
        if self.t0 is None:
            self.t0 = e.ts
        if type(e) is not RawEvent:  # (isinstance asks pydantic's metaclass: slower)
            handler = _HANDLERS.get(e.kind)
            if handler is not None:
                handler(self, e)
            sid = e.__dict__.get("step_id")  # (see _field)
        else:
            sid = getattr(e, "step_id", None)
        last = self.run["lastTs"]
        if last is None or e.ts > last:
            self.run["lastTs"] = e.ts
        if e.kind in CutCalls.KINDS:
            self._cut.add(e)
        self.kind, self.step_id = e.kind, sid if isinstance(sid, str) else None
        if isinstance(sid, str):
            seqs = self._step_seqs.get(sid)
            if seqs is None:
                i = self._ids.get(sid)  # the id as the step holds it: one string per id
                seqs = self._step_seqs[sid if i is None else self._steps[i][ID]] = array("q")
            seqs.append(e.seq)
        if (self.index + 1) % self.every == 0:
            self._mark()

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
        # a resume: the execution before it ran until then
        run["before"] = ran_before(run["before"], run["execTs"], run["lastTs"])
        run["execTs"] = e.ts
        # a run resumed after it finished (a cancelled run) runs again (as fold.js)
        run.update(status="running", workflow=e.workflow, endTs=None, error=None, duration=None,
                   prompt=0, completion=0, finished=False)
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
        added_by, seq = _intern(e.source_step), e.seq
        for p in e.steps:
            if not isinstance(p, dict):
                continue
            sid, kind, deps, parent = p.get("id"), p.get("kind"), p.get("deps"), p.get("parent")
            if not isinstance(sid, str):
                continue
            s = self._step(sid, seq)
            if isinstance(kind, str):
                s[KIND] = _intern(kind)
            if isinstance(deps, list):
                s[DEPS] = [d for d in deps if isinstance(d, str)]
            if isinstance(parent, str):
                s[PARENT] = _intern(parent)
            s[ADDED_BY] = added_by
            s[ADDED_SEQ] = seq
            s[REASON] = reason
            s[REPLANNED] = replanned

    def _on_step_scheduled(self, e: Any) -> None:
        s = self._step(e.step_id, e.seq)
        s[STATUS] = "scheduled"
        s[KIND] = _intern(e.step_kind) or s[KIND]
        s[POOL] = _intern(e.pool)
        if s[SCHEDULED_AT] is None:
            s[SCHEDULED_AT] = e.ts

    def _on_step_started(self, e: Any) -> None:
        s = self._step(e.step_id, e.seq)
        s[STATUS] = "running"
        s[KIND] = _intern(e.step_kind) or s[KIND]
        s[ATTEMPTS].append([e.attempt, e.ts, None, "running"])

    def _end_attempt(self, e: Any, status: str) -> list[Any]:
        s = self._step(e.step_id, e.seq)
        a = self._last_attempt(s, e.ts)
        a[_END], a[_OUTCOME] = e.ts, status
        s[STATUS] = status
        return s

    def _on_step_retrying(self, e: Any) -> None:
        self._add_tokens(self._end_attempt(e, "retrying"), e)

    def _on_step_succeeded(self, e: Any) -> None:
        s = self._end_attempt(e, "succeeded")
        s[LATENCY] = e.latency_s
        self._add_tokens(s, e)
        if s[DECISIONS]:  # its metadata says who decided each round, where it says
            by = _decisions_by(e.meta)
            for d in s[DECISIONS]:
                d[3] = by.get((d[0], d[1]), d[3])

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
        by = _field(e, "by")  # (recorded since it was; before, read from its reason)
        self._step(e.step_id, e.seq)[DECISIONS].append(
            [e.round, e.action, e.ts, by or _decided_by(e.action, e.reason, e.raw)])

    def _on_plan_error(self, e: Any) -> None:
        layer = _field(e, "layer")  # (recorded since it was; before, read from its text)
        self._step(e.step_id, e.seq)[PLAN_ERRORS].append(
            [e.round, e.code, e.ts, layer if layer is not None else _error_layer(e.error)])


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

