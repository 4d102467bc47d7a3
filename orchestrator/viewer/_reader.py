"""What the viewer needs of a trace store: four read methods, nothing that writes."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol, runtime_checkable

from orchestrator.store import RunFilter, RunInfo, StoredEvent


@runtime_checkable
class TraceReader(Protocol):
    """The read side of :class:`orchestrator.store.TraceStore`; every store satisfies it.

    The viewer is given an opened store and never writes to it.
    """

    async def list_runs(
        self, filters: RunFilter | None = None, *, limit: int = 50, offset: int = 0
    ) -> list[RunInfo]:
        """Runs newest first, one page (see :meth:`TraceStore.list_runs`)."""
        ...

    async def events(self, run_id: str, *, after_seq: int | None = None,
                     kinds: Collection[str] | None = None) -> list[StoredEvent]:
        """A run's events in ``seq`` order, optionally only those after ``after_seq`` and
        of ``kinds``."""
        ...

    async def events_page(
        self, run_id: str, *, after_seq: int | None = None, limit: int
    ) -> list[StoredEvent]:
        """At most ``limit`` of a run's events after ``after_seq``, in ``seq`` order, read
        without the rest (see :meth:`TraceStore.events_page`)."""
        ...

    async def run_info(self, run_id: str) -> RunInfo | None:
        """One run's :meth:`list_runs` row, by its exact id (see
        :meth:`TraceStore.run_info`)."""
        ...
