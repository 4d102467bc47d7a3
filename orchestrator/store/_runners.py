"""Where the SQL store's statements run: the store's logic is written once as
synchronous functions of a :class:`sqlalchemy.Connection`, and a runner executes
each function as one transaction.

- :class:`AsyncRunner` (PostgreSQL): an async engine (psycopg or asyncpg), the
  function run through ``AsyncConnection.run_sync``.
- :class:`ThreadRunner` (SQLite): a synchronous pysqlite engine. Every write runs
  in one long-lived writer thread that owns the write connection, fed through a
  queue; the caller awaits a future that the thread resolves on the caller's loop,
  waking it through an eventfd the loop watches (:class:`_LoopWaker`).

Measured for a chain of zero-latency steps, one append of two events each, on a
shared 2-vCPU machine (``bench/store_overhead_check.py``, CPU per append):
aiosqlite hops to its thread for every cursor call (about 16 per append, 0.9-1.3 ms);
``anyio.to_thread`` makes one hop but costs 60-80 us of CPU for it, a dedicated
thread with a future about half that, and the eventfd another 5 us less than
``call_soon_threadsafe``. The hot path, an append of events, also bypasses
SQLAlchemy: it is one multi-row INSERT on the driver connection
(:meth:`ThreadRunner.write_dbapi`), about 21 us against 78 us through SQLAlchemy Core.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import os
import queue
import sqlite3
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

import anyio
import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

T = TypeVar("T")
_log = logging.getLogger(__name__)
WRITE_OPTION = "ponder_write"
SYNCHRONOUS_MODES = ("NORMAL", "FULL", "EXTRA")
"""The values of SQLite's ``synchronous`` pragma a store may run with (see :class:`ThreadRunner`)."""


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


class _PipelineAbortNoise(logging.Filter):
    """Drops psycopg's "error ignored terminating <AsyncPipeline ...>: pipeline aborted"
    warning. psycopg logs it when a statement of a pipeline (its ``executemany``) failed
    and closing the pipeline fails in turn; the statement's own error is raised and the
    store reports it (an import of a run already stored says so), so the warning only
    repeats it, and with no logging configured Python printed it to stderr before the
    store's message, depending on timing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str)
                    and record.msg.startswith("error ignored terminating"))


_PSYCOPG_NOISE = _PipelineAbortNoise()


class AsyncRunner:
    """A :class:`Runner` over an async engine (PostgreSQL).

    :param url: the database URL with an async driver.
    :param connect_args: passed to the driver's connect.
    """

    def __init__(self, url: sa.URL, connect_args: dict[str, Any]) -> None:
        # pool_pre_ping: a pooled connection the server dropped while it sat idle (a
        # restart, a failover, a proxy's idle timeout) is replaced when taken, instead
        # of failing the next append, and with it the run. It costs a round trip per
        # transaction (about a tenth of an append on a local server).
        self._engine: AsyncEngine = create_async_engine(
            url, connect_args=connect_args, pool_pre_ping=True
        )
        if url.get_driver_name() == "psycopg":
            logging.getLogger("psycopg").addFilter(_PSYCOPG_NOISE)  # addFilter adds it once

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


# -- the SQLite writer thread ------------------------------------------------------------

_QUEUED, _RUNNING, _DONE, _ABANDONED = range(4)


class _Job(Generic[T]):
    """One call for the writer thread, and how its caller learns the outcome.

    On asyncio the caller awaits ``future``, which ``waker`` resolves on its loop;
    elsewhere it waits on ``done`` in a worker thread. ``state`` moves under the
    writer's lock, so that a caller cancelled before its job starts can take it off
    the queue.
    """

    __slots__ = ("done", "error", "future", "result", "state", "waker", "work")

    def __init__(self, work: Callable[[], T]) -> None:
        self.work = work
        self.state = _QUEUED
        self.result: T | None = None
        self.error: BaseException | None = None
        self.waker: _SoonWaker | _LoopWaker | None = None
        self.future: asyncio.Future[None] | None = None
        self.done: threading.Event | None = None

    def outcome(self) -> T:
        error, self.error = self.error, None  # no cycle through the traceback
        if error is not None:
            raise error
        return self.result  # type: ignore[return-value]


def _asyncio_loop() -> asyncio.AbstractEventLoop | None:
    """The running asyncio loop; None under another event loop (trio)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _wake(job: _Job[Any]) -> None:
    # On the caller's loop; the future may have been cancelled with its task.
    future = job.future
    if future is not None and not future.done():
        future.set_result(None)


class _SoonWaker:
    """Wakes a job's caller on its asyncio loop with ``call_soon_threadsafe``."""

    __slots__ = ("loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def notify(self, job: _Job[Any]) -> None:
        try:
            self.loop.call_soon_threadsafe(_wake, job)
        except RuntimeError:  # the loop is closed: nobody is waiting
            pass


class _LoopWaker:
    """Wakes jobs' callers on one asyncio loop through an eventfd that the loop watches.

    Cheaper than ``call_soon_threadsafe`` (no handle, and one read where the loop's
    own wake-up socket takes two). The writer thread may notify until it has ended,
    so the eventfd is closed only after that (:meth:`close`).

    :raises OSError, NotImplementedError, AttributeError: where there is no eventfd
        (not Linux) or the loop cannot watch one (Windows' proactor).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._ready: collections.deque[_Job[Any]] = collections.deque()
        try:
            loop.add_reader(self._fd, self._on_ready)
        except BaseException:
            os.close(self._fd)
            raise

    def notify(self, job: _Job[Any]) -> None:
        """In the writer thread: wake the job's caller."""
        self._ready.append(job)
        try:
            os.eventfd_write(self._fd, 1)
        except OSError:  # not on an open eventfd; never leave the caller hanging
            try:
                self.loop.call_soon_threadsafe(self._on_ready)
            except RuntimeError:  # the loop is closed: nobody is waiting
                pass

    def _on_ready(self) -> None:
        # Read before draining: a job appended after the read comes with a new write.
        try:
            os.eventfd_read(self._fd)
        except BlockingIOError:
            pass
        ready = self._ready
        while ready:
            _wake(ready.popleft())

    def close(self) -> None:
        """On the loop's thread, or once the loop is closed; after the writer thread ended."""
        if not self.loop.is_closed():
            self.loop.remove_reader(self._fd)
        os.close(self._fd)


class _Writer:
    """A thread that runs jobs one at a time, in the order they were submitted."""

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: _Job[Any]) -> None:
        self._queue.put(job)

    def stop(self) -> None:
        """End the thread once the jobs submitted so far are done."""
        self._queue.put(None)

    def join(self) -> None:
        self._thread.join()

    def _main(self) -> None:
        while self._run_next():
            pass

    def _run_next(self) -> bool:
        # A method per job, so that no job (and through it the runner) stays referenced
        # while the thread waits for the next.
        job = self._queue.get()
        if job is None:
            return False
        with self.lock:
            if job.state == _ABANDONED:
                return True
            job.state = _RUNNING
        try:
            job.result = job.work()
        except BaseException as exc:  # handed to the caller, whatever it is
            job.error = exc
        with self.lock:
            job.state = _DONE
        if job.done is not None:
            job.done.set()
        if job.waker is not None:
            try:
                job.waker.notify(job)
            except Exception:  # the thread must go on serving the others
                _log.exception("cannot wake the caller of a SQLite write")
        return True


class ThreadRunner:
    """A :class:`Runner` over a SQLite file (or ``:memory:``).

    Writes run one at a time in a writer thread of the store's own, on one
    connection kept for the store's life, each in ``BEGIN IMMEDIATE`` (the file's
    write lock, waited for up to the busy timeout when another process holds it).
    This process's writers queue for that thread, so they never meet "database is
    locked". Reads run concurrently in worker threads on pooled connections (WAL
    mode lets them read while a write is in progress); an in-memory database has a
    single connection, so its reads queue for the writer thread too.

    Durability: WAL with ``synchronous=NORMAL`` by default. A committed batch is in
    the WAL file when :meth:`write` returns, so it survives the process being killed
    (SIGKILL, OOM); it may be lost, though the file stays intact, if the machine
    loses power or its kernel crashes before the next checkpoint. ``synchronous=FULL``
    (the URL's ``?synchronous=FULL``) syncs the WAL at every commit too, at a cost
    of a disk flush per append.

    A cancelled caller takes its job off the queue if it has not started; a started
    one is waited for (shielded) before the cancellation goes on, so a transaction
    is committed or rolled back whole, never left half done.

    :param url: a ``sqlite+pysqlite`` URL.
    :param busy_timeout_s: how long a statement waits for another process's lock.
    :param synchronous: SQLite's ``synchronous`` pragma, one of :data:`SYNCHRONOUS_MODES`.
    """

    def __init__(self, url: sa.URL, busy_timeout_s: float, synchronous: str = "NORMAL") -> None:
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}, not {synchronous!r}")
        self._memory = url.database in (None, "", ":memory:")
        options: dict[str, Any] = {}
        if self._memory:
            options = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        self._engine = sa.create_engine(url, **options)
        busy_ms = round(busy_timeout_s * 1000)

        def on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Hand transaction control to SQLAlchemy (see on_begin) and to
            # write_dbapi, so DDL is transactional and writers take the lock up front.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA synchronous = {synchronous}")
            cursor.close()

        def on_begin(conn: sa.Connection) -> None:
            # A writer takes the write lock at BEGIN: under WAL, a deferred
            # transaction that has read cannot wait its way into writing.
            writing = conn.get_execution_options().get(WRITE_OPTION, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")

        sa_event.listen(self._engine, "connect", on_connect)
        sa_event.listen(self._engine, "begin", on_begin)
        self._thread_name = f"ponder-sqlite-writer:{url.database or ':memory:'}"
        self._writer_thread: _Writer | None = None
        self._closed = False
        # The eventfd waker of the loop the store is used on (None: not made yet, or
        # this platform has none), and those of loops it was used on before.
        self._waker: _LoopWaker | None = None
        self._no_waker = False
        self._old_wakers: list[_LoopWaker] = []
        # Used only in the writer thread: the write connection, and its driver connection.
        self._writer: sa.Connection | None = None
        self._dbapi: sqlite3.Connection | None = None

    # -- the Runner protocol -------------------------------------------------------

    async def ping(self) -> None:
        await self.read(_ping)

    async def write(self, fn: Callable[[sa.Connection], T]) -> T:
        return await self._call(functools.partial(self._write_sync, fn))

    async def write_dbapi(
        self, fn: Callable[[sqlite3.Connection], T], *, one_statement: bool = False
    ) -> T:
        """Run ``fn`` on the write connection's own ``sqlite3.Connection``, in one
        ``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction, without SQLAlchemy.

        A ``sqlite3`` error comes back as SQLAlchemy wraps it (``IntegrityError``,
        ``OperationalError``, ...), after the transaction is rolled back.

        :param one_statement: ``fn`` runs a single statement, which SQLite makes a
            transaction of its own (taking the write lock as ``BEGIN IMMEDIATE`` does);
            it is run without the ``BEGIN`` and ``COMMIT`` round trips.
        """
        return await self._call(functools.partial(self._write_dbapi_sync, fn, one_statement))

    async def read(self, fn: Callable[[sa.Connection], T]) -> T:
        if self._memory:
            return await self._call(functools.partial(self._read_sync, fn))
        return await anyio.to_thread.run_sync(self._read_sync, fn)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        writer, self._writer_thread = self._writer_thread, None
        with anyio.CancelScope(shield=True):
            if writer is not None:
                await self._call(self._close_writer_sync, writer)
                writer.stop()
                await anyio.to_thread.run_sync(writer.join)
            self._close_wakers()
            await anyio.to_thread.run_sync(self._engine.dispose)

    def _close_wakers(self) -> None:
        """Once the writer thread has ended: close the eventfds."""
        wakers, self._old_wakers = self._old_wakers, []
        if self._waker is not None:
            wakers.append(self._waker)
            self._waker = None
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for waker in wakers:
            if waker.loop is running or waker.loop.is_closed():
                waker.close()
            else:  # a loop that still runs, in another thread (unusual): let it close it
                try:
                    waker.loop.call_soon_threadsafe(waker.close)
                except RuntimeError:  # it closed meanwhile
                    waker.close()

    def _waker_for(self, loop: asyncio.AbstractEventLoop) -> _SoonWaker | _LoopWaker:
        waker = self._waker
        if waker is not None and waker.loop is loop:
            return waker
        if self._no_waker:
            return _SoonWaker(loop)
        if waker is not None:
            if not waker.loop.is_closed():  # used from two loops at once: the other keeps it
                return _SoonWaker(loop)
            # The writer thread may still notify it: its eventfd is closed with the runner.
            self._old_wakers.append(waker)
            self._waker = None
        try:
            self._waker = _LoopWaker(loop)
        except (AttributeError, NotImplementedError, OSError):
            self._no_waker = True
            return _SoonWaker(loop)
        return self._waker

    # -- handing a call to the writer thread -------------------------------------------

    async def _call(self, work: Callable[[], T], writer: _Writer | None = None) -> T:
        # No checkpoint first: a cancellation already pending is delivered at the first
        # wait below, and the job, still queued, is then abandoned.
        if writer is None:
            if self._closed:
                raise RuntimeError("the SQLite runner is closed")
            writer = self._writer_thread
            if writer is None:
                writer = self._writer_thread = _Writer(self._thread_name)
                # A store dropped without close() does not keep an idle thread.
                weakref.finalize(self, writer.stop)
        job: _Job[T] = _Job(work)
        loop = _asyncio_loop()
        if loop is not None:
            job.waker, job.future = self._waker_for(loop), loop.create_future()
            writer.submit(job)
            try:
                await job.future
            except BaseException:
                await self._settle_cancelled(writer, job, loop)
                raise
        else:
            job.done = threading.Event()
            writer.submit(job)
            try:
                await anyio.to_thread.run_sync(job.done.wait, abandon_on_cancel=True)
            except BaseException:
                await self._settle_cancelled(writer, job, None)
                raise
        return job.outcome()

    @staticmethod
    async def _settle_cancelled(
        writer: _Writer, job: _Job[Any], loop: asyncio.AbstractEventLoop | None
    ) -> None:
        """After the caller was cancelled: drop the job if it has not started, else wait
        for it to end, so that the cancellation goes on with no transaction in flight."""
        with writer.lock:
            if job.state == _QUEUED:
                job.state = _ABANDONED
                if job.done is not None:
                    job.done.set()  # releases the abandoned waiting thread
                return
            if job.state == _DONE:
                return
            # Running: _wake runs on this loop after the job is done, so it finds this future.
            if loop is not None:
                job.future = loop.create_future()
        with anyio.CancelScope(shield=True):
            if loop is not None and job.future is not None:
                await job.future
            elif job.done is not None:
                await anyio.to_thread.run_sync(job.done.wait)

    # -- in the writer thread -------------------------------------------------------------

    def _connection(self) -> sa.Connection:
        if self._writer is None:
            self._writer = self._engine.connect().execution_options(**{WRITE_OPTION: True})
            self._dbapi = self._writer.connection.driver_connection
        return self._writer

    def _drop_writer(self) -> None:
        conn, self._writer, self._dbapi = self._writer, None, None
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except Exception:  # the connection is being discarded anyway
                pass

    def _write_sync(self, fn: Callable[[sa.Connection], T]) -> T:
        conn = self._connection()
        try:
            with conn.begin():
                return fn(conn)
        except DBAPIError as exc:
            if exc.connection_invalidated:
                self._drop_writer()
            raise
        except sqlite3.Error as exc:  # from fn's own use of the driver connection
            raise DBAPIError.instance(None, None, exc, sqlite3.Error) from exc

    def _write_dbapi_sync(self, fn: Callable[[sqlite3.Connection], T], one_statement: bool) -> T:
        dbapi = self._dbapi
        if dbapi is None:
            self._connection()
            dbapi = self._dbapi
            assert dbapi is not None
        try:
            if one_statement:
                return fn(dbapi)
            dbapi.execute("BEGIN IMMEDIATE")
            result = fn(dbapi)
            dbapi.execute("COMMIT")
        except BaseException as exc:
            if dbapi.in_transaction:
                try:
                    dbapi.execute("ROLLBACK")
                except sqlite3.Error:
                    self._drop_writer()  # the next write starts on a fresh connection
            if isinstance(exc, sqlite3.Error):
                raise DBAPIError.instance(None, None, exc, sqlite3.Error) from exc
            raise
        return result

    def _read_sync(self, fn: Callable[[sa.Connection], T]) -> T:
        with self._engine.connect() as conn:
            return fn(conn)

    def _close_writer_sync(self) -> None:
        conn, self._writer, self._dbapi = self._writer, None, None
        if conn is not None:
            conn.close()


def bind(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Callable[[sa.Connection], T]:
    """``fn`` with every argument but the leading connection bound."""
    return lambda conn: fn(conn, *args, **kwargs)
