"""Interrupted runs: stored as running, but their writer process on this host is gone.

Nothing is written: the status is computed when reading, from the writer recorded by
the run's latest ``run_started`` event (see :mod:`orchestrator.runtime._process`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from typing import Protocol

from orchestrator.runtime import events as ev
from orchestrator.runtime._process import writer_gone
from orchestrator.store._models import RunFilter, RunInfo, StoredEvent

__all__ = ["RunWriters", "interrupted_runs", "is_interrupted", "list_running",
           "resume_target"]

#: the only events that tell who writes a run (read alone: a long run's other events are
#: neither read nor decoded)
_RUN_LEVEL = ("run_started", "run_finished")


class _EventReader(Protocol):
    async def events(self, run_id: str, *, after_seq: int | None = None,
                     kinds: Collection[str] | None = None) -> list[StoredEvent]:
        ...


class _RunLister(_EventReader, Protocol):
    async def list_runs(
        self, filters: RunFilter | None = None, *, limit: int = 50, offset: int = 0
    ) -> list[RunInfo]:
        ...


class _RunReader(Protocol):
    async def run_info(self, run_id: str) -> RunInfo | None:
        ...


def _gone(started: ev.RunStarted | None) -> bool:
    return started is not None and writer_gone(
        started.writer_host, started.writer_pid, started.writer_start
    )


def _latest_writer(
    events: Iterable[StoredEvent], started: ev.RunStarted | None = None
) -> ev.RunStarted | None:
    """The ``run_started`` event still in force after ``events`` (``None``: finished)."""
    for e in events:
        if isinstance(e, ev.RunStarted):
            started = e
        elif isinstance(e, ev.RunFinished):
            started = None
    return started


def is_interrupted(events: Sequence[StoredEvent]) -> bool:
    """Whether a run, given its events in ``seq`` order, is interrupted: its last
    run-level event is ``run_started`` and that event's writer is known to have ended.

    A writer on another host, or not recorded (older traces), counts as running.
    """
    return _gone(_latest_writer(events))


class RunWriters:
    """Tells which runs listed as running are interrupted, remembering each run's
    latest writer so that asking again reads only the events stored since.

    :param reader: a trace store, or anything that reads a run's events like one.
    """

    def __init__(self, reader: _EventReader) -> None:
        self._reader = reader
        self._known: dict[str, tuple[int, ev.RunStarted | None]] = {}

    async def interrupted(self, runs: Iterable[RunInfo]) -> set[str]:
        """The ids of the runs in ``runs`` stored as running whose writer is gone."""
        found: set[str] = set()
        for run in runs:
            if run.status != "running":
                self._known.pop(run.id, None)
                continue
            last_seq, started = self._known.get(run.id, (-1, None))
            new = await self._reader.events(run.id, after_seq=last_seq, kinds=_RUN_LEVEL)
            if new:
                started = _latest_writer(new, started)
                self._known[run.id] = (new[-1].seq, started)
            if _gone(started):
                found.add(run.id)
        return found

    def forget(self, run_id: str) -> None:
        """Drop what is kept of a run (one deleted, or over): asked of again, it is read
        from its first event."""
        self._known.pop(run_id, None)


async def interrupted_runs(store: _EventReader, runs: Iterable[RunInfo]) -> set[str]:
    """The ids of the runs in ``runs`` stored as running that are interrupted (see
    :func:`is_interrupted`); reads the events of the running runs only.

    :param store: a trace store, or anything that reads a run's events like one.
    """
    return await RunWriters(store).interrupted(runs)


#: running runs read per page by :func:`list_running` (more when a page asks for more)
_RUNNING_PAGE = 100
#: and at most this many (a --limit of a billion reads no billion rows at once)
_RUNNING_PAGE_MAX = 1000


async def list_running(
    store: _RunLister, filters: RunFilter, *, interrupted: bool, limit: int, offset: int = 0
) -> tuple[list[RunInfo], set[str]]:
    """One page, newest first, of the runs stored as running that are interrupted
    (``interrupted=True``), or that are not: the store keeps no such status, so its
    running runs are read page after page (:func:`_running`) and narrowed until ``limit``
    of them match past the first ``offset`` that do, or none are left.

    :param filters: which runs besides; its ``status`` is replaced by ``"running"``.
    :returns: the page, and the ids of its interrupted runs.
    """
    flt = dataclasses.replace(filters, status="running")
    writers = RunWriters(store)
    page_size = min(max(limit + offset, _RUNNING_PAGE), _RUNNING_PAGE_MAX)
    picked: list[RunInfo] = []
    skipped = 0
    if limit:
        async for run in _running(store, flt, page_size):
            # one run at a time: no events are read of a run after the last one picked
            if bool(await writers.interrupted([run])) != interrupted:
                continue
            if skipped < offset:
                skipped += 1
                continue
            picked.append(run)
            if len(picked) == limit:
                break
    return picked, ({r.id for r in picked} if interrupted else set())


async def _running(store: _RunLister, flt: RunFilter, page_size: int
                   ) -> AsyncIterator[RunInfo]:
    """The runs ``flt`` lists, newest first as ``list_runs`` gives them, each once, read
    ``page_size`` at a time. Each page follows the last by start time (runs started before
    the last one's), not by offset: a run that finished meanwhile shifted the later pages
    by one, and the run that moved back over the page's end was never listed. The runs
    started at the very time a page ends at are read apart, all of them."""
    before = flt.started_before
    while True:
        page = await store.list_runs(dataclasses.replace(flt, started_before=before),
                                     limit=page_size)
        if len(page) < page_size:
            for run in page:
                yield run
            return
        edge = page[-1].started_at
        at_edge = dataclasses.replace(flt, started_after=edge,
                                      started_before=math.nextafter(edge, math.inf))
        ties: list[RunInfo] = []
        while chunk := await store.list_runs(at_edge, limit=page_size, offset=len(ties)):
            ties.extend(chunk)
            if len(chunk) < page_size:
                break
        for run in [r for r in page if r.started_at != edge] + ties:
            yield run
        before = edge


async def resume_target(store: _RunReader, run_id: str) -> str:
    """The run whose resume continues the interrupted run ``run_id``: the run itself, or,
    for a sub-workflow's run, the run above it that a user resumes (a run's resume
    continues the runs of its sub-workflows it had in flight), walking up while the
    parent is stored and not over (a cancelled run resumes too). A fork or a replay is
    resumed on its own."""
    current, seen = run_id, {run_id}
    info = await store.run_info(run_id)
    # a step of the parent run started it (a replay's or a fork's parent_attempt is None)
    while info is not None and info.parent_attempt is not None:
        parent = info.parent_run_id
        if parent is None or parent in seen:  # a cycle only an edited import can make
            break
        above = await store.run_info(parent)  # the next level's own row
        if above is None or above.status in ("succeeded", "failed"):  # gone, or over
            break
        current, info = parent, above
        seen.add(parent)
    return current
