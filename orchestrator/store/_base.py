"""The :class:`TraceStore` contract, and everything built on its four methods."""

from __future__ import annotations

import abc
import dataclasses
import math
import time
from collections.abc import Collection, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, Self, cast

from pydantic import ValidationError

from orchestrator.runtime.events import RunStarted
from orchestrator.store._codec import SEQ_MAX, no_run_id, nonfinite_as_strings, parse_strict
from orchestrator.store._errors import AmbiguousRunId, InvalidTrace, RunNotFound
from orchestrator.store._models import RunFilter, RunInfo, RunRecord, StoredEvent
from orchestrator.store.fold import fold_events, fold_info

TRACE_FORMAT = "ponder.trace"
"""The ``format`` tag of an exported trace document."""
TRACE_VERSION = 2
"""The newest version of the exported trace document this Ponder reads, and the one it
writes for a run with child runs: version 2 adds ``children``. A run without any is
written as version 1, which Ponder before version 2 reads too."""
_TRACE_VERSION_ALONE = 1
"""The version of a document that holds no child runs (the first, still written)."""

_GC_PAGE = 500
_SEQ_MAX = SEQ_MAX
_SEQ_BEYOND = 2**63 - 1
"""A ``seq`` no store holds an event after (SQLite's largest integer): a page that starts
after it is empty, and is not asked of the database, whose integers it would overflow."""
_COUNT_MAX = 2**63 - 1
"""The largest ``limit`` or ``offset`` asked of a database (SQLite's and PostgreSQL's
``LIMIT`` are 64-bit): no store holds more rows, and a larger one overflows the driver."""
_KIND_MAX = 64
"""The longest event ``kind`` a store holds (its column is ``VARCHAR(64)``)."""


class TraceStore(abc.ABC):
    """Append-only store of run events, with a per-run headline row for listing.

    Backends implement four methods (:meth:`append`, :meth:`events`,
    :meth:`list_runs`, :meth:`delete_runs`) plus :meth:`close`; reading a run,
    export/import and garbage collection are built on them here.

    Use as ``async with store:`` (opens, then closes), or call :meth:`open` and
    :meth:`close` yourself. All methods are safe to call from many tasks at once.
    """

    async def open(self) -> None:
        """Make the store ready (connect, create or check the schema); idempotent.

        :raises StoreUnavailable: when the store cannot be reached or opened.
        :raises StoreOutdated: when its schema is older and may not be upgraded here.
        """
        return None

    @abc.abstractmethod
    async def append(self, events: Sequence[StoredEvent], *,
                     continues: Collection[str] = ()) -> None:
        """Store a batch of events, all or nothing, durably before returning.

        Events may belong to several runs. A ``run_started`` or ``run_finished``
        event updates its run's :class:`RunInfo` row in the same transaction.

        :param events: the batch; an empty batch is a no-op.
        :param continues: the runs the batch goes on with that the caller read from this
            store (a resume's run): each of them with an event in the batch must still be
            stored, checked in the write's own transaction. ``ponder gc`` deleting one
            after the caller read it would otherwise leave the rest of a run without its
            start. A store that never held the run (a resume recorded elsewhere) is
            written to without it.
        :raises RunNotFound: when a run of ``continues`` is no longer stored; nothing of
            the batch is stored.
        :raises EventConflict: when an event's ``(run_id, seq)`` is already stored or
            repeats within the batch; nothing of the batch is stored.
        :raises StoreError: when an event is not JSON-serializable, or the write failed
            (:class:`StoreUnavailable` for a locked or read-only file, a lost server).
        """

    @abc.abstractmethod
    async def events(self, run_id: str, *, after_seq: int | None = None,
                     kinds: Collection[str] | None = None) -> list[StoredEvent]:
        """A run's events in ``seq`` order; unknown kinds come back as :class:`RawEvent`.

        :param after_seq: only events with a larger ``seq`` (for tailing a live run); any
            integer, as for :meth:`events_page`.
        :param kinds: only events of these kinds (the store filters; the others are not
            read or decoded).
        :returns: the events; empty when none are stored.
        """

    async def events_page(
        self, run_id: str, *, after_seq: int | None = None, limit: int
    ) -> list[StoredEvent]:
        """One page of a run's events: the first ``limit`` with a ``seq`` above ``after_seq``,
        in ``seq`` order, read without the rest of the run (the SQL store asks for them
        with a keyset query on ``(run_id, seq)``). Follow a long run with ``after_seq`` set
        to the last ``seq`` of the page before.

        :param after_seq: only events with a larger ``seq``; any integer (one below 0
            reads from the first event, one beyond the largest ``seq`` a store holds
            reads nothing).
        :param limit: the most events returned, at least 1.
        :returns: the events; empty when none are stored after ``after_seq``.
        :raises ValueError: when ``limit`` is below 1.
        """
        after = _page_start(after_seq, limit)
        if after >= _SEQ_BEYOND:
            return []
        return (await self.events(run_id, after_seq=after))[:limit]

    async def last_event(self, run_id: str, *, after_seq: int | None = None
                         ) -> StoredEvent | None:
        """A run's last event, the one of highest ``seq``, read without the rest of the
        run (the SQL store asks for it with ``ORDER BY seq DESC LIMIT 1`` on the key
        ``(run_id, seq)``). A gap in the seqs (an imported trace's) changes nothing.

        :param after_seq: only an event with a larger ``seq``; any integer, as for
            :meth:`events_page`. Asking whether a run went on since its last event known
            reads nothing else when it did not.
        :returns: the event; ``None`` when the run has none after ``after_seq`` (an
            unknown run has none).
        """
        events = await self.events(run_id, after_seq=after_seq)
        return events[-1] if events else None

    async def run_info(self, run_id: str) -> RunInfo | None:
        """The row :meth:`list_runs` lists for the run of exactly this id.

        :returns: the row; ``None`` when the store holds no ``run_started`` event of it.
        """
        return info_from_events(await self.events(run_id))

    @abc.abstractmethod
    async def list_runs(
        self, filters: RunFilter | None = None, *, limit: int = 50, offset: int = 0
    ) -> list[RunInfo]:
        """Runs newest first (by start time, then id descending), one page.

        :param filters: which runs; ``None`` for all.
        :param limit: the page size (0: none); ``offset``: how many matching runs to skip;
            any integer from 0 (one beyond the runs a store holds reads nothing).
        :raises ValueError: when ``limit`` or ``offset`` is below 0, or a time of
            ``filters`` is not a number (NaN included).
        """

    @abc.abstractmethod
    async def delete_runs(self, run_ids: Sequence[str]) -> int:
        """Delete runs: their rows and all their events, in one transaction.

        :returns: how many run rows were deleted (unknown ids are ignored).
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections; idempotent. The store is unusable afterwards."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def resolve_run_id(self, run_id: str) -> str:
        """The id of the run that ``run_id`` names: itself when stored, else the one run
        whose id starts with it (as ``ponder runs`` shows ids shortened).

        :raises RunNotFound: when no run's id is it or starts with it.
        :raises AmbiguousRunId: when several runs' ids start with it.
        """
        if await self.events(run_id, kinds=("run_started",)):
            return run_id
        found = await self.list_runs(RunFilter(id_prefix=run_id), limit=6) if run_id else []
        if len(found) == 1:
            return found[0].id
        if found:
            raise AmbiguousRunId(run_id, [r.id for r in found])
        raise RunNotFound(run_id)

    async def read_run(self, run_id: str) -> RunRecord:
        """A run folded from its events (see :func:`~orchestrator.store.fold.fold_events`).

        :raises RunNotFound: when no event of the run is stored.
        """
        events = await self.events(run_id)
        if not events:
            raise RunNotFound(run_id)
        return fold_events(events)

    async def export_run(self, run_id: str) -> dict[str, Any]:
        """A JSON-ready document holding the run's headline and every event, and those of
        its child runs: the runs its steps started (sub-workflows, a spawn's or a map's
        children, a plan's actions), theirs, and so on down, which resuming the run
        needs (a child run that had finished gives its output; one in flight goes on).

        A float field's NaN or infinity (an ``inf`` latency) is written as the string
        ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``: JSON has no such numbers (``ponder
        import`` refuses them), and :meth:`import_run` reads the strings back as the
        same floats.

        :returns: ``{"format": "ponder.trace", "version": 2, "run": {...}, "events":
            [...], "children": [{"run": {...}, "events": [...]}, ...]}``, a child run after
            the run that started it; a run without child runs is ``"version": 1`` and
            has no ``children``, as before them.
        :raises RunNotFound: when no event of the run is stored.
        """
        events = await self.events(run_id)
        if not events:
            raise RunNotFound(run_id)
        doc: dict[str, Any] = {"format": TRACE_FORMAT, "version": _TRACE_VERSION_ALONE,
                               **_run_doc(run_id, events)}
        children = []
        for child_id in await self._subworkflow_runs_of([run_id]):
            child_events = await self.events(child_id)
            if child_events:  # (deleted meanwhile)
                children.append(_run_doc(child_id, child_events))
        if children:
            doc.update(version=TRACE_VERSION, children=children)
        return doc

    async def import_run(self, doc: Mapping[str, Any]) -> str:
        """Store a document made by :meth:`export_run` (of this store or another): the
        run, and its child runs where the document holds them, in one transaction.

        The headline rows are rebuilt from the events; the document's ``run`` is only
        checked for its id.

        :returns: the run id.
        :raises InvalidTrace: when the document is malformed; nothing is stored.
        :raises EventConflict: when the events of the run, or of one of its child runs,
            are already stored; nothing is stored.
        """
        runs = parse_trace_runs(doc)
        await self.append([e for events in runs for e in events])
        return runs[0][0].run_id

    async def delete_runs_older_than(
        self, age: timedelta, *, now: float | None = None, include_unfinished: bool = False
    ) -> int:
        """Garbage-collect runs started more than ``age`` before ``now``: the finished ones,
        each with the runs of its sub-workflows.

        A *sub-workflow's run* (one a step started: its ``run_started`` records the
        ``parent_attempt``) is not collected on its own while its parent run is stored:
        it goes with its parent, whatever its own status or age, together with its own
        sub-workflows' runs (a run that finished will not continue them; one deleted
        cannot). One whose parent run is gone is collected once it is old, whatever its
        status. A replay or a fork is a run of its own (its trace holds all it used): it
        is collected on its own age and status, never with the run it replays.

        :param now: the reference Unix time (default: the current time).
        :param include_unfinished: also delete runs still marked running (a run
            whose process died never finishes).
        :returns: how many runs were deleted, sub-workflows' runs included.
        """
        cutoff = (time.time() if now is None else now) - age.total_seconds()
        old: list[RunInfo] = []
        flt = RunFilter(started_before=cutoff)
        while page := await self.list_runs(flt, limit=_GC_PAGE, offset=len(old)):
            old.extend(page)
            if len(page) < _GC_PAGE:
                break
        # each run to delete, with its sub-workflows' runs, and whether it goes only if
        # it is still finished (not resumed since it was listed) when it is deleted
        doomed: list[tuple[str, list[str], bool]] = []
        seen: set[str] = set()
        for run in old:
            if run.parent_run_id is not None and run.parent_attempt is not None:
                if await self.run_info(run.parent_run_id) is not None:
                    continue  # it goes with its parent
                doomed.append((run.id, [], False))  # its parent is gone
            elif include_unfinished or run.status != "running":
                doomed.append((run.id, [], not include_unfinished))
            else:
                continue
            seen.add(run.id)
        for top, below, _ in doomed:
            below += [i for i in await self._subworkflow_runs_of([top]) if i not in seen]
            seen.update(below)
        total = 0
        for start in range(0, len(doomed), _GC_PAGE):
            total += await self._delete_collected(doomed[start:start + _GC_PAGE])
        return total

    async def _delete_collected(self, groups: Sequence[tuple[str, list[str], bool]]) -> int:
        """Delete each group's run with its sub-workflows' runs (``(run, below,
        finished_only)``); one whose ``finished_only`` run is running now (a resume of it
        began since it was listed) is left whole. A backend with transactions checks
        and deletes in one (see :class:`~orchestrator.store._sql.SqlStore`).

        :returns: how many runs were deleted."""
        ids: list[str] = []
        for top, below, finished_only in groups:
            info = await self.run_info(top) if finished_only else None
            if not finished_only or (info is not None and info.status != "running"):
                ids += [top, *below]
        return await self.delete_runs(ids) if ids else 0


    async def _subworkflow_runs_of(self, run_ids: Sequence[str]) -> list[str]:
        """The ids of the runs of the sub-workflows of ``run_ids``, and of theirs, down
        to the last (``run_ids`` themselves excluded)."""
        found: list[str] = []
        seen = set(run_ids)
        todo = list(run_ids)
        while todo:
            flt = RunFilter(parent_run_id=todo.pop())
            offset = 0
            while page := await self.list_runs(flt, limit=_GC_PAGE, offset=offset):
                offset += len(page)
                for child in page:
                    if child.id not in seen and child.parent_attempt is not None:
                        seen.add(child.id)
                        found.append(child.id)
                        todo.append(child.id)
                if len(page) < _GC_PAGE:
                    break
        return found


def _page_start(after_seq: int | None, limit: int) -> int:
    """The ``seq`` a page of events starts after (see :meth:`TraceStore.events_page`),
    ``-1`` for the first event.

    :raises ValueError: when ``limit`` is below 1.
    """
    if limit < 1:
        raise ValueError(f"a page of events holds at least 1 event, got limit={limit}")
    return -1 if after_seq is None or after_seq < 0 else after_seq


def _after_bound(after_seq: int | None, seq_max: int) -> int | None:
    """The bound of ``seq > bound`` that asks a column of integers from ``-seq_max - 1`` to
    ``seq_max`` for the events after ``after_seq``, without overflowing its driver.

    :returns: ``None`` for no bound (none given, or one below every integer the column
        holds); ``seq_max`` when none can follow (the caller answers ``[]`` unasked).
    """
    if after_seq is None or after_seq < -seq_max - 1:
        return None
    return min(after_seq, seq_max)


def _runs_window(
    filters: RunFilter | None, limit: int, offset: int
) -> tuple[RunFilter, int, int] | None:
    """The filters, ``limit`` and ``offset`` of :meth:`TraceStore.list_runs` as every
    backend asks them: times as floats, ``limit`` at most what a database counts.

    :returns: ``None`` when the page is empty whatever is stored (``limit`` 0, an
        ``offset`` beyond the rows a database holds).
    :raises ValueError: as :meth:`TraceStore.list_runs` says.
    """
    for name, value in (("limit", limit), ("offset", offset)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"list_runs: {name} must be an integer from 0, got {value!r}")
    flt = filters or RunFilter()
    flt = dataclasses.replace(
        flt,
        started_before=_unix_time("started_before", flt.started_before),
        started_after=_unix_time("started_after", flt.started_after),
    )
    if limit == 0 or offset >= _COUNT_MAX:
        return None
    # no run's id holds a NUL (PostgreSQL would refuse the query; see no_run_id)
    if any(v is not None and no_run_id(v) for v in (flt.id_prefix, flt.parent_run_id)):
        return None
    return flt, min(limit, _COUNT_MAX), offset


def _unix_time(name: str, value: float | None) -> float | None:
    """``value`` as a float (an integer beyond floats as an infinity).

    :raises ValueError: when it is not a number, or is NaN (which databases order
        differently: PostgreSQL above every number, SQLite as NULL).
    """
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"RunFilter.{name} must be a Unix time, got {value!r}")
    try:
        time_ = float(value)
    except OverflowError:
        time_ = math.inf if value > 0 else -math.inf
    if math.isnan(time_):
        raise ValueError(f"RunFilter.{name} must be a Unix time, got nan")
    return time_


def _json_numbers(dumped: dict[str, Any]) -> dict[str, Any]:
    """A JSON-mode dump with its NaN and infinities as strings (see
    :func:`~orchestrator.store._codec.nonfinite_as_strings`).

    Only a float field keeps them in such a dump (pydantic writes a value of no declared
    type as ``null``), and every float field of an event or a run's headline is at its
    top level (a test pins that): a dump with none there is returned as it is, without
    walking it, which made exporting a run about 65% slower.
    """
    for value in dumped.values():
        if value.__class__ is float and not math.isfinite(value):
            return cast("dict[str, Any]", nonfinite_as_strings(dumped))
    return dumped


def info_from_events(events: Sequence[StoredEvent]) -> RunInfo | None:
    """The :class:`RunInfo` row a store keeps for these events (one run, in order)."""
    info: RunInfo | None = None
    step_ids: set[str] = set()
    for e in events:
        step_id = getattr(e, "step_id", None)
        if isinstance(step_id, str):
            step_ids.add(step_id)
        info = fold_info(info, e, n_steps=len(step_ids))
    return info


def _run_doc(run_id: str, events: Sequence[StoredEvent]) -> dict[str, Any]:
    """One run of an exported trace document: ``{"run": {...}, "events": [...]}``."""
    info = info_from_events(events)
    return {
        "run": _json_numbers(info.model_dump(mode="json")) if info is not None else {"id": run_id},
        "events": [_json_numbers(e.model_dump(mode="json")) for e in events],
    }


def parse_trace(doc: Any) -> list[StoredEvent]:
    """Validate an exported trace document.

    :returns: its run's events, in ``seq`` order (:func:`parse_trace_runs` gives its
        child runs' too).
    :raises InvalidTrace: naming every problem found, each with its location.
    """
    return parse_trace_runs(doc)[0]


def parse_trace_runs(doc: Any) -> list[list[StoredEvent]]:
    """Validate an exported trace document, its child runs included (version 2).

    Each child run must be one that a step of the run, or of another child run in the
    document, started (its first ``run_started`` names that run and the step's attempt).

    :returns: the events of the run, then of each child run, each in ``seq`` order.
    :raises InvalidTrace: naming every problem found, each with its location.
    """
    if not isinstance(doc, Mapping):
        raise InvalidTrace([f"document: expected a JSON object, got {type(doc).__name__}"])
    problems: list[str] = []
    if doc.get("format") != TRACE_FORMAT:
        problems.append(f"format: expected {TRACE_FORMAT!r}, got {doc.get('format')!r}")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        problems.append(f"version: expected a positive integer, got {version!r}")
    elif version > TRACE_VERSION:
        problems.append(
            f"version: {version} is newer than this Ponder reads ({TRACE_VERSION}); upgrade Ponder"
        )
    events = _parse_run(doc, "", problems)
    if events is None:
        raise InvalidTrace(problems)
    runs = [events]
    raw_children = doc.get("children", [])
    if not isinstance(raw_children, list):
        problems.append("children: expected a list of runs")
        raw_children = []
    for i, child in enumerate(raw_children):
        where = f"children[{i}]."
        if not isinstance(child, Mapping):
            problems.append(f"children[{i}]: expected a JSON object, got "
                            f"{type(child).__name__}")
            continue
        child_events = _parse_run(child, where, problems)
        if child_events:
            _check_child(child_events, runs, where, problems)
            runs.append(child_events)
    if problems:
        raise InvalidTrace(problems)
    return [sorted(run, key=lambda e: e.seq) for run in runs]


def _parse_run(doc: Mapping[str, Any], where: str, problems: list[str]
               ) -> list[StoredEvent] | None:
    """The events of one run of a document (``where`` prefixes the problems' locations);
    ``None`` when it has no list of events."""
    raw_events = doc.get("events")
    if not isinstance(raw_events, list) or not raw_events:
        problems.append(f"{where}events: expected a non-empty list of events")
        return None
    events = _parse_events(raw_events, problems, where)
    if events and not any(e.kind == "run_started" for e in events):
        problems.append(f"{where}events: no run_started event (the run could not be "
                        "listed, resumed or replayed)")
    run = doc.get("run")
    if events and isinstance(run, Mapping) and run.get("id") != events[0].run_id:
        problems.append(f"{where}run.id: {run.get('id')!r} differs from the events' run id")
    return events


def _check_child(events: list[StoredEvent], runs: list[list[StoredEvent]], where: str,
                 problems: list[str]) -> None:
    """A child run of a document: a run of its own, started by a step of a run before
    it in the document."""
    run_id = events[0].run_id
    if any(run[0].run_id == run_id for run in runs):
        problems.append(f"{where}events: run {run_id!r} appears twice in the document")
        return
    first = min((e for e in events if isinstance(e, RunStarted)), key=lambda e: e.seq,
                default=None)
    if first is None:
        return  # said already
    parents = {run[0].run_id for run in runs}
    if first.parent_run_id not in parents or first.parent_attempt is None:
        problems.append(f"{where}events: run {run_id!r} is not a child run of a run before "
                        "it in the document (its run_started names no step of one)")


def _parse_events(raw_events: list[Any], problems: list[str], where: str = ""
                  ) -> list[StoredEvent]:
    events: list[StoredEvent] = []
    seen: set[int] = set()
    for i, raw in enumerate(raw_events):
        at = f"{where}events[{i}]"
        try:
            event = parse_strict(raw)
        except ValidationError as exc:
            for err in exc.errors():
                loc = "".join(f".{part}" for part in err["loc"])
                problems.append(f"{at}{loc}: {err['msg']}")
            continue
        if events and event.run_id != events[0].run_id:
            problems.append(
                f"{at}.run_id: {event.run_id!r} differs from {events[0].run_id!r}"
            )
        elif not event.run_id:
            problems.append(f"{at}.run_id: must not be empty")
        elif no_run_id(event.run_id):
            problems.append(f"{at}.run_id: must not hold a NUL character")
        if len(event.kind) > _KIND_MAX:
            problems.append(f"{at}.kind: at most {_KIND_MAX} characters, got "
                            f"{len(event.kind)}")
        if event.seq < 0:
            problems.append(f"{at}.seq: must be >= 0, got {event.seq}")
        elif event.seq > _SEQ_MAX:
            problems.append(f"{at}.seq: must be at most {_SEQ_MAX}, got {event.seq}")
        elif event.seq in seen:
            problems.append(f"{at}.seq: {event.seq} appears twice")
        seen.add(event.seq)
        events.append(event)
    return events


class StoreHook:
    """The scheduler hook that makes each batch of events durable.

    Each batch is written in one transaction and the call returns only after the commit,
    so whatever the scheduler does next (start a dependent step, report success)
    happens after its cause is stored. A failed write propagates; the scheduler must not
    act on unstored events.

    :param store: an opened store.
    :param continues: the runs a resume read from ``store`` and goes on with: the first
        batch of each is written only if the run is still stored (``continues`` of
        :meth:`TraceStore.append`), else :class:`RunNotFound` stops the resume before
        anything of it is written. Once the resume's ``run_started`` is stored the run
        is running again, which ``ponder gc`` leaves alone, so later batches are not
        checked.
    """

    def __init__(self, store: TraceStore, *, continues: Collection[str] = ()) -> None:
        self.store = store
        self._unchecked = set(continues)

    def continues(self, run_id: str) -> None:
        """Check ``run_id`` as one of ``continues``: a resume that knows its run only
        once the hook exists (``ponder resume`` resolves a shortened id in the store)."""
        self._unchecked.add(run_id)

    async def __call__(self, events: Sequence[StoredEvent]) -> None:
        """Store ``events`` atomically.

        :raises StoreError: from :meth:`TraceStore.append`.
        """
        if not events:
            return
        checked = self._unchecked.intersection(e.run_id for e in events)
        if not checked:
            await self.store.append(events)
            return
        await self.store.append(events, continues=checked)
        self._unchecked -= checked
