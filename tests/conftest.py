"""Shared fixtures for the whole suite."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (the backends' client libraries need it)."""
    return "asyncio"


@pytest.fixture(autouse=True, scope="session")
def _private_trace_store(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Runs started by tests (and their subprocesses) write to a throwaway store."""
    import os

    if "PONDER_DB_URL" not in os.environ:
        path = tmp_path_factory.mktemp("store") / "ponder.db"
        os.environ["PONDER_DB_URL"] = f"sqlite+aiosqlite:///{path}"
