"""Opening a store already at the newest schema revision does not import Alembic, whose
import (with Mako and Pygments) took a tenth of a second of every command's start: the
revision in the store's version table is compared with the one the migration files end
at, read from their ``revision`` lines. Anything else (an empty database, an older or
unknown revision, migration files that are not one line of revisions) takes Alembic's
path as before, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from orchestrator.store import StoreOutdated, _migrate, open_store

#: opens the store named by argv[1] and prints whether Alembic was imported
_OPEN = """
import asyncio, sys
from orchestrator.store import open_store

async def main():
    store = await open_store(sys.argv[1])
    await store.close()

asyncio.run(main())
print("alembic" in sys.modules)
"""


def _opened_with_alembic(url: str) -> bool:
    done = subprocess.run([sys.executable, "-c", _OPEN, url], capture_output=True, text=True,
                          timeout=120, check=True)
    return done.stdout.strip() == "True"


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres",
                                                             marks=pytest.mark.postgres)])
def test_a_store_at_the_newest_revision_opens_without_alembic(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = (f"sqlite+aiosqlite:///{tmp_path / 'ponder.db'}" if backend == "sqlite"
           else request.getfixturevalue("pg_url"))
    assert _opened_with_alembic(url)  # the schema is created through Alembic
    assert not _opened_with_alembic(url)
    with sa.create_engine(url.replace("+aiosqlite", "")).connect() as conn:
        assert _migrate.current_revision(conn) == _migrate.head_revision()


def test_the_files_end_at_alembics_head() -> None:
    assert _migrate._head_from_files() == _migrate.head_revision()


@pytest.mark.anyio
async def test_a_store_at_an_older_revision_is_still_refused(
        tmp_path: Path, add_test_revision: Callable[[], None]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ponder.db'}"
    await (await open_store(url)).close()
    add_test_revision()
    assert _migrate._head_from_files() == "9999_test"
    with pytest.raises(StoreOutdated, match="run `ponder db upgrade`"):
        await open_store(url, auto_upgrade=False)


@pytest.mark.parametrize(("lines", "head"), [
    ({"a.py": 'revision = "0001"\ndown_revision = None\n',
      "b.py": '"""Revision ID: 0002"""\nrevision: str = "0002"\ndown_revision = "0001"\n'},
     "0002"),
    # two ends, a merge's tuple, a parent no file has, unreadable: Alembic answers
    ({"a.py": 'revision = "1"\ndown_revision = None\n',
      "b.py": 'revision = "2"\ndown_revision = "1"\n',
      "c.py": 'revision = "3"\ndown_revision = "1"\n'}, None),
    ({"a.py": 'revision = "1"\ndown_revision = None\n',
      "b.py": 'revision = "2"\ndown_revision = ("1", "x")\n'}, None),
    ({"b.py": 'revision = "2"\ndown_revision = "1"\n'}, None),
    ({"a.py": "revision = make_id()\ndown_revision = None\n"}, None),
])
def test_the_head_is_read_only_from_one_line_of_revisions(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: dict[str, str],
        head: str | None) -> None:
    (tmp_path / "versions").mkdir()
    (tmp_path / "versions" / "__init__.py").write_text("")
    for name, text in lines.items():
        (tmp_path / "versions" / name).write_text(text)
    monkeypatch.setattr(_migrate, "MIGRATIONS_DIR", tmp_path)
    assert _migrate._head_from_files() == head
