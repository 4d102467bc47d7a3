"""Errors of the trace store (to be merged into :mod:`orchestrator.errors`).

The tree::

    PonderError
    └── StoreError            the trace store failed (names the URL, password hidden)
        ├── StoreUnavailable  cannot connect or open: server unreachable, SQLite file
        │                     locked by another process, read-only, or not creatable
        ├── StoreOutdated     the database schema is older than this Ponder;
        │                     the message names ``ponder db upgrade``
        ├── RunNotFound       no event of that run id is stored
        ├── EventConflict     an event's (run_id, seq) is already stored; nothing of
        │                     the batch was written
        └── InvalidTrace      an imported trace document is malformed; nothing was written

A bad URL (unknown scheme, a synchronous driver) is a
:class:`orchestrator.errors.ConfigError`, not a store error.
"""

from __future__ import annotations

from orchestrator.errors import PonderError


class StoreError(PonderError):
    """The trace store failed.

    :param message: what happened, naming the store (password hidden).
    :param url: the store's URL with the password hidden, when known.
    """

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class StoreUnavailable(StoreError):
    """The store cannot be opened or reached (server down, file locked or read-only)."""


class StoreOutdated(StoreError):
    """The database's schema revision is older than this Ponder's; run ``ponder db upgrade``.

    :param current: the database's revision (``None``: no Ponder schema yet).
    :param head: the revision this Ponder needs.
    """

    def __init__(self, message: str, *, url: str, current: str | None, head: str) -> None:
        super().__init__(message, url=url)
        self.current = current
        self.head = head


class RunNotFound(StoreError):
    """No event of the run is stored.

    :param run_id: the run asked for.
    """

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run {run_id!r} in the trace store")
        self.run_id = run_id


class EventConflict(StoreError):
    """An event's ``(run_id, seq)`` is already stored, or appears twice in one batch.

    The batch it came in was not written at all.

    :param run_id: the run of the first conflicting event.
    :param seq: its sequence number.
    """

    def __init__(self, message: str, *, run_id: str, seq: int) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.seq = seq


class InvalidTrace(StoreError):
    """An imported trace document is malformed; the store was left unchanged.

    :param problems: each problem, prefixed with its location in the document
        (``events[3].step_id: Field required``).
    """

    def __init__(self, problems: list[str]) -> None:
        shown = problems[:10]
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        super().__init__("invalid trace document:\n  " + "\n  ".join(shown) + more)
        self.problems = problems
