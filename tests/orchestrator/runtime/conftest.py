"""Fixtures of the runtime tests: an opened trace store of each backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from orchestrator.store import TraceStore, open_store
from tests.store.conftest import pg_server, pg_url, store_url  # noqa: F401  (each backend)


@pytest.fixture
async def trace_store(store_url: str) -> AsyncIterator[TraceStore]:  # noqa: F811
    """An opened, empty store of each backend (memory, SQLite, PostgreSQL)."""
    async with await open_store(store_url) as opened:
        yield opened
