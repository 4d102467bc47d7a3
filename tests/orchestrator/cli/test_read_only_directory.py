"""`ponder runs`, `show` and `export` read a SQLite store that the user may write neither
the file nor the directory of (another user's ``~/.ponder/ponder.db``, a read-only
mount), as the README promises; they failed there, SQLite being unable to create the
file's ``-shm``. A message names the store by the URL the user gave."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa
from alembic import command

from orchestrator.store import _migrate, open_store
from tests.store.conftest import full_run
from tests.store.read_only_reader import ReaderDir, as_reader, reader_argv, reader_directory


def ponder_as_reader(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(reader_argv([sys.executable, "-m", "orchestrator.cli", *args]),
                          capture_output=True, text=True, timeout=120, **as_reader())


@pytest.fixture
def reader_dir() -> Iterator[ReaderDir]:
    with reader_directory() as directory:
        yield directory


def _seed(path: Path) -> None:
    async def seed() -> None:
        async with await open_store(str(path)) as store:
            await store.append(full_run("top", started=1_000.0))
            await store.append(full_run("sub", started=1_001.0, parent_run_id="top",
                                        parent_attempt=1))

    anyio.run(seed)
    path.chmod(0o644)


def test_reading_commands_read_a_store_in_a_directory_they_may_not_write(
        reader_dir: ReaderDir) -> None:
    path = reader_dir.path / "ponder.db"
    _seed(path)
    reader_dir.lock()
    db = f"sqlite:///{path}"
    listed = ponder_as_reader("runs", "--json", "--db", db)
    assert listed.returncode == 0, listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)] == ["sub", "top"]
    shown = ponder_as_reader("show", "top", "--db", db)
    assert shown.returncode == 0, shown.stderr
    assert "run top: succeeded" in shown.stdout
    exported = ponder_as_reader("export", "top", "--db", db)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["run"]["id"] == "top"
    assert sorted(p.name for p in reader_dir.path.iterdir()) == ["ponder.db"]


@pytest.mark.parametrize("directory", ["read_only", "writable"])
def test_an_older_schema_is_named_by_the_url_given(reader_dir: ReaderDir,
                                                   directory: str) -> None:
    """The message said `sqlite:///file:...?mode=ro&uri=true`, the URL the store was
    opened with, where `ponder db upgrade` needs the user's (in a directory the user
    may write too, where the file alone is read-only)."""
    path = reader_dir.path / "ponder.db"
    _seed(path)
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        command.downgrade(_migrate.alembic_config(conn), "0001")
    engine.dispose()
    if directory == "writable":
        path.chmod(0o444)
        reader_dir.path.chmod(0o777)
    else:
        path.chmod(0o644)
        reader_dir.lock()
    db = f"sqlite:///{path}"
    proc = ponder_as_reader("runs", "--db", db)
    assert proc.returncode == 1
    message = proc.stderr.replace("\n", " ")
    assert f"the trace store at {db} has schema revision '0001'" in message, message
    assert "run `ponder db upgrade` with the same store URL" in message
    assert "file:" not in message and "mode=ro" not in message
