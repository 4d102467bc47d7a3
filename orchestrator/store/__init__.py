"""The trace store: every event of every run, append-only, in SQLite, PostgreSQL or memory.

The scheduler writes through :class:`StoreHook`; the CLI, the viewer and resume read
with :meth:`TraceStore.events`, :meth:`TraceStore.read_run` (folded by
:func:`fold_events`) and :meth:`TraceStore.list_runs`. :func:`open_store` picks the
backend from a URL. :func:`interrupted_runs` tells which runs stored as running lost
their process (computed when read, never stored).
"""

from orchestrator.store._base import TRACE_FORMAT, TRACE_VERSION, StoreHook, TraceStore
from orchestrator.store._errors import (
    AmbiguousRunId,
    EventConflict,
    InvalidTrace,
    RunNotFound,
    StoreError,
    StoreOutdated,
    StoreUnavailable,
)
from orchestrator.store._liveness import (
    RunWriters,
    interrupted_runs,
    is_interrupted,
    resume_target,
)
from orchestrator.store._memory import MemoryStore
from orchestrator.store._models import (
    RawEvent,
    RunFilter,
    RunInfo,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
    StoredEvent,
)
from orchestrator.store._open import (
    ENV_VAR,
    MEMORY_URL,
    default_store_url,
    open_store,
    resolve_store_url,
    upgrade,
)
from orchestrator.store._sql import SqlStore
from orchestrator.store.fold import fold_events

__all__ = [
    "ENV_VAR",
    "MEMORY_URL",
    "TRACE_FORMAT",
    "TRACE_VERSION",
    "AmbiguousRunId",
    "EventConflict",
    "InvalidTrace",
    "MemoryStore",
    "RawEvent",
    "RunFilter",
    "RunInfo",
    "RunNotFound",
    "RunRecord",
    "RunStatus",
    "RunWriters",
    "SqlStore",
    "StepRecord",
    "StepStatus",
    "StoreError",
    "StoreHook",
    "StoreOutdated",
    "StoreUnavailable",
    "StoredEvent",
    "TraceStore",
    "default_store_url",
    "fold_events",
    "interrupted_runs",
    "is_interrupted",
    "open_store",
    "resolve_store_url",
    "resume_target",
    "upgrade",
]
