"""The viewer package's public names."""

from __future__ import annotations

import orchestrator.viewer as viewer


def test_public_names_are_pinned() -> None:
    assert sorted(viewer.__all__) == [
        "API_PREFIX", "EVENTS_PAGE_MAX", "EventsPage", "GraphStep", "RunDetail", "RunsPage",
        "TraceReader", "create_app", "declared_steps", "graph_of",
    ]
    for name in viewer.__all__:
        assert getattr(viewer, name) is not None


def test_every_store_is_a_trace_reader() -> None:
    from orchestrator.store import MemoryStore, SqlStore

    assert isinstance(MemoryStore(), viewer.TraceReader)
    assert isinstance(SqlStore("sqlite+aiosqlite:///:memory:"), viewer.TraceReader)
