"""Where the SQL store's statements run: the store's logic is written once as
synchronous functions of a :class:`sqlalchemy.Connection`, and a runner executes
each function as one transaction.

- :class:`AsyncRunner` (PostgreSQL): an async engine (psycopg or asyncpg), the
  function run through ``AsyncConnection.run_sync``.
- :class:`ThreadRunner` (SQLite): a synchronous pysqlite engine, the whole
  function run in one worker thread. aiosqlite hops to its thread for every
  cursor call (about 16 per append); measured on an append of 1-8 events, that
  was 0.9-1.3 ms against 0.24 ms in one hop (``bench/store_bench.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol, TypeVar

import anyio
import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

T = TypeVar("T")
WRITE_OPTION = "ponder_write"


class Runner(Protocol):
    """Runs a function of a connection as one transaction."""

    async def ping(self) -> None:
        """Connect and run a trivial query (raises the driver's error)."""
        ...

    async def write(self, fn: Callable[[sa.Connection], T]) -> T:
        """Run ``fn`` in a write transaction, committed before returning; writers take turns
        where the database allows only one."""
        ...

    async def read(self, fn: Callable[[sa.Connection], T]) -> T:
        """Run ``fn`` on a connection for reading."""
        ...

    async def close(self) -> None:
        """Release every connection."""
        ...


def _ping(conn: sa.Connection) -> None:
    conn.execute(sa.text("SELECT 1"))


class AsyncRunner:
    """A :class:`Runner` over an async engine (PostgreSQL).

    :param url: the database URL with an async driver.
    :param connect_args: passed to the driver's connect.
    """

    def __init__(self, url: sa.URL, connect_args: dict[str, Any]) -> None:
        self._engine: AsyncEngine = create_async_engine(url, connect_args=connect_args)

    async def ping(self) -> None:
        async with self._engine.connect() as conn:
            await conn.run_sync(_ping)

    async def write(self, fn: Callable[[sa.Connection], T]) -> T:
        async with self._engine.begin() as conn:
            return await conn.run_sync(fn)

    async def read(self, fn: Callable[[sa.Connection], T]) -> T:
        async with self._engine.connect() as conn:
            return await conn.run_sync(fn)

    async def close(self) -> None:
        await self._engine.dispose()


class ThreadRunner:
    """A :class:`Runner` over a SQLite file (or ``:memory:``), one thread hop per call.

    Writes take an in-process lock, then ``BEGIN IMMEDIATE`` (the file's write lock,
    waited for up to the busy timeout when another process holds it), on one
    connection kept for the store's life. Reads run concurrently on pooled
    connections (WAL mode lets them read while a write is in progress); an
    in-memory database has a single connection, so its reads wait their turn too.

    :param url: a ``sqlite+pysqlite`` URL.
    :param busy_timeout_s: how long a statement waits for another process's lock.
    """

    def __init__(self, url: sa.URL, busy_timeout_s: float) -> None:
        self._memory = url.database in (None, "", ":memory:")
        options: dict[str, Any] = {}
        if self._memory:
            options = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        self._engine = sa.create_engine(url, **options)
        busy_ms = round(busy_timeout_s * 1000)

        def on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Hand transaction control to SQLAlchemy (see on_begin), so DDL is
            # transactional and writers can take the lock up front.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.close()

        def on_begin(conn: sa.Connection) -> None:
            # A writer takes the write lock at BEGIN: under WAL, a deferred
            # transaction that has read cannot wait its way into writing.
            writing = conn.get_execution_options().get(WRITE_OPTION, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")

        sa_event.listen(self._engine, "connect", on_connect)
        sa_event.listen(self._engine, "begin", on_begin)
        self._lock = anyio.Lock()
        self._writer: sa.Connection | None = None

    @contextlib.asynccontextmanager
    async def _turn(self, needed: bool) -> AsyncIterator[None]:
        if needed:
            async with self._lock:
                yield
        else:
            yield

    async def ping(self) -> None:
        await anyio.to_thread.run_sync(self._read_sync, _ping)

    async def write(self, fn: Callable[[sa.Connection], T]) -> T:
        async with self._lock:
            return await anyio.to_thread.run_sync(self._write_sync, fn)

    async def read(self, fn: Callable[[sa.Connection], T]) -> T:
        async with self._turn(self._memory):
            return await anyio.to_thread.run_sync(self._read_sync, fn)

    async def close(self) -> None:
        async with self._lock:
            await anyio.to_thread.run_sync(self._close_sync)

    def _write_sync(self, fn: Callable[[sa.Connection], T]) -> T:
        if self._writer is None:
            self._writer = self._engine.connect().execution_options(**{WRITE_OPTION: True})
        conn = self._writer
        try:
            with conn.begin():
                return fn(conn)
        except DBAPIError as exc:
            if exc.connection_invalidated:
                self._writer = None
                conn.close()
            raise

    def _read_sync(self, fn: Callable[[sa.Connection], T]) -> T:
        with self._engine.connect() as conn:
            return fn(conn)

    def _close_sync(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._engine.dispose()


def bind(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Callable[[sa.Connection], T]:
    """``fn`` with every argument but the leading connection bound."""
    return lambda conn: fn(conn, *args, **kwargs)
