"""A resume of a run killed while its sub-workflow ran reads that child run's events once
before the run goes on, though it asks several things of it (is it being resumed, what it
spent, until when it worked, whether it is abandoned): it read them once for each, a
round trip of the whole trace to the store per question. With ``children=`` the step
that takes the child up reads it once more as it does, to see it as it is then. On every
store backend."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from orchestrator.runtime.durable import recorded_children, resume
from orchestrator.store import StoreHook, TraceStore
from tests.orchestrator.runtime.test_resume_abandoned_child_superseded import _killed_in_child

pytestmark = pytest.mark.anyio


class _CountingStore:
    """A trace store that counts the reads of each run's whole trace (``events`` with no
    ``kinds``) and passes everything on to ``store``."""

    def __init__(self, store: TraceStore) -> None:
        self.store = store
        self.reads: Counter[str] = Counter()

    async def events(self, run_id: str, *args: Any, **kwargs: Any) -> Sequence[Any]:
        if not kwargs.get("kinds"):
            self.reads[run_id] += 1
        return await self.store.events(run_id, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


async def test_an_abandoned_child_is_read_once(tmp_path: Path,
                                               trace_store: TraceStore) -> None:
    _, kept, child_id = await _killed_in_child(tmp_path, trace_store)
    counting = _CountingStore(trace_store)
    resumed = await resume(kept, hooks=[StoreHook(counting)])  # type: ignore[arg-type]
    assert resumed.ok, resumed.error
    assert (await trace_store.events(child_id))[-1].superseded_by == resumed.run_id
    assert counting.reads[child_id] == 1


async def test_a_child_taken_up_is_read_once_before_and_once_as_it_goes_on(
        tmp_path: Path, trace_store: TraceStore) -> None:
    whole, kept, child_id = await _killed_in_child(tmp_path, trace_store)
    counting = _CountingStore(trace_store)
    resumed = await resume(kept, hooks=[StoreHook(counting)],  # type: ignore[arg-type]
                           children=recorded_children(counting))
    assert resumed.ok and resumed.output == whole.output, resumed.error
    assert counting.reads[child_id] == 2
