"""Recently viewed runs, folded, kept in memory and topped up incrementally.

A run page asks for the same run again (the page, the run, each live update); events
are append-only, so the viewer keeps a summary of each recently viewed run and only
reads the events stored after the last one it folded.

No event is kept: a run's events are read from the store a page at a time
(:meth:`TraceStore.events_page <orchestrator.store.TraceStore.events_page>`, at most
:data:`READ_PAGE` in memory at once) and folded into a :class:`RunSummary`, which holds

- the run's DAG nodes (a small dict per step, see :class:`GraphFold`),
- its run-level events (``run_started`` and ``run_finished``: one per start, resume
  and end) and its first event, its token counts, its number of events and last seq,
- the run page's replay keyframes (:class:`~orchestrator.viewer._replay.ReplayFold`:
  the JSON of the steps that changed between two keyframes, one every so many
  events) and the seqs of each step's events,
- and, only once a client asked for the run with its steps (``steps=true``), the folded
  steps (:class:`~orchestrator.store.fold.RunFold`: one record per step, with its last
  attempt's input and output).

So the memory of a summary grows with the run's steps (and their inputs and outputs
when they were asked for), and with its events only by a seq (8 bytes) per event
naming a step and the changes of the steps between keyframes;
:class:`RunCache` keeps ``max_runs`` of them.
"""

from __future__ import annotations

import gc
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import anyio

from orchestrator.runtime.events import ATTEMPT_ENDS, UsageModel
from orchestrator.store import RunNotFound, RunRecord, StoredEvent, fold_events, is_interrupted
from orchestrator.store._codec import paused_gc
from orchestrator.store.fold import RunFold
from orchestrator.viewer._graph import GraphFold, GraphNode, GraphStep, as_steps
from orchestrator.viewer._reader import TraceReader
from orchestrator.viewer._replay import ReplayFold

RUN_KINDS = ("run_started", "run_finished")
READ_PAGE = 5000
"""The most events read from the store at once while folding a run."""
GC_BREATHE_S = 1.0
"""How long a read of a run, which pauses the garbage collector, goes at most without
collecting the youngest generation (between two pages; see :meth:`RunCache.refresh`)."""


@dataclass
class RunSummary:
    """What the viewer keeps of one run, folded from its events as far as they were read.

    :ivar with_steps: the steps are folded too (see :meth:`record`).
    :ivar finished: the last run-level event is ``run_finished``.
    :ivar run_level: the ``run_started`` and ``run_finished`` events, in ``seq`` order.
    """

    run_id: str
    with_steps: bool = False
    n_events: int = 0
    last_seq: int | None = None
    finished: bool = False
    run_level: list[StoredEvent] = field(default_factory=list)
    first: StoredEvent | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    used: float = field(default_factory=time.monotonic)
    _graph: GraphFold = field(default_factory=GraphFold)
    replay: ReplayFold = field(default_factory=ReplayFold)
    _steps: RunFold | None = None
    _record: tuple[tuple[int, bool], RunRecord] | None = None
    _headline: tuple[tuple[int, bool], RunRecord] | None = None
    _graph_nodes: tuple[int, list[GraphNode]] | None = None

    def __post_init__(self) -> None:
        if self.with_steps:
            self._steps = RunFold(self.run_id)

    def add(self, e: StoredEvent) -> None:
        """Fold the event after :attr:`last_seq`."""
        if self.first is None:
            self.first = e
        self.n_events += 1
        self.last_seq = e.seq
        if e.kind in RUN_KINDS:
            self.run_level.append(e)
            self.finished = e.kind == "run_finished"
        # the events that end a step's attempt, as RunFold (``ponder show``) sums them; not a
        # plan_call's: its attempt's end counts it (or, cut by a crash, a resume's
        # step_cancelled; until then CutCalls), so adding it too counted it twice
        elif e.kind in ATTEMPT_ENDS:
            usage = e.__dict__.get("usage")  # pydantic's getattr of a missing field is slow
            if isinstance(usage, UsageModel):
                self.prompt_tokens += usage.prompt_tokens
                self.completion_tokens += usage.completion_tokens
        self._graph.add(e)
        self.replay.add(e)
        if self._steps is not None:
            self._steps.apply(e)

    def cut_calls(self) -> dict[str, tuple[int, int]]:
        """Each plan step's cut attempts' tokens, counted while the run's writer is gone
        (:meth:`~orchestrator.store.fold.CutCalls.by_step`), as of :attr:`last_seq`."""
        return self.replay.cut_calls()

    @property
    def interrupted(self) -> bool:
        """Stored as running, but its writer process on this host is gone."""
        return is_interrupted(self.run_level)

    def _made_of(self) -> tuple[int, bool]:
        """What the run's figures are made of: the events folded, and whether the run is
        interrupted now. A writer that dies writes no event, yet from then on its cut plan
        attempts' calls count (:meth:`cut_calls`), as ``ponder show`` counts them: a
        figure kept from before is made again, as when events arrive."""
        return self.n_events, not self.finished and self.interrupted

    def record(self) -> RunRecord:
        """The run folded with its steps, each with the dependencies its DAG node has
        (:meth:`graph_nodes`: those that are steps of the run), cached until more events
        arrive or its writer is found gone (see :meth:`_made_of`).

        :raises RuntimeError: when the summary was made without its steps.
        """
        if self._steps is None:
            raise RuntimeError(f"run {self.run_id!r} was folded without its steps")
        made_of = self._made_of()
        if self._record is None or self._record[0] != made_of:
            deps = {g["id"]: g["deps"] for g in self.graph_nodes()}
            with paused_gc():  # a record per step, kept (see RunCache.refresh)
                record = self._steps.record()
                # a copy only of a step whose deps differ (a copy of each of 66,000
                # steps took most of a large run's answer, at every request)
                steps = [s if (d := deps.get(s.id, s.deps)) == s.deps
                         else s.model_copy(update={"deps": d}) for s in record.steps]
                self._record = (made_of, record.model_copy(update={"steps": steps}))
        return self._record[1]

    def headline(self) -> RunRecord:
        """The run without its steps, folded from its run-level events only.

        What :meth:`record` gives less ``steps``, without folding every step of a
        large run: token counts are summed here while the run has not finished. Cached
        as :meth:`record` is.
        """
        made_of = self._made_of()
        if self._headline is None or self._headline[0] != made_of:
            assert self.first is not None and self.last_seq is not None
            update = {"steps": [], "n_events": self.n_events, "next_seq": self.last_seq + 1}
            if not self.finished:
                cut = self.replay.cut_calls().values()
                update.update(prompt_tokens=self.prompt_tokens + sum(p for p, _ in cut),
                              completion_tokens=self.completion_tokens + sum(c for _, c in cut))
            record = fold_events(self.run_level or [self.first]).model_copy(update=update)
            self._headline = (made_of, record)
        return self._headline[1]

    def graph_nodes(self) -> list[GraphNode]:
        """The run's DAG nodes as the fold keeps them, plain dicts not to be changed (see
        :meth:`GraphFold.nodes <orchestrator.viewer._graph.GraphFold.nodes>`; cached until
        more events arrive): what the run's answer encodes."""
        if self._graph_nodes is None or self._graph_nodes[0] != self.n_events:
            with paused_gc():  # a node per step, kept (see RunCache.refresh)
                self._graph_nodes = (self.n_events, self._graph.nodes())
        return self._graph_nodes[1]

    def graph(self) -> list[GraphStep]:
        """The run's DAG nodes as models (made at each call, see :meth:`graph_nodes`)."""
        nodes = self.graph_nodes()
        with paused_gc():
            return as_steps(nodes)


class RunCache:
    """Keeps the summaries of the ``max_runs`` most recently used runs.

    :param reader: the store read from.
    :param max_runs: runs kept; the least recently used is dropped first.
    """

    def __init__(self, reader: TraceReader, max_runs: int = 8) -> None:
        self._reader = reader
        self._max_runs = max_runs
        self._runs: OrderedDict[str, RunSummary] = OrderedDict()

    async def get(self, run_id: str, *, steps: bool = False) -> RunSummary:
        """The run folded with every event stored until now.

        :param steps: fold its steps too (a run kept without them is read again).
        :raises RunNotFound: when the store holds no event of the run.
        :raises StoreError: when the store cannot be read.
        """
        entry = self._runs.get(run_id)
        if entry is None or (steps and not entry.with_steps):
            entry = RunSummary(run_id, with_steps=steps)
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

    async def refresh(self, entry: RunSummary) -> None:
        """Fold the events stored after ``entry``'s last one into it, a page at a time.

        :raises RunNotFound: when the store holds no event of the run.
        :raises StoreError: when the store cannot be read.
        """
        entry.used = time.monotonic()
        async with entry.lock:
            # The whole read, its waits included: what it keeps (each step's state) is
            # made all along it, and each collection then would scan ever more of it,
            # for nothing (it holds no cycle): half the CPU of a first read of 200,000
            # events (pausing it only while a page is folded still cost a fifth more
            # CPU than this). Other requests meanwhile run without the collector too:
            # the read collects the youngest objects once in a while (see _read_new),
            # where their cycles are, instead of leaving them to the end of the read.
            collector_on = gc.isenabled()
            with paused_gc():
                await self._read_new(entry, breathe=collector_on)
        if entry.n_events == 0:
            raise RunNotFound(entry.run_id)

    async def _read_new(self, entry: RunSummary, *, breathe: bool = False) -> None:
        """Read and fold the events after ``entry``'s last, a page at a time.

        :param breathe: collect the youngest generation every :data:`GC_BREATHE_S`
            seconds between pages (the caller paused a collector that was on).
        """
        breathed = time.monotonic()
        known = entry.last_seq
        # From the last event folded on, which comes back while the run is stored: a
        # run deleted meanwhile (ponder gc) is not served from memory.
        after = None if known is None else known - 1
        check = known is not None
        while True:
            page = await self._reader.events_page(entry.run_id, after_seq=after, limit=READ_PAGE)
            new = page
            if check:
                if not page or page[0].seq != known:
                    raise RunNotFound(entry.run_id)
                new, check = page[1:], False
            for e in new:
                entry.add(e)
            if breathe and time.monotonic() - breathed >= GC_BREATHE_S:
                # the young objects only (a few ms): what the fold kept moves to an
                # older generation, which the paused collector does not scan again
                gc.collect(0)
                breathed = time.monotonic()
            if len(page) < READ_PAGE:
                break
            after = page[-1].seq
