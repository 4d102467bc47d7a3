"""The run page's replay keyframes, kept by the server while it reads a run."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Sequence
from typing import Any

from viewer_traces import big_trace, research_trace, resumed_run, xss_trace

from orchestrator.store import StoredEvent
from orchestrator.store._codec import decode
from orchestrator.viewer._graph import GraphFold
from orchestrator.viewer._replay import (
    ADDED_BY,
    ATTEMPTS,
    DECISIONS,
    KIND,
    PARENT,
    PLAN_ERRORS,
    POOL,
    REASON,
    STATUS,
    Keyframe,
    ReplayFold,
)


def _fold(events: Sequence[StoredEvent], every: int, *, snapshots: bool = False) -> ReplayFold:
    fold = ReplayFold(every)
    for e in events:
        fold.add(e)
        if snapshots:  # the page asking for the tip between two keyframes
            fold.snapshot()
    return fold


def _as_read(events: Sequence[StoredEvent]) -> list[StoredEvent]:
    """The events as a store reads them back: each decoded from its own JSON."""
    out = []
    for e in events:
        payload = json.loads(e.model_dump_json())
        envelope = [payload.pop(k) for k in ("run_id", "seq", "kind", "ts")]
        out.append(decode(*envelope, payload))
    return out


def _read(kf: Keyframe, fold: ReplayFold) -> dict[str, Any]:
    """The keyframe as the page reads it, each string index replaced by its string (the
    table's order depends on when steps were encoded)."""
    doc = json.loads(kf.to_json(fold))
    text = doc.pop("strings").__getitem__
    doc.pop("t0")  # the first event's time, once folded: times are relative to it
    for step in doc["steps"]:
        step += [None] * (20 - len(step))
        for i in (STATUS, KIND, PARENT, ADDED_BY, REASON, POOL):
            step[i] = None if step[i] is None else text(step[i])
        step[ATTEMPTS] = [[*a[:3], text(a[3])] for a in step[ATTEMPTS] or []]
        step[DECISIONS] = [[d[0], text(d[1]), d[2]] for d in step[DECISIONS] or []]
        step[PLAN_ERRORS] = [[p[0], text(p[1]), p[2]] for p in step[PLAN_ERRORS] or []]
    return doc  # type: ignore[no-any-return]


def test_each_keyframe_is_the_run_folded_up_to_it_whatever_was_asked_between() -> None:
    events = research_trace("kf").events + xss_trace("kf").events[1:]
    events = [e.model_copy(update={"seq": i, "run_id": "kf"}) for i, e in enumerate(events)]
    every = 3
    kept = _fold(events, every, snapshots=True)
    n_keyframes = len(events) // every + 1
    assert kept.n_keyframes == n_keyframes
    for k in range(n_keyframes):
        index = k * every - 1
        alone = _fold(events[:index + 1], 10**9)  # no keyframe: its state at the end
        expected = alone.snapshot()
        for at in (index, index + every - 1):  # the last keyframe at or before `at`
            assert _read(kept.keyframe_at(at), kept) == _read(expected, alone), (k, at)
    last = events[-1]
    tip = kept.snapshot()
    assert (tip.index, tip.kind, tip.step_id) == (len(events) - 1, last.kind, None)
    at = kept.keyframe_at(every * 4 - 1)
    assert (at.kind, at.step_id) == (events[at.index].kind, getattr(events[at.index], "step_id", None))


def _traced_kib(events: Sequence[StoredEvent], every: int) -> float:
    tracemalloc.start()
    try:
        fold = _fold(events, every)
        size = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert fold.keyframe_at(len(events)).index == len(events) // every * every - 1
    return size / 1024


def test_keyframes_keep_what_changed_between_them_not_every_step_again() -> None:
    events = big_trace("mem", 1500).events  # 4,505 events, 1,501 steps
    without = _traced_kib(events, 10**9)
    with_keyframes = _traced_kib(events, 10)  # 450 keyframes
    # each keyframe used to hold a pointer per step (on average 750 here: 2.6 MiB in
    # all); now only the steps changed since the one before (4,500 changes in all)
    assert with_keyframes - without < 1200, (without, with_keyframes)


def test_a_text_repeated_over_many_steps_is_kept_once() -> None:
    events = _as_read(big_trace("texts", 50).events)
    replay, graph = ReplayFold(), GraphFold()
    for e in events:
        replay.add(e)
        graph.add(e)
    steps = replay._steps[1:]  # after the plan step
    assert len(steps) == 50
    assert len({id(s[KIND]) for s in steps}) == 1 and len({id(s[POOL]) for s in steps}) == 1
    nodes = graph.steps()[1:]
    assert len({id(n.kind) for n in nodes}) == 1 and len({id(n.parent) for n in nodes}) == 1
    assert nodes[0].kind is steps[0][KIND]


def test_a_run_resumed_after_it_finished_is_running_again_in_its_keyframe() -> None:
    events = _as_read(resumed_run("resumed"))
    run = _fold(events, 2).snapshot().run
    assert run["status"] == "running"
    assert run["finished"] is False
    assert (run["duration"], run["prompt"], run["completion"]) == (None, 0, 0)
