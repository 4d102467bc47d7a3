"""Reading a SQLite file this user may not write (another user's store, a read-only
mount, a copied trace), as it is, without writing anything next to it.

A trace store is in WAL mode, and SQLite's read-only open (``mode=ro``) of a WAL file
still needs its ``-shm`` index: it creates one (and the ``-wal``) where the directory
lets it, and reads one it may not write where both files exist already (SQLite 3.22
and later). Where neither holds (a file on its own in a directory this user may not
write: how a store looks once its last writer closed it), SQLite opens the file only
as ``immutable``, which reads the main file and ignores any ``-wal``, without locks.
That is exact only while no process writes the file, so each read here is checked:

- a file SQLite can open ``mode=ro`` is read so, with locks, as any reader: exact
  however many processes write it;
- otherwise, with no ``-wal`` holding transactions (none, or empty), every committed
  transaction is in the main file: it is read ``immutable``, on a fresh connection
  (one that was kept could hold pages a writer has changed since), and the read
  counts only if the files look the same after it as before (identity, size, time of
  change, and the ``-wal``'s size): a writer that started meanwhile makes it read again,
  ``mode=ro`` once that writer's ``-shm`` exists;
- a ``-wal`` that holds transactions but no ``-shm`` (a writer that was killed, or a
  copy of the file with its ``-wal`` only) cannot be read exactly by this user: that is
  refused, saying why, rather than showing the runs as they were before them.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from orchestrator.store._errors import StoreUnavailable

T = TypeVar("T")
_TRIES = 5
"""Reads of a file that changed while it was read, before giving up."""
_WAL_MODE = 2
"""The file format version bytes (offsets 18 and 19) of a database in WAL mode."""


def read_only_file_url(path: Path, *, immutable: bool = False) -> sa.URL:
    """The URL that opens ``path`` read-only (``mode=ro``), or as ``immutable``."""
    query = {"mode": "ro", "uri": "true", **({"immutable": "1"} if immutable else {})}
    # SQLite decodes the file: URI's %XX; the URL is built, not parsed, so quoted once
    return sa.URL.create("sqlite+pysqlite", database=f"file:{quote(str(path.absolute()))}",
                         query=query)


def _is_wal(path: Path) -> bool:
    """Whether the file's header says WAL mode (unreadable or short: not known, ``True``)."""
    try:
        with path.open("rb") as f:
            header = f.read(20)
    except OSError:
        return True
    return len(header) < 20 or header[18] == _WAL_MODE or header[19] == _WAL_MODE


def _side(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def shares_wal_index(path: Path) -> bool:
    """Whether SQLite can open ``path`` ``mode=ro`` with locks: it is not in WAL mode, or
    this user may create its ``-shm`` and ``-wal`` there, or may read both as they are."""
    if not _is_wal(path) or os.access(path.parent, os.W_OK | os.X_OK):
        return True
    return all(os.access(_side(path, s), os.R_OK) for s in ("-shm", "-wal"))


def _files(path: Path) -> tuple[Any, ...]:
    """What changes when a process writes the file: the main file's identity, size and
    times of change, and the ``-wal``'s size (0: none)."""
    main = path.stat()
    try:
        wal = _side(path, "-wal").stat().st_size
    except FileNotFoundError:
        wal = 0
    return main.st_ino, main.st_size, main.st_mtime_ns, main.st_ctime_ns, wal


def _engine(url: sa.URL, busy_timeout_s: float, **options: Any) -> sa.Engine:
    engine = sa.create_engine(url, **options)
    busy_ms = round(busy_timeout_s * 1000)

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # transactions begin in on_begin
        dbapi_conn.execute(f"PRAGMA busy_timeout = {busy_ms}")

    def on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN")  # one snapshot for the whole read

    sa_event.listen(engine, "connect", on_connect)
    sa_event.listen(engine, "begin", on_begin)
    return engine


class ReadOnlyRunner:
    """A :class:`~orchestrator.store._runners.Runner` that only reads a SQLite file, as
    the module says; nothing is ever written (:meth:`write` fails as SQLite does on a
    read-only file, so the store reports it as such).

    :param path: the SQLite file.
    :param url: the store's URL as messages show it.
    :param busy_timeout_s: how long a read waits for another process's lock.
    """

    def __init__(self, path: Path, url: str, busy_timeout_s: float) -> None:
        self.path = path
        self._url = url
        self._locked = _engine(read_only_file_url(path), busy_timeout_s)
        self._immutable = _engine(read_only_file_url(path, immutable=True), busy_timeout_s,
                                  poolclass=NullPool)

    async def ping(self) -> None:
        await self.read(lambda conn: conn.execute(sa.text("SELECT 1")))

    async def write(self, fn: Callable[[sa.Connection], T]) -> T:
        raise DBAPIError.instance(
            None, None, sqlite3.OperationalError("attempt to write a readonly database"),
            sqlite3.Error)

    async def read(self, fn: Callable[[sa.Connection], T]) -> T:
        return await anyio.to_thread.run_sync(self._read_sync, fn)

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self._locked.dispose)
        await anyio.to_thread.run_sync(self._immutable.dispose)

    def _read_sync(self, fn: Callable[[sa.Connection], T]) -> T:
        for _ in range(_TRIES):
            if shares_wal_index(self.path):
                try:
                    with self._locked.connect() as conn:
                        return fn(conn)
                except OperationalError:
                    # its last writer closed it (taking the -shm and -wal along)
                    # between the look and the open: look again
                    if shares_wal_index(self.path):
                        raise
                    continue
            before = _files(self.path)
            if before[-1]:
                raise StoreUnavailable(
                    f"SQLite file {self.path} has transactions in its write-ahead log "
                    f"({_side(self.path, '-wal').name}) that this user can read only "
                    f"with its {_side(self.path, '-shm').name}, which is not there and "
                    f"may not be created in {self.path.parent}; open it once as a user "
                    "who may write it (any ponder command, e.g. `ponder runs`), or copy "
                    "the file with its -wal into a directory you may write",
                    url=self._url,
                )
            try:
                with self._immutable.connect() as conn:
                    result = fn(conn)
            except DBAPIError:
                if _files(self.path) == before:
                    raise
                continue  # read while a writer changed the file: its pages did not match
            if _files(self.path) == before:
                return result
        raise StoreUnavailable(
            f"SQLite file {self.path} changed each time it was read (a process writes it, "
            "and this user may not create its -shm to read it while it does); try again",
            url=self._url,
        )
