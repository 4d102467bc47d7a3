"""`ponder db upgrade` says what it did: it said "is up to date" of a store it had just
made (a mistyped SQLite path is a new, empty store) and of one it had just upgraded. On
every store backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio

from orchestrator.store import open_store
from orchestrator.store._url import hide_password
from tests.orchestrator.cli.test_json_errors import ponder
from tests.store.conftest import (
    HEAD,
    TEST_REVISION_ID,
    add_test_revision,  # noqa: F401  (a further revision)
)


def _where(db: str) -> str:
    return hide_password(db)


def _made(db: str) -> None:
    """Make the store at ``db`` (the fixture's PostgreSQL database is empty)."""

    async def make() -> None:
        await (await open_store(db)).close()

    anyio.run(make)


def test_upgrade_of_a_store_at_head_says_it_is_up_to_date(db: str) -> None:
    _made(db)
    result = ponder("db", "upgrade", "--db", db)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{_where(db)} is up to date (schema {HEAD})\n"


def test_upgrade_of_an_older_store_names_both_schemas(
        db: str, add_test_revision: Callable[[], None]) -> None:  # noqa: F811
    _made(db)
    add_test_revision()
    result = ponder("db", "upgrade", "--db", db)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"upgraded {_where(db)} from schema {HEAD} to {TEST_REVISION_ID}\n"
    again = ponder("db", "upgrade", "--db", db)
    assert again.stdout == f"{_where(db)} is up to date (schema {TEST_REVISION_ID})\n"


def test_upgrade_where_there_is_no_store_says_it_made_one(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'typo.db'}"
    result = ponder("db", "upgrade", "--db", db)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"created the trace store at {db} (schema {HEAD})\n"
    assert (tmp_path / "typo.db").exists()


def test_upgrade_names_a_sqlite_path_holding_an_at_sign_whole(tmp_path: Path) -> None:
    """The line kept what followed the last '@' of the URL (to drop a password): a SQLite
    file `a@b.db` was named `b.db`."""
    db = f"sqlite:///{tmp_path / 'a@b.db'}"
    result = ponder("db", "upgrade", "--db", db)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"created the trace store at {db} (schema {HEAD})\n"
