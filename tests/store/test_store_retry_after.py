"""The wait a server asked for (``step_retrying.retry_after_s``) is kept by every store
backend, and a trace written before Ponder recorded it still reads."""

from __future__ import annotations

import pytest

from orchestrator.runtime import events as ev
from orchestrator.store import StoreHook, TraceStore
from tests.orchestrator.runtime.test_retry_after import Busy, workflow

pytestmark = pytest.mark.anyio


async def test_a_retry_after_is_stored_with_the_retry(store: TraceStore) -> None:
    result = await workflow({"max_attempts": 2, "initial_backoff_s": 0, "jitter": 0},
                            Busy(retry_after_s=0.05)).run(hooks=[StoreHook(store)])
    assert result.ok, result.error
    (retrying,) = [e for e in await store.events(result.run_id) if e.kind == "step_retrying"]
    assert isinstance(retrying, ev.StepRetrying)
    assert (retrying.retry_after_s, retrying.delay_s) == (0.05, 0.05)
    record = await store.read_run(result.run_id)
    assert record is not None and record.status == "succeeded"


async def test_a_trace_written_before_reads_with_no_retry_after(store: TraceStore) -> None:
    result = await workflow({"max_attempts": 2, "initial_backoff_s": 0, "jitter": 0},
                            Busy(retry_after_s=None)).run(hooks=[StoreHook(store)])
    doc = await store.export_run(result.run_id)
    await store.delete_runs([result.run_id])
    for event in doc["events"]:
        if event["kind"] == "step_retrying":
            del event["retry_after_s"]  # as Ponder wrote it before
    await store.import_run(doc)
    (back,) = [e for e in await store.events(result.run_id) if e.kind == "step_retrying"]
    assert isinstance(back, ev.StepRetrying) and back.retry_after_s is None
    record = await store.read_run(result.run_id)
    assert record is not None and record.status == "succeeded"
