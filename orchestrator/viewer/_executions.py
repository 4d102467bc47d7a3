"""How long the runs the runs list shows as running or interrupted have run: a resumed
run's duration leaves out the downtime between its executions, as its run page counts it.

A run's executions are its first start and each resume (one ``run_started`` each). The
list gives, for each run stored as running, the start of its latest execution and the
seconds its earlier ones ran (:class:`Execution`); the page adds the time since that
start, or, for an interrupted run, the time to its last event (``ended_at``), where its
run page's duration stops too. What is known of a run is kept, so asking again reads only
its ``run_started`` events stored since (and, for a new resume, the event before it), and
an interrupted run's last event only if it has one after the last one known (one read,
:meth:`TraceStore.last_event <orchestrator.store.TraceStore.last_event>`). What is kept of
a run that is no longer listed goes once the store no longer lists it as running (gone
from the store, or over), checked at most once a minute and for all such runs in one
read, so that a long-lived viewer does not keep the runs deleted while they ran.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.store import RunFilter, RunInfo
from orchestrator.viewer._reader import TraceReader
from orchestrator.viewer._replay import ran_before

__all__ = ["Execution", "Executions"]

_GAP_PAGE = 1000
"""Events read at once when looking for the last event before a resume past a gap in
the run's seqs (an imported trace's)."""
_RECHECK_S = 60.0
"""How often what is kept of runs not listed is checked against the store."""
_ALL_ROWS = 2**63 - 1
"""A ``list_runs`` limit no store holds more rows than (a database's 64-bit ``LIMIT``)."""


class Execution(BaseModel):
    """A running run's latest execution, and the time its earlier ones ran."""

    model_config = ConfigDict(extra="forbid")

    started_at: float = Field(description="When its latest execution started (its latest "
                              "`run_started`: the run's start, or its latest resume).")
    before_s: float = Field(description="Seconds its earlier executions ran, each from its "
                            "`run_started` to its last event before the next: the run's "
                            "duration is this plus the time since `started_at`, the "
                            "downtime between executions left out (as the run page "
                            "counts it).")
    ended_at: float | None = Field(
        None, description="For an interrupted run: the time of its last event, where its "
        "duration stops (it is `before_s` plus `ended_at` - `started_at`, as on its run "
        "page). Null for a run whose process runs.")


@dataclass
class _Known:
    seq: int  # the seq of its latest run_started read
    started_at: float
    before_s: float


class Executions:
    """Each running run's :class:`Execution`, read incrementally.

    :param reader: the store read from.
    :param clock: the monotonic clock that times the checks of the runs kept.
    :param forget: called with the id of each run whose entry is dropped, so that what
        else is kept of it goes too (the viewer's :class:`~orchestrator.store.RunWriters`).
    """

    def __init__(self, reader: TraceReader, *, clock: Callable[[], float] = time.monotonic,
                 forget: Callable[[str], None] | None = None) -> None:
        self._reader = reader
        self._forget = forget
        self._known: dict[str, _Known] = {}
        self._last: dict[str, tuple[int, float]] = {}  # (seq, ts) of a run's last event
        self._started: dict[str, float] = {}  # a kept run's row's started_at (its first)
        self._clock = clock
        self._checked = clock()

    async def of(self, runs: Iterable[RunInfo], interrupted: Collection[str] = ()
                 ) -> dict[str, Execution]:
        """The execution of each run of ``runs`` stored as running (a run without a
        ``run_started`` event has none).

        :param interrupted: the ids of those whose process is gone: theirs end at their
            last event (``ended_at``).
        :raises StoreError: when the store cannot be read.
        """
        out: dict[str, Execution] = {}
        listed: set[str] = set()
        for run in runs:
            listed.add(run.id)
            if run.status != "running":
                self._drop(run.id)
                continue
            known = await self._read(run.id)
            if known is None:
                continue
            self._started[run.id] = run.started_at
            ended_at = None
            if run.id in interrupted:
                ended_at = await self._last_ts(run.id, known)
            else:
                self._last.pop(run.id, None)
            out[run.id] = Execution(started_at=known.started_at, before_s=known.before_s,
                                    ended_at=ended_at)
        await self._forget_gone(listed)
        return out

    async def _forget_gone(self, listed: Collection[str]) -> None:
        """Drop what is kept of the runs not ``listed`` that the store no longer holds, or
        holds as over (finished while another page was shown), at most once a
        :data:`_RECHECK_S`: one read, of the rows of the runs stored as running that
        started from the first of them to the last (a row's ``started_at`` is its run's
        first start; a resume does not move it), not one read a run. One still running
        is kept: listed again, only its events stored since are read."""
        now = self._clock()
        if now - self._checked < _RECHECK_S:
            return
        self._checked = now
        unlisted = [i for i in self._started if i not in listed]
        if not unlisted:
            return
        starts = [self._started[i] for i in unlisted]
        window = RunFilter(status="running", started_after=min(starts),
                           started_before=math.nextafter(max(starts), math.inf))
        running = {r.id for r in await self._reader.list_runs(window, limit=_ALL_ROWS)}
        for run_id in unlisted:
            if run_id not in running:
                self._drop(run_id)
                if self._forget is not None:
                    self._forget(run_id)

    def _drop(self, run_id: str) -> None:
        self._known.pop(run_id, None)
        self._last.pop(run_id, None)
        self._started.pop(run_id, None)

    async def _last_ts(self, run_id: str, known: _Known) -> float:
        """The time of the run's last event, past its latest ``run_started`` (``known``):
        read only if it has one past the last event found before."""
        seq, ts = self._last.get(run_id, (known.seq - 1, known.started_at))
        if seq < known.seq - 1:  # resumed since, and interrupted again
            seq, ts = known.seq - 1, known.started_at
        last = await self._reader.last_event(run_id, after_seq=seq)
        if last is not None:
            seq, ts = last.seq, last.ts
            self._last[run_id] = (seq, ts)
        return ts

    async def _read(self, run_id: str) -> _Known | None:
        known = self._known.get(run_id)
        new = await self._reader.events(run_id, after_seq=None if known is None else known.seq,
                                        kinds=("run_started",))
        for started in new:
            if known is None:
                known = _Known(started.seq, started.ts, 0.0)
                continue
            last_ts = await self._last_ts_before(run_id, known.seq, started.seq)
            known = _Known(started.seq, started.ts,
                           ran_before(known.before_s, known.started_at, last_ts))
        if known is not None:
            self._known[run_id] = known
        return known

    async def _last_ts_before(self, run_id: str, since: int, seq: int) -> float | None:
        """The latest time of the run's events from seq ``since`` (an execution's
        ``run_started``) to before ``seq`` (the next one's)."""
        page = await self._reader.events_page(run_id, after_seq=seq - 2, limit=1)
        if page and page[0].seq == seq - 1 and page[0].seq >= since:
            return page[0].ts
        last: float | None = None  # a gap in the seqs just before it: read the execution
        after = since - 1
        while page := await self._reader.events_page(run_id, after_seq=after,
                                                     limit=_GAP_PAGE):
            for e in page:
                if e.seq >= seq:
                    return last
                last = e.ts if last is None else max(last, e.ts)
            after = page[-1].seq
        return last
