"""The viewer's token counts, the run's and each step's, are those ``ponder show --json``
gives (the store's fold of the run's events), at every point of a run while it is live
and once it has finished, on every store backend: a plan run (its planner's and joiner's
calls are recorded as ``plan_call`` events before its step's attempt ends with their
tokens), a plan run killed mid-plan and resumed (the cut attempt ends in a
``step_cancelled`` 'interrupted' with the tokens its calls had paid), the same run killed
and not resumed yet (its writer gone: the cut attempt's calls count on its open plan
step), a run whose step is retried, and a killed run whose writer died after the viewer
had read it (no event tells of its death)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import anyio
import pytest
from viewer_server import Api

from orchestrator import Workflow
from orchestrator.runtime._process import process_start
from orchestrator.runtime.durable import resume
from orchestrator.store import MemoryStore, StoreHook, fold_events
from orchestrator.viewer._replay import COMPLETION, ID, PROMPT
from planners.testing import ScriptedLLM
from tests.orchestrator.runtime.test_retry_usage import SLOW
from tests.planners.test_resume import JOINER, PLAN, _cut_mid_plan, _workflow

API = "/api/v1"
ROOT = Path(__file__).resolve().parents[2]


async def _plan_runs() -> tuple[list[Any], list[Any]]:
    """A finished plan run's events, and those of the same run killed mid-plan (its plan
    step in flight, its plan's calls recorded) and then resumed to its end."""
    recorder = MemoryStore()
    kept, whole = await _cut_mid_plan(recorder)
    finished = await recorder.events(whole.run_id)
    store = MemoryStore()
    await store.append(kept)
    llm = ScriptedLLM([JOINER, ("Question", PLAN)])
    resumed = await resume(kept, hooks=[StoreHook(store)],
                           registry=_workflow(llm, Counter()).registry)
    assert resumed.ok, resumed.error
    return finished, await store.events(resumed.run_id)


async def _retried_run() -> list[Any]:
    store = MemoryStore()
    result = await Workflow.from_yaml_text(SLOW).run(hooks=[StoreHook(store)])
    return await store.events(result.run_id)


@cache
def _traces() -> dict[str, list[Any]]:
    """The runs' events, made once (the simulated engine's retried run takes a second)."""
    finished, resumed = anyio.run(_plan_runs)
    return {"plan": finished, "resumed": resumed, "retried": anyio.run(_retried_run)}


def _pair(obj: Any) -> tuple[int, int]:
    if isinstance(obj, dict):
        return obj["prompt_tokens"], obj["completion_tokens"]
    return obj.prompt_tokens, obj.completion_tokens


def _check(api: Api, run_id: str, events: list[Any]) -> None:
    """The viewer's figures of the run as far as ``events`` go are the store's fold's."""
    shown = fold_events(events)
    want_run = _pair(shown)
    want_steps = {s.id: _pair(s) for s in shown.steps}
    where = f"after {events[-1].kind} (seq {events[-1].seq})"
    head = api.client.get(f"{API}/runs/{run_id}", params={"steps": "false"}).json()
    assert _pair(head["run"]) == want_run, where
    full = api.client.get(f"{API}/runs/{run_id}").json()
    assert _pair(full["run"]) == want_run, where
    assert {s["id"]: _pair(s) for s in full["run"]["steps"]} == want_steps, where
    # the run page's figures: the replay state it draws from
    frame = api.client.get(f"{API}/runs/{run_id}/keyframe").json()["keyframe"]
    page_steps = {s[ID]: (s[PROMPT], s[COMPLETION]) for s in frame["steps"]}
    assert page_steps == {k: v for k, v in want_steps.items() if k in page_steps}, where
    assert all(v == (0, 0) for k, v in want_steps.items() if k not in page_steps), where
    run = frame["run"]  # the page's total: the run's once finished, else its steps' sum
    total = ((run["prompt"], run["completion"]) if run["finished"] else
             (sum(p for p, _ in page_steps.values()), sum(c for _, c in page_steps.values())))
    assert total == want_run, where


def _grow(api: Api, events: list[Any]) -> None:
    """Store the run an event at a time, checking the viewer after each (live, then
    finished)."""
    run_id = events[0].run_id
    for i, e in enumerate(events):
        api.call(lambda e=e: api.store.append([e]))
        _check(api, run_id, events[: i + 1])


def test_a_plan_runs_tokens_count_its_calls_once_while_live_and_finished(api: Api) -> None:
    events = _traces()["plan"]
    calls = [e for e in events if e.kind == "plan_call"]
    assert calls and any(_pair(e.usage) != (0, 0) for e in calls)
    _grow(api, events)


def test_a_resumed_plan_runs_tokens_count_its_interrupted_attempt_once(
        api: Api, tmp_path: Path) -> None:
    events = _traces()["resumed"]
    assert any(e.kind == "step_cancelled" and e.reason.startswith("interrupted")
               and _pair(e.usage) != (0, 0) for e in events)
    assert [e.kind for e in events].count("run_started") == 2
    _grow(api, events)
    db = tmp_path / "trace.db"  # the SQLite backend's: ponder show itself, once
    if db.exists():
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator.cli", "show", events[0].run_id, "--json",
             "--db", str(db)], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        shown = json.loads(proc.stdout)
        full = api.client.get(f"{API}/runs/{events[0].run_id}").json()["run"]
        assert _pair(full) == _pair(shown)
        assert ({s["id"]: _pair(s) for s in full["steps"]}
                == {s["id"]: _pair(s) for s in shown["steps"]})


def _killed(events: list[Any]) -> list[Any]:
    """The events as a process that died wrote them (its pid gone)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return [e.model_copy(update={"writer_pid": proc.pid, "writer_start": None})
            if e.kind == "run_started" else e for e in events]


def test_an_interrupted_plan_runs_tokens_count_its_cut_attempts_calls(api: Api) -> None:
    """Killed mid-plan, not resumed: the plan step's recorded calls are spent, on the
    open step and in the run's total, in the viewer as in `ponder show`."""
    events = _traces()["resumed"]
    second = [i for i, e in enumerate(events) if e.kind == "run_started"][1]
    kept = _killed(events[:second])
    api.call(lambda: api.store.append(kept))
    shown = fold_events(kept)
    cut = [e for e in kept if e.kind == "plan_call" and e.step_id == "p"]
    want = (sum(e.usage.prompt_tokens for e in cut), sum(e.usage.completion_tokens for e in cut))
    assert want != (0, 0)
    assert {s.id: _pair(s) for s in shown.steps}["p"] == want
    run_id = kept[0].run_id
    head = api.client.get(f"{API}/runs/{run_id}", params={"steps": "false"}).json()
    assert head["finished"] is False and head["interrupted"] is True
    assert _pair(head["run"]) == _pair(shown)
    full = api.client.get(f"{API}/runs/{run_id}").json()
    assert _pair(full["run"]) == _pair(shown)
    assert {s["id"]: _pair(s) for s in full["run"]["steps"]} == {
        s.id: _pair(s) for s in shown.steps}
    # the run page's figures: the open plan step has its calls' tokens, the total too
    frame = api.client.get(f"{API}/runs/{run_id}/keyframe").json()["keyframe"]
    page = {s[ID]: (s[PROMPT], s[COMPLETION]) for s in frame["steps"]}
    assert page["p"] == want
    _check(api, run_id, kept)


def test_an_interrupted_plan_runs_page_agrees_with_show_after_every_event(api: Api) -> None:
    """The killed run stored an event at a time, its writer gone throughout: after each,
    the page's figures (its replay state) are `ponder show`'s, the cut calls counted."""
    events = _traces()["resumed"]
    second = [i for i, e in enumerate(events) if e.kind == "run_started"][1]
    kept = _killed(events[:second])
    assert any(e.kind == "plan_call" and _pair(e.usage) != (0, 0) for e in kept)
    _grow(api, kept)


def test_a_retried_steps_attempts_count_once_while_live_and_finished(api: Api) -> None:
    events = _traces()["retried"]
    assert any(e.kind == "step_retrying" and _pair(e.usage) != (0, 0) for e in events)
    _grow(api, events)


@pytest.mark.parametrize("name", ["plan", "resumed"])
def test_a_live_plan_runs_headline_has_no_plan_call_tokens_of_an_open_attempt(
        api: Api, name: str) -> None:
    """The case that was wrong: the plan step in flight, its calls recorded; its tokens
    are not in the run's total until its attempt ends (as `ponder show` says)."""
    events = _traces()[name]
    last_call = max(i for i, e in enumerate(events) if e.kind == "plan_call")
    live = events[: last_call + 1]
    api.call(lambda: api.store.append(live))
    head = api.client.get(f"{API}/runs/{events[0].run_id}", params={"steps": "false"}).json()
    assert head["finished"] is False
    assert _pair(head["run"]) == _pair(fold_events(live))


def test_a_runs_figures_follow_its_writer_dying_with_no_event_after(api: Api) -> None:
    """Read while its writer lives, then the writer killed with no event after it (no
    new event for the viewer to fold): the figures read again count the cut plan
    attempt's calls as `ponder show` then does, not the live run's cached ones."""
    events = _traces()["resumed"]
    second = [i for i, e in enumerate(events) if e.kind == "run_started"][1]
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        kept = [e.model_copy(update={"writer_pid": writer.pid,
                                     "writer_start": process_start(writer.pid)})
                if e.kind == "run_started" else e for e in events[:second]]
        run_id = kept[0].run_id
        api.call(lambda: api.store.append(kept))
        # live: the plan step's calls count once its attempt ends
        assert {s.id: _pair(s) for s in fold_events(kept).steps}["p"] == (0, 0)
        _check(api, run_id, kept)  # cached: the run's summary, its steps and keyframe
        head = api.client.get(f"{API}/runs/{run_id}", params={"steps": "false"}).json()
        assert head["interrupted"] is False and head["cut"] == {}
    finally:
        writer.kill()
        writer.wait()
    shown = fold_events(kept)
    assert {s.id: _pair(s) for s in shown.steps}["p"] != (0, 0)
    head = api.client.get(f"{API}/runs/{run_id}", params={"steps": "false"}).json()
    assert head["interrupted"] is True and head["cut"] != {}
    _check(api, run_id, kept)
