"""Recently viewed runs' events, kept in memory and topped up incrementally.

A run page asks for the same events three times (the page, the run, its events),
and a live run is polled every fraction of a second; events are append-only, so
the viewer keeps each recently viewed run's events and only asks the store for
those after the last one it has.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import anyio

from orchestrator.runtime.events import UsageModel
from orchestrator.store import RunNotFound, RunRecord, StoredEvent, fold_events
from orchestrator.viewer._graph import GraphStep, graph_of
from orchestrator.viewer._reader import TraceReader

_RUN_KINDS = ("run_started", "run_finished")


@dataclass
class RunEvents:
    """One run's events as far as they were read.

    :ivar events: the events, in ``seq`` order.
    :ivar texts: each event as compact JSON text, parallel to ``events``.
    :ivar finished: the last run-level event is ``run_finished``.
    """

    run_id: str
    events: list[StoredEvent] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    finished: bool = False
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    used: float = field(default_factory=time.monotonic)
    _record: tuple[int, RunRecord] | None = None
    _headline: tuple[int, RunRecord] | None = None
    _graph: tuple[int, list[GraphStep]] | None = None

    @property
    def last_seq(self) -> int | None:
        """The ``seq`` of the last event read, ``None`` before any."""
        return self.events[-1].seq if self.events else None

    def add(self, new: list[StoredEvent]) -> None:
        """Append events read after :attr:`last_seq`."""
        for e in new:
            self.events.append(e)
            self.texts.append(e.model_dump_json())
            if e.kind in _RUN_KINDS:
                self.finished = e.kind == "run_finished"

    def index_after(self, after_seq: int | None) -> int:
        """The index in :attr:`events` of the first event with ``seq > after_seq``."""
        if after_seq is None:
            return 0
        # seqs increase but may have gaps: binary search on them
        lo, hi = 0, len(self.events)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.events[mid].seq <= after_seq:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def page(self, after_seq: int | None, limit: int) -> tuple[list[str], int | None, bool]:
        """The events with ``seq > after_seq``, at most ``limit`` of them.

        :returns: their JSON texts, the last one's ``seq`` (``None`` when there is none),
            and whether events after it were read.
        """
        start = self.index_after(after_seq)
        end = min(len(self.texts), start + limit)
        last_seq = self.events[end - 1].seq if end > start else None
        return self.texts[start:end], last_seq, end < len(self.texts)

    def record(self) -> RunRecord:
        """The run folded from its events (cached until more events arrive)."""
        if self._record is None or self._record[0] != len(self.events):
            self._record = (len(self.events), fold_events(self.events))
        return self._record[1]

    def headline(self) -> RunRecord:
        """The run without its steps, folded from its run-level events only.

        What :meth:`record` gives less ``steps``, without folding every step of a
        large run: token counts are summed here while the run has not finished.
        """
        if self._headline is None or self._headline[0] != len(self.events):
            run_level = [e for e in self.events if e.kind in _RUN_KINDS] or self.events[:1]
            update: dict[str, Any] = {
                "steps": [],
                "n_events": len(self.events),
                "next_seq": self.events[-1].seq + 1,
            }
            if not self.finished:
                prompt = completion = 0
                for e in self.events:
                    usage = getattr(e, "usage", None)
                    if isinstance(usage, UsageModel):
                        prompt += usage.prompt_tokens
                        completion += usage.completion_tokens
                update.update(prompt_tokens=prompt, completion_tokens=completion)
            record = fold_events(run_level).model_copy(update=update)
            self._headline = (len(self.events), record)
        return self._headline[1]

    def graph(self) -> list[GraphStep]:
        """The run's DAG nodes (cached until more events arrive)."""
        if self._graph is None or self._graph[0] != len(self.events):
            self._graph = (len(self.events), graph_of(self.events))
        return self._graph[1]


class EventCache:
    """Keeps the events of the ``max_runs`` most recently used runs.

    :param reader: the store read from.
    :param max_runs: runs kept; the least recently used is dropped first.
    """

    def __init__(self, reader: TraceReader, max_runs: int = 8) -> None:
        self._reader = reader
        self._max_runs = max_runs
        self._runs: OrderedDict[str, RunEvents] = OrderedDict()

    async def get(self, run_id: str) -> RunEvents:
        """The run's events, including every event stored until now.

        :raises RunNotFound: when the store holds no event of the run.
        :raises StoreError: when the store cannot be read.
        """
        entry = self._runs.get(run_id)
        if entry is None:
            entry = RunEvents(run_id)
            self._runs[run_id] = entry
            while len(self._runs) > self._max_runs:
                self._runs.popitem(last=False)
        self._runs.move_to_end(run_id)
        try:
            await self.refresh(entry)
        except RunNotFound:
            if self._runs.get(run_id) is entry:
                del self._runs[run_id]
            raise
        return entry

    async def refresh(self, entry: RunEvents) -> None:
        """Read the events stored after ``entry``'s last one into it.

        A live stream holds its run's entry and refreshes it here, so that it never
        reads the whole run again when other runs pushed the entry out of the cache.

        :raises RunNotFound: when the store holds no event of the run.
        :raises StoreError: when the store cannot be read.
        """
        entry.used = time.monotonic()
        async with entry.lock:
            known = entry.last_seq
            # From the last event read on, which comes back while the run is stored: a
            # run deleted meanwhile (ponder gc) is not served, nor followed, from memory.
            new = await self._reader.events(
                entry.run_id, after_seq=None if known is None else known - 1
            )
            if known is not None:
                if not new or new[0].seq != known:
                    raise RunNotFound(entry.run_id)
                new = new[1:]
            entry.add(new)
        if not entry.events:
            raise RunNotFound(entry.run_id)
