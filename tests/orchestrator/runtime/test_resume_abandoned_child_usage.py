"""A run killed while a sub-workflow (a ``workflow`` step, a spawn's child) ran, resumed
without ``children``: the step's next attempt starts a new child run, and what the
abandoned child had spent is still spent. The cut attempt's ``step_cancelled`` counts it,
and so does the run's total, found in the trace store the resume records to (its
``StoreHook``), on every store backend. (They were left out: the run's total counted the
new child only, less than ``ponder resume``, which continues the child, counted.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.runtime.contracts import Usage
from orchestrator.runtime.durable import recorded_children, resume
from orchestrator.store import MemoryStore, StoreHook, TraceStore
from tests.orchestrator.runtime.test_durable_children import TALK
from tests.store.conftest import recorded_with_child

pytestmark = pytest.mark.anyio

MAIN = "name: main\nsteps:\n  - {id: w, kind: workflow, workflow: talk.yaml}\n"
SPAWN = """\
name: main
steps:
  - {id: s, kind: spawn, messages: [1], workflow: talk.yaml}
"""


def _usage(e: Any) -> Usage:
    return Usage(e.usage.prompt_tokens, e.usage.completion_tokens)


def _spent(events: list[Any]) -> Usage:
    total = Usage()
    for e in events:
        if e.kind == "step_succeeded":
            total += _usage(e)
    return total


async def _killed_in_child(tmp_path: Path, main: str, step: str
                           ) -> tuple[Any, list[Any], list[Any]]:
    """The whole run, the parent's events up to ``step``'s ``step_started`` (killed
    there) and its child's events up to its `c2`'s ``step_succeeded``."""
    whole, recorder, _, child_id = await recorded_with_child(tmp_path, main,
                                                             {"talk.yaml": TALK})
    assert whole.ok, whole.error
    parent = await recorder.events(whole.run_id)
    child = await recorder.events(child_id)
    cut = next(e.seq for e in parent if e.kind == "step_started" and e.step_id == step)
    child_cut = next(e.seq for e in child if e.kind == "step_succeeded" and e.step_id == "c2")
    return whole, [e for e in parent if e.seq <= cut], [e for e in child if e.seq <= child_cut]


@pytest.mark.parametrize(("main", "step"), [(MAIN, "w"), (SPAWN, "s[0]")],
                         ids=["workflow", "spawn"])
async def test_an_abandoned_childs_tokens_count(
        tmp_path: Path, trace_store: TraceStore, main: str, step: str) -> None:
    whole, kept, child = await _killed_in_child(tmp_path, main, step)
    abandoned = _spent(child)
    assert abandoned.completion_tokens > 0
    await trace_store.append(kept)
    await trace_store.append(child)

    resumed = await resume(kept, hooks=[StoreHook(trace_store)])
    assert resumed.ok, resumed.error
    expected = whole.usage + abandoned  # a new child, paid whole, and what the first spent
    assert resumed.usage == expected
    after = (await trace_store.events(resumed.run_id))[len(kept):]
    (marker,) = [e for e in after if e.kind == "step_cancelled" and e.step_id == step]
    assert marker.attempt == 1 and _usage(marker) == abandoned
    shown = await trace_store.read_run(resumed.run_id)
    assert Usage(shown.prompt_tokens, shown.completion_tokens) == expected
    # the steps add up to it
    assert Usage(sum(s.prompt_tokens for s in shown.steps),
                 sum(s.completion_tokens for s in shown.steps)) == expected


async def test_a_continued_child_is_paid_once(tmp_path: Path) -> None:
    """With ``children`` the child goes on: the run costs what the whole run did."""
    whole, kept, child = await _killed_in_child(tmp_path, MAIN, "w")
    store = MemoryStore()
    await store.append(kept)
    await store.append(child)
    resumed = await resume(kept, hooks=[StoreHook(store)], children=recorded_children(store))
    assert resumed.ok and resumed.usage == whole.usage
