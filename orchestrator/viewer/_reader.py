"""What the viewer needs of a trace store: five read methods, nothing that writes."""

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

    async def last_event(self, run_id: str, *, after_seq: int | None = None
                         ) -> StoredEvent | None:
        """A run's event of highest ``seq`` (only one above ``after_seq``), read without
        the rest (see :meth:`TraceStore.last_event`)."""
        ...

    async def run_info(self, run_id: str) -> RunInfo | None:
        """One run's :meth:`list_runs` row, by its exact id (see
        :meth:`TraceStore.run_info`)."""
        ...


@runtime_checkable
class ResolvesRunIds(Protocol):
    """A reader that also resolves a run id's start, as every
    :class:`~orchestrator.store.TraceStore` does: the viewer then takes a unique start of
    a run id where it takes the id (as the CLI does); over a reader without it, only
    whole ids."""

    async def resolve_run_id(self, run_id: str) -> str:
        """The id of the run that ``run_id`` names (see
        :meth:`TraceStore.resolve_run_id <orchestrator.store.TraceStore.resolve_run_id>`).

        :raises RunNotFound: when no run's id is it or starts with it.
        :raises AmbiguousRunId: when several runs' ids start with it.
        """
        ...
