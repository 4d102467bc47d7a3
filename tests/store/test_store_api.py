"""The public API of orchestrator.store is what __all__ says, no more."""

from __future__ import annotations

import orchestrator.store as store


def test_all_is_pinned() -> None:
    assert sorted(store.__all__) == sorted([
        "AmbiguousRunId", "ENV_VAR", "MEMORY_URL", "TRACE_FORMAT", "TRACE_VERSION",
        "EventConflict", "InvalidTrace", "MemoryStore", "RawEvent", "RunFilter", "RunInfo",
        "RunNotFound", "RunRecord", "RunStatus", "RunWriters", "SqlStore", "StepRecord",
        "StepStatus", "StoreError", "StoreHook", "StoreOutdated", "StoreUnavailable",
        "StoredEvent", "TraceStore", "default_store_url", "fold_events", "interrupted_runs",
        "is_interrupted", "open_store", "resolve_store_url", "resume_target", "upgrade",
    ])  # fmt: skip


def test_every_public_name_exists_and_is_homed_in_the_package() -> None:
    for name in store.__all__:
        value = getattr(store, name)
        module = getattr(value, "__module__", "orchestrator.store")
        # errors live with every other error in orchestrator.errors
        assert module.startswith(("orchestrator.store", "orchestrator.errors", "typing")), name


def test_store_errors_are_ponder_errors() -> None:
    from orchestrator.errors import PonderError

    for name in ("StoreError", "StoreUnavailable", "StoreOutdated", "RunNotFound",
                 "EventConflict", "InvalidTrace", "AmbiguousRunId"):  # fmt: skip
        assert issubclass(getattr(store, name), PonderError)
        assert issubclass(getattr(store, name), store.StoreError)
