"""`ponder gc` while another process resumes an old cancelled run: gc lists the runs to
delete, then deletes them. A run that a resume began in between (its ``run_started``
stored: running again) is not deleted under it, nor are its sub-workflows' runs, which
the resume goes on with; the others go. (It was deleted with them: the resumed run went
on writing events of a run that no longer had its first ones.) On every store backend."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from orchestrator.runtime import events as ev
from orchestrator.store import RunInfo, TraceStore
from tests.store.test_store_gc import NOW, _ids, _run

pytestmark = pytest.mark.anyio


async def test_gc_leaves_a_run_resumed_after_it_listed_it(store: TraceStore) -> None:
    await store.append(_run("old", 30, "cancelled"))
    await store.append(_run("old.sub", 30, "cancelled", "old"))
    await store.append(_run("done", 30, "succeeded"))
    last = (await store.events("old"))[-1]
    resumed = ev.RunStarted(run_id="old", seq=last.seq + 1, ts=NOW, workflow="w", inputs={},
                            resumed=True)
    listed = store.list_runs

    async def resumed_meanwhile(*args: Any, **kwargs: Any) -> list[RunInfo]:
        page = await listed(*args, **kwargs)
        if not resumed_once:  # a resume of `old` began once gc had listed it
            resumed_once.append(True)
            await store.append([resumed])
        return page

    resumed_once: list[bool] = []
    store.list_runs = resumed_meanwhile  # type: ignore[method-assign]
    gone = await store.delete_runs_older_than(timedelta(days=7), now=NOW)
    assert await _ids(store) == {"old", "old.sub"}
    assert gone == 1
    assert (await store.events("old"))[-1] == resumed
    assert (await store.run_info("old")).status == "running"  # type: ignore[union-attr]
