"""A run killed while its plan step was in flight, not resumed yet: ``ponder show`` (the
store's fold) counts the tokens the cut attempt's recorded ``plan_call`` events paid, on
the still-open plan step and in the run's total; once resumed, the ``step_cancelled``
'interrupted' that carries the same tokens takes their place (nothing counted twice),
and the resumed run shows what an uninterrupted one does; on every store backend."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest

from orchestrator.runtime.durable import resume
from orchestrator.store import MemoryStore, StoreHook, TraceStore, fold_events, is_interrupted
from orchestrator.store.fold import RunFold
from planners.testing import ScriptedLLM
from tests.planners.test_resume import JOINER, PLAN, _cut_mid_plan, _workflow

pytestmark = pytest.mark.anyio


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _killed(events: list[Any]) -> list[Any]:
    """The events as a process that died wrote them (its pid gone)."""
    return [e.model_copy(update={"writer_pid": _dead_pid(), "writer_start": None})
            if e.kind == "run_started" else e for e in events]


def _pair(obj: Any) -> tuple[int, int]:
    return obj.prompt_tokens, obj.completion_tokens


def _calls(events: list[Any], step_id: str) -> tuple[int, int]:
    calls = [e for e in events if e.kind == "plan_call" and e.step_id == step_id]
    return (sum(e.usage.prompt_tokens for e in calls),
            sum(e.usage.completion_tokens for e in calls))


def _steps_sum(rec: Any) -> tuple[int, int]:
    return (sum(s.prompt_tokens for s in rec.steps), sum(s.completion_tokens for s in rec.steps))


async def _runs() -> tuple[list[Any], Any, list[Any]]:
    """The cut run's events, the uninterrupted run's record, and the resumed run's
    events (its resume's writer this process)."""
    recorder = MemoryStore()
    kept, whole = await _cut_mid_plan(recorder)
    uninterrupted = fold_events(await recorder.events(whole.run_id))
    into = MemoryStore()
    await into.append(kept)
    llm = ScriptedLLM([JOINER, ("Question", PLAN)])
    resumed = await resume(kept, hooks=[StoreHook(into)],
                           registry=_workflow(llm, Counter()).registry)
    assert resumed.ok, resumed.error
    return kept, uninterrupted, await into.events(resumed.run_id)


async def test_an_interrupted_plan_steps_spent_tokens_show_until_and_after_resume(
        store: TraceStore) -> None:
    kept, whole, resumed = await _runs()
    cut = _calls(kept, "p")
    assert cut != (0, 0)
    killed = _killed(kept)
    await store.append(killed)
    stored = await store.events(kept[0].run_id)
    assert is_interrupted(stored)
    shown = fold_events(stored)
    p = next(s for s in shown.steps if s.id == "p")
    assert p.status == "running" and _pair(p) == cut
    assert _pair(shown) == _steps_sum(shown) and _pair(shown)[0] >= cut[0]
    # the same events, their writer alive: a live attempt's calls count when it ends
    live = fold_events(kept)
    assert _pair(next(s for s in live.steps if s.id == "p")) == (0, 0)
    assert _pair(shown) == (_pair(live)[0] + cut[0], _pair(live)[1] + cut[1])

    # resumed (the kill's writer gone, the resume's alive): its step_cancelled
    # 'interrupted' carries the cut tokens, counted once from then on; never more than
    # the uninterrupted run's; finished, it is the uninterrupted run
    after = [e for e in resumed if e.seq >= len(kept)]
    await store.append(after)
    stored = await store.events(kept[0].run_id)
    whole_p = next(_pair(s) for s in whole.steps if s.id == "p")
    fold = RunFold(kept[0].run_id)
    ended = False
    for e in stored:
        fold.apply(e)
        ended = ended or (e.kind == "step_cancelled" and e.step_id == "p")
        if e.seq < len(kept):
            continue
        rec = fold.record()
        p = next(s for s in rec.steps if s.id == "p")
        assert cut[0] <= _pair(p)[0] <= whole_p[0] if ended else _pair(p) == (0, 0), e
        assert _pair(rec)[0] <= _pair(whole)[0] and _pair(rec)[1] <= _pair(whole)[1], e
        if not fold.finished:
            assert _pair(rec) == _steps_sum(rec), e
    assert fold.finished and ended
    final = fold_events(stored)
    assert [e.kind for e in stored].count("step_cancelled") >= 1
    assert _pair(final) == _pair(whole) == _steps_sum(final)
    assert ({s.id: _pair(s) for s in final.steps if s.id == "p"}
            == {s.id: _pair(s) for s in whole.steps if s.id == "p"})


async def test_a_live_plan_attempts_calls_count_when_it_ends() -> None:
    kept, _, _ = await _runs()
    assert all(e.writer_pid == os.getpid() for e in kept if e.kind == "run_started")
    assert not is_interrupted(kept)
    rec = fold_events(kept)
    assert _pair(next(s for s in rec.steps if s.id == "p")) == (0, 0)
