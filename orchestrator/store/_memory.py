"""The in-memory trace store: the fake that tests use, and ``memory://``."""

from __future__ import annotations

import heapq
from collections.abc import Collection, Sequence

from anyio.lowlevel import checkpoint

from orchestrator.store._base import TraceStore, _page_start, _runs_window
from orchestrator.store._codec import (
    check_batch,
    check_column_text,
    conflict_error,
    continued_runs,
    decode_rows,
    encode_row,
    run_gone,
    utf8_safe,
)
from orchestrator.store._errors import StoreError
from orchestrator.store._models import RunFilter, RunInfo, StoredEvent
from orchestrator.store.fold import fold_info

_RUN_KINDS = frozenset({"run_started", "run_finished"})


class MemoryStore(TraceStore):
    """A :class:`TraceStore` in a dict, with the same observable behaviour as
    :class:`SqlStore`: payloads go through JSON (so reads return copies and a
    non-serializable output fails here too), batches are atomic, conflicts raise.

    Nothing survives the process.
    """

    def __init__(self) -> None:
        self._events: dict[str, dict[int, tuple[str, float, str]]] = {}
        self._step_ids: dict[str, set[str]] = {}
        self._runs: dict[str, RunInfo] = {}
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the memory trace store is closed", url="memory://")

    async def append(self, events: Sequence[StoredEvent], *,
                     continues: Collection[str] = ()) -> None:
        await checkpoint()
        self._check_open()
        if not events:
            return
        for run_id in continued_runs(events, continues):
            if run_id not in self._runs and run_id not in self._events:
                raise run_gone(run_id)
        try:
            for e in events:
                check_column_text(e)
            # the payload as the SQL stores write it: JSON text, a lone surrogate escaped
            rows = [encode_row(e) for e in events]
        except UnicodeEncodeError:  # as the SQL store does: see utf8_safe
            events = utf8_safe(events)  # the runs' index below reads them too
            rows = [encode_row(e) for e in events]
        self._check_conflicts(events)
        # Nothing below can fail, so the batch lands whole.
        for run_id, seq, kind, step_id, ts, payload in rows:
            self._events.setdefault(run_id, {})[seq] = (kind, ts, payload)
            steps = self._step_ids.setdefault(run_id, set())
            if step_id is not None:
                steps.add(step_id)
        for event in events:
            if event.kind in _RUN_KINDS:
                new = fold_info(
                    self._runs.get(event.run_id),
                    event,
                    n_steps=len(self._step_ids[event.run_id]),
                )
                if new is not None:
                    self._runs[event.run_id] = new

    def _check_conflicts(self, events: Sequence[StoredEvent]) -> None:
        check_batch(events)
        for e in events:
            if e.seq in self._events.get(e.run_id, ()):
                raise conflict_error(e.run_id, e.seq)

    async def events(self, run_id: str, *, after_seq: int | None = None,
                     kinds: Collection[str] | None = None) -> list[StoredEvent]:
        await checkpoint()
        self._check_open()
        rows = self._events.get(run_id, {})
        return decode_rows(run_id, [
            (seq, kind, ts, payload)
            for seq, (kind, ts, payload) in sorted(rows.items())
            if (after_seq is None or seq > after_seq) and (kinds is None or kind in kinds)
        ])  # fmt: skip

    async def events_page(
        self, run_id: str, *, after_seq: int | None = None, limit: int
    ) -> list[StoredEvent]:
        await checkpoint()
        self._check_open()
        after = _page_start(after_seq, limit)
        rows = self._events.get(run_id, {})
        seqs = heapq.nsmallest(limit, (seq for seq in rows if seq > after))
        return decode_rows(run_id, [(seq, *rows[seq]) for seq in seqs])

    async def last_event(self, run_id: str, *, after_seq: int | None = None
                         ) -> StoredEvent | None:
        await checkpoint()
        self._check_open()
        rows = self._events.get(run_id)
        if not rows:
            return None
        seq = max(rows)
        if after_seq is not None and seq <= after_seq:
            return None
        return decode_rows(run_id, [(seq, *rows[seq])])[0]

    async def run_info(self, run_id: str) -> RunInfo | None:
        await checkpoint()
        self._check_open()
        return self._runs.get(run_id)

    async def list_runs(
        self, filters: RunFilter | None = None, *, limit: int = 50, offset: int = 0
    ) -> list[RunInfo]:
        await checkpoint()
        self._check_open()
        window = _runs_window(filters, limit, offset)
        if window is None:
            return []
        flt, limit, offset = window
        runs = sorted(
            (r for r in self._runs.values() if flt.matches(r)),
            key=lambda r: (r.started_at, r.id),
            reverse=True,
        )
        return runs[offset : offset + limit]

    async def delete_runs(self, run_ids: Sequence[str]) -> int:
        await checkpoint()
        self._check_open()
        deleted = 0
        for run_id in set(run_ids):
            self._events.pop(run_id, None)
            self._step_ids.pop(run_id, None)
            deleted += self._runs.pop(run_id, None) is not None
        return deleted

    async def _delete_collected(self, groups: Sequence[tuple[str, list[str], bool]]) -> int:
        await checkpoint()
        self._check_open()
        deleted = 0
        for top, below, finished_only in groups:  # checked and deleted without a yield
            info = self._runs.get(top)
            if finished_only and (info is None or info.status == "running"):
                continue
            for run_id in (top, *below):
                self._events.pop(run_id, None)
                self._step_ids.pop(run_id, None)
                deleted += self._runs.pop(run_id, None) is not None
        return deleted

    async def close(self) -> None:
        self._closed = True
