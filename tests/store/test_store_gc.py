"""Garbage collection with child runs: a run goes with its sub-workflows' runs (whatever
their status or age), a sub-workflow's run whose parent is gone goes once old, and forks
are judged on their own."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchestrator.store import StoredEvent, TraceStore
from tests.store.conftest import full_run

pytestmark = pytest.mark.anyio

DAY = 86_400.0
NOW = 100 * DAY


def _run(run_id: str, age_days: float, status: str | None, parent: str | None = None,
         *, fork: bool = False) -> list[StoredEvent]:
    """A run started ``age_days`` before NOW; with ``parent``, one of its sub-workflows'
    runs (or, ``fork``, a fork of it)."""
    events = full_run(run_id, started=NOW - age_days * DAY, status=status, parent_run_id=parent)
    if parent is not None and not fork:
        events[0] = events[0].model_copy(update={"parent_attempt": 1})
    return events


RUNS: list[tuple[str, float, str | None, str | None, bool]] = [
    # id, age (days), status (None: running), parent, fork
    ("top", 30, "succeeded", None, False),
    ("top.sub", 29, None, "top", False),  # left interrupted
    ("top.sub.sub", 29, None, "top.sub", False),
    ("top.late-sub", 1, "succeeded", "top", False),  # the run took a month
    ("top.fork", 2, "succeeded", "top", True),
    ("top.old-fork", 20, "failed", "top", True),
    ("top.old-fork-running", 20, None, "top", True),
    ("live", 30, None, None, False),
    ("live.sub", 29, "succeeded", "live", False),
    ("live.sub2", 29, None, "live", False),
    ("orphan", 20, None, "gone", False),
    ("young-orphan", 2, None, "gone", False),
    ("young", 2, "succeeded", None, False),
    ("young.sub", 2, None, "young", False),
]


async def _ids(store: TraceStore) -> set[str]:
    return {r.id for r in await store.list_runs(limit=100)}


async def test_gc_takes_sub_workflow_runs_with_their_parent(store: TraceStore) -> None:
    for run_id, age, status, parent, fork in RUNS:
        await store.append(_run(run_id, age, status, parent, fork=fork))

    deleted = await store.delete_runs_older_than(timedelta(days=7), now=NOW)
    gone = {"top", "top.sub", "top.sub.sub", "top.late-sub", "top.old-fork", "orphan"}
    assert deleted == len(gone)
    assert await _ids(store) == {r[0] for r in RUNS} - gone
    for run_id in gone:
        assert await store.events(run_id) == [], run_id

    deleted = await store.delete_runs_older_than(timedelta(days=7), now=NOW,
                                                 include_unfinished=True)
    assert deleted == 4  # live with its two children, the running fork
    assert await _ids(store) == {"top.fork", "young-orphan", "young", "young.sub"}


async def test_gc_keeps_the_children_of_a_run_it_keeps(store: TraceStore) -> None:
    """An old child (finished or not) of a young or running run stays: the run may
    still be resumed and continue it, and shows it."""
    await store.append(_run("p", 1, None))
    await store.append(_run("p.done", 20, "succeeded", "p"))
    await store.append(_run("p.cut", 20, None, "p"))
    assert await store.delete_runs_older_than(timedelta(days=7), now=NOW) == 0
    assert await _ids(store) == {"p", "p.done", "p.cut"}

