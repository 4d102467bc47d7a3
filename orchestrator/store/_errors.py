"""The store's errors live in :mod:`orchestrator.errors` with every other error."""

from orchestrator.errors import (
    AmbiguousRunId,
    EventConflict,
    InvalidTrace,
    RunNotFound,
    StoreError,
    StoreOutdated,
    StoreUnavailable,
)

__all__ = [
    "AmbiguousRunId",
    "EventConflict",
    "InvalidTrace",
    "RunNotFound",
    "StoreError",
    "StoreOutdated",
    "StoreUnavailable",
]
