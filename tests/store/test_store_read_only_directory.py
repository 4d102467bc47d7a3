"""A SQLite store read by a user who may write neither the file nor its directory
(another user's ``~/.ponder/ponder.db``, a read-only mount): SQLite's read-only open of
a WAL file needs a ``-shm`` it cannot create there. It is read as it is, exactly: with
SQLite's locks where its writer's ``-shm`` is there to read, else as ``immutable`` while
no process writes it; a write-ahead log holding transactions that cannot be read is
refused rather than left out (see ``orchestrator/store/_readonly.py``).

Only SQLite has files; the other backends have no such case.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import pytest

from orchestrator.errors import StoreError, StoreUnavailable
from orchestrator.store import SqlStore, _readonly, open_store
from tests.store.conftest import full_run
from tests.store.read_only_reader import Reader, ReaderDir, reader_directory


@pytest.fixture
def reader_dir() -> Iterator[ReaderDir]:
    with reader_directory() as directory:
        yield directory


def _seed(path: Path, *run_ids: str) -> None:
    async def seed() -> None:
        async with await open_store(str(path)) as store:
            for i, rid in enumerate(run_ids):
                await store.append(full_run(rid, started=1_000.0 + i))

    anyio.run(seed)


@pytest.fixture
def readers() -> Iterator[list[Reader]]:
    started: list[Reader] = []
    yield started
    for reader in started:
        reader.close()


@pytest.mark.parametrize("how", ["read_only", "mode_ro_url"])
def test_a_file_alone_in_a_directory_it_may_not_write_is_read(
        reader_dir: ReaderDir, readers: list[Reader], how: str) -> None:
    """Opened with ``read_only=True`` (``ponder runs``), or by the ``mode=ro`` URL that
    ``read_only_url`` gives (``ponder view``)."""
    path = reader_dir.path / "ponder.db"
    _seed(path, "a", "b")
    path.chmod(0o644)
    reader_dir.lock()
    assert sorted(p.name for p in reader_dir.path.iterdir()) == ["ponder.db"]
    if how == "read_only":
        reader = Reader(f"sqlite:///{path}")
    else:  # as read_only_url writes it, for a file this (test) user may write too
        reader = Reader(f"sqlite:///file:{quote(quote(str(path)), safe='/')}?mode=ro&uri=true",
                        read_only=False)
    readers.append(reader)
    assert reader.first == {"opened": True}, reader.first
    assert reader.runs() == {"runs": ["b", "a"]}
    # nothing was written next to it
    assert sorted(p.name for p in reader_dir.path.iterdir()) == ["ponder.db"]


def test_a_store_being_written_is_read_with_its_log(
        reader_dir: ReaderDir, readers: list[Reader]) -> None:
    """The writer's transactions are in its -wal, not yet in the file: a reader that
    read the file alone (``immutable``) would miss them."""
    path = reader_dir.path / "ponder.db"
    _seed(path, "old")
    path.chmod(0o644)

    async def write_while_read() -> None:
        async with await open_store(str(path)) as writer:
            await writer.append(full_run("new", started=2_000.0))  # in the -wal now
            reader_dir.lock()
            reader = Reader(f"sqlite:///{path}")
            readers.append(reader)
            assert reader.first == {"opened": True}, reader.first
            assert reader.runs() == {"runs": ["new", "old"]}
            await writer.append(full_run("newer", started=3_000.0))
            assert reader.runs() == {"runs": ["newer", "new", "old"]}

    anyio.run(write_while_read)


def test_a_writer_that_starts_later_is_seen(
        reader_dir: ReaderDir, readers: list[Reader]) -> None:
    """A long reader (``ponder view``) opened the file alone, as ``immutable``; a writer
    that opens it afterwards is read through its -shm, not missed."""
    path = reader_dir.path / "ponder.db"
    _seed(path, "old")
    path.chmod(0o644)
    reader_dir.lock()
    reader = Reader(f"sqlite:///{path}")
    readers.append(reader)
    assert reader.runs() == {"runs": ["old"]}
    reader_dir.unlock()  # the owner's writer creates its -shm and -wal

    async def write() -> None:
        async with await open_store(str(path)) as writer:
            await writer.append(full_run("new", started=2_000.0))
            reader_dir.lock()
            assert reader.runs() == {"runs": ["new", "old"]}
        # the writer closed: its -wal went into the file, and both side files went
        assert reader.runs() == {"runs": ["new", "old"]}

    anyio.run(write)


def test_a_log_without_its_index_is_refused(
        reader_dir: ReaderDir, readers: list[Reader], tmp_path: Path) -> None:
    """A -wal holding transactions, with no -shm (a copy of the file and its -wal, a
    writer killed in a directory since made read-only): no exact read is possible."""
    source = tmp_path / "ponder.db"
    _seed(source, "old")
    path = reader_dir.path / "ponder.db"

    async def copy_while_written() -> None:
        async with await open_store(str(source)) as writer:
            await writer.append(full_run("new", started=2_000.0))
            shutil.copy(source, path)
            shutil.copy(source.with_name("ponder.db-wal"), path.with_name("ponder.db-wal"))

    anyio.run(copy_while_written)
    for name in ("ponder.db", "ponder.db-wal"):
        (reader_dir.path / name).chmod(0o644)
    reader_dir.lock()
    reader = Reader(f"sqlite:///{path}")
    readers.append(reader)
    error = reader.first.get("error", "")
    assert error.startswith(f"SQLite file {path} has transactions in its write-ahead log "
                            "(ponder.db-wal)"), reader.first


@pytest.mark.anyio
async def test_a_read_that_overlapped_a_writer_is_read_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read as ``immutable``, a file that changed during the read is read again; one that
    changes each time is refused (here the files' look is faked: the writer's timing
    cannot be)."""
    path = tmp_path / "ponder.db"
    await anyio.to_thread.run_sync(_seed, path, "a")
    monkeypatch.setattr(_readonly, "shares_wal_index", lambda _path: False)
    looks: list[int] = []
    real = _readonly._files

    def changing(p: Path) -> tuple[Any, ...]:
        looks.append(1)
        return (len(looks) if len(looks) <= changes else 0, *real(p))

    changes = 3  # the 1st and 2nd reads see a change; the 3rd does not
    async with await open_store(str(path), read_only=True) as store:
        monkeypatch.setattr(_readonly, "_files", changing)
        assert [r.id for r in await store.list_runs()] == ["a"]
        assert len(looks) == 6
        changes = 10**6
        with pytest.raises(StoreUnavailable, match="changed each time it was read"):
            await store.list_runs()


@pytest.mark.anyio
async def test_a_store_opened_read_only_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ponder.db"
    await anyio.to_thread.run_sync(_seed, path, "a")
    async with SqlStore(str(path), read_only=True) as store:
        assert store.path == path
        with pytest.raises(StoreError, match="is open read-only: cannot append events"):
            await store.append(full_run("b"))
        with pytest.raises(StoreError, match="is open read-only: cannot delete runs"):
            await store.delete_runs(["a"])
        assert [r.id for r in await store.list_runs()] == ["a"]
