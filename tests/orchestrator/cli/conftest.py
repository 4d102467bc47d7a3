"""Fixtures of the command tests: an empty trace store of each SQL backend."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from orchestrator.store import open_store
from tests.store.conftest import pg_server, pg_url  # noqa: F401  (a throwaway PostgreSQL)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The ``--db`` URL of an empty store: a SQLite file, a PostgreSQL database."""
    url: str = (request.getfixturevalue("pg_url") if request.param == "postgres"
                else f"sqlite:///{tmp_path / 'trace.db'}")

    async def create() -> None:  # the reading commands refuse a store that does not exist
        await (await open_store(url)).close()

    anyio.run(create)
    return url
