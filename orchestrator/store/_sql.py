"""The SQLAlchemy trace store: SQLite and PostgreSQL (psycopg or asyncpg).

Every operation is a synchronous function of a connection, run as one
transaction by a runner (see :mod:`orchestrator.store._runners`).
"""

from __future__ import annotations

import functools
import importlib
import os
import sqlite3
import stat
from collections.abc import Awaitable, Callable, Collection, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import anyio
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError

from orchestrator._extras import extra_missing
from orchestrator.errors import ConfigError
from orchestrator.store._base import (
    _COUNT_MAX,
    _SEQ_BEYOND,
    _SEQ_MAX,
    TraceStore,
    _after_bound,
    _page_start,
    _runs_window,
)
from orchestrator.store._codec import (
    EventRow,
    check_batch,
    conflict_error,
    continued_runs,
    decode_rows,
    encode_row,
    is_encoding_error,
    no_run_id,
    run_gone,
    utf8_safe,
)
from orchestrator.store._errors import StoreError, StoreUnavailable
from orchestrator.store._migrate import ensure_schema, migrate
from orchestrator.store._models import RunFilter, RunInfo, StoredEvent
from orchestrator.store._readonly import ReadOnlyRunner
from orchestrator.store._runners import (
    SYNCHRONOUS_MODES,
    AsyncRunner,
    Runner,
    ThreadRunner,
    bind,
)
from orchestrator.store._schema import EVENTS, RUNS
from orchestrator.store._url import hide_password, require_one_at
from orchestrator.store.fold import fold_info

T = TypeVar("T")
_RUN_KINDS = frozenset({"run_started", "run_finished"})
_CHUNK = 500
_ASYNC_PG_DRIVERS = frozenset({"psycopg", "psycopg_async", "asyncpg"})
_SYNCHRONOUS = "synchronous"
STATEMENT_TIMEOUT = "statement_timeout_ms"
"""The PostgreSQL URL's query parameter that bounds every statement (see :class:`SqlStore`)."""
DEFAULT_STATEMENT_TIMEOUT_MS = 60_000
_QUERY_CANCELED = "57014"
_INSERT_EVENTS = f"INSERT INTO {EVENTS.name} ({', '.join(EVENTS.c.keys())}) VALUES "
_EVENT_VALUES = f"({', '.join('?' for _ in EVENTS.c)})"
_MULTI_ROW_MAX = 64
"""The most events inserted by one multi-row statement (6 parameters each, well under
the 999 parameters of an older SQLite)."""


def normalize_url(url: str) -> sa.URL:
    """Parse a store URL into the one the store connects with.

    A plain path (no ``://``) is a SQLite file. Any SQLite URL (``sqlite://``,
    ``sqlite+aiosqlite://``, ``sqlite+pysqlite://``) runs on pysqlite in worker
    threads; ``~`` in its path is expanded (``sqlite://`` is a database in memory, and
    ``sqlite:///``, which names no file, is refused), and its query may hold
    ``synchronous=NORMAL|FULL|EXTRA`` (see :class:`SqlStore`). ``postgres://`` and
    ``postgresql://`` get the psycopg driver; ``postgresql+psycopg://`` and
    ``postgresql+asyncpg://`` are kept; their query may hold ``statement_timeout_ms=N``
    (see :class:`SqlStore`).

    :raises ConfigError: for a malformed URL, a SQLite URL naming no file, another
        database, a synchronous PostgreSQL driver, an unknown SQLite ``synchronous``
        mode or a statement timeout that is not a whole number of milliseconds.
    """
    if "://" not in url:
        # built, not parsed: a file name may hold '?', '#' or '%'
        path = str(Path(url).expanduser().absolute())
        return sa.URL.create("sqlite+pysqlite", database=path)
    shown = hide_password(url)
    require_one_at(url)
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    try:
        parsed = sa.make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(f"malformed trace store URL {shown}: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        # checked before the driver: the default driver of a URL such as bogus:// is
        # found by loading its dialect, which fails with SQLAlchemy's NoSuchModuleError
        raise ConfigError(
            f"unsupported trace store URL {shown}: use a SQLite path, sqlite:///PATH, "
            "postgresql+psycopg://..., postgresql+asyncpg://... or memory://"
        )
    driver = parsed.get_driver_name()
    if backend == "sqlite":
        if driver not in ("pysqlite", "aiosqlite"):
            raise ConfigError(f"trace store URL {shown}: unsupported SQLite driver {driver!r}")
        if parsed.database == "":
            # sqlite:/// (not SQLAlchemy's sqlite:// for memory): whoever typed it meant a
            # file and forgot its name; a store in memory would lose the run unsaid
            raise ConfigError(
                f"trace store URL {shown} names no SQLite file: give one (sqlite:///PATH), "
                "or memory:// for a store that keeps nothing"
            )
        database = parsed.database or ":memory:"
        if database != ":memory:" and not database.startswith("file:"):
            database = str(Path(database).expanduser())
        _sqlite_synchronous(parsed, shown)
        return parsed.set(drivername="sqlite+pysqlite", database=database)
    _pg_statement_timeout(parsed, shown)
    if "+" not in parsed.drivername:
        return parsed.set(drivername="postgresql+psycopg")
    if driver not in _ASYNC_PG_DRIVERS:
        raise ConfigError(
            f"trace store URL {shown}: driver {driver!r} is not async; "
            "use postgresql+psycopg:// or postgresql+asyncpg://"
        )
    return parsed


def _sqlite_synchronous(url: sa.URL, shown: str) -> str:
    """The ``synchronous`` mode a SQLite URL asks for (``NORMAL`` when it names none)."""
    value = url.query.get(_SYNCHRONOUS, "NORMAL")
    mode = (value if isinstance(value, str) else value[-1]).upper()
    if mode not in SYNCHRONOUS_MODES:
        raise ConfigError(
            f"trace store URL {shown}: synchronous={mode.lower()} is not supported; use "
            "NORMAL (the default: a commit survives the process being killed) or FULL "
            "(it survives a power loss too)"
        )
    return mode


def _pg_statement_timeout(url: sa.URL, shown: str) -> int:
    """The statement timeout, in ms, a PostgreSQL URL asks for (0: none)."""
    value = url.query.get(STATEMENT_TIMEOUT, str(DEFAULT_STATEMENT_TIMEOUT_MS))
    text = (value if isinstance(value, str) else value[-1]).strip()
    if not text.isdigit():
        raise ConfigError(
            f"trace store URL {shown}: {STATEMENT_TIMEOUT}={text} is not a whole number of "
            f"milliseconds; give one (default {DEFAULT_STATEMENT_TIMEOUT_MS}), or 0 for no limit"
        )
    return int(text)


def _read_only_uri_file(url: sa.URL) -> Path | None:
    """The file a SQLite URL names as a ``file:`` URI with ``mode=ro`` and no other
    parameter (``sqlite:///file:PATH?mode=ro&uri=true``, as
    :func:`~orchestrator.store._open.read_only_url` writes it), else ``None``."""
    database = url.database or ""
    if not database.startswith("file:") or set(url.query) != {"mode", "uri"}:
        return None
    if url.query["mode"] != "ro" or str(url.query["uri"]).lower() not in ("true", "1"):
        return None
    path = unquote(database.removeprefix("file:"))
    if path.startswith("//"):  # file://localhost/PATH, file:///PATH
        path = path[2:].removeprefix("localhost")
    return Path(path) if path else None


#: the module each PostgreSQL driver imports; the extra `postgres` brings both
_PG_DRIVER_MODULES = {"psycopg": "psycopg", "psycopg_async": "psycopg", "asyncpg": "asyncpg"}


def _require_pg_driver(url: sa.URL, shown: str) -> None:
    """Fail when the PostgreSQL driver ``url`` names is not installed (Ponder installed
    without its extra `postgres`), rather than with SQLAlchemy's ModuleNotFoundError,
    in the words of a backend that lacks its extra (:func:`orchestrator._extras.
    extra_missing`).

    :raises ConfigError: naming the extra and how to install it.
    """
    module = _PG_DRIVER_MODULES.get(url.get_driver_name())
    if module is None:
        return
    try:
        importlib.import_module(module)
    except ImportError:
        raise ConfigError(extra_missing(f"trace store URL {shown}", "postgres", module)) from None


def _pg_connect_args(url: sa.URL, statement_timeout_ms: int) -> dict[str, Any]:
    """The driver's connect arguments that set the server's ``statement_timeout``."""
    if not statement_timeout_ms:
        return {}
    if url.get_driver_name() == "asyncpg":
        return {"server_settings": {"statement_timeout": str(statement_timeout_ms)}}
    # libpq's options; the URL's own come after, so that theirs win where they set it too
    own = url.query.get("options", "")
    own = own if isinstance(own, str) else " ".join(own)
    return {"options": f"-c statement_timeout={statement_timeout_ms} {own}".strip()}


class SqlStore(TraceStore):
    """A :class:`TraceStore` in SQLite or PostgreSQL, through SQLAlchemy.

    SQLite runs in WAL mode with ``synchronous=NORMAL`` (a commit survives a crash
    of the process, SIGKILL included, but not necessarily a power loss or a kernel
    crash; add ``?synchronous=FULL`` to the URL for that, at the cost of a disk flush
    per append) and a busy timeout; this process's writers queue for one writer
    thread, so they never see "database is locked", and another process's writer is
    waited for up to the busy timeout.

    On PostgreSQL every statement is bounded by the server's ``statement_timeout``:
    60 s unless the URL's ``?statement_timeout_ms=N`` says otherwise (0: no limit), so
    that a query that hangs (on a lock another session never releases, or a server too
    loaded to finish it) fails the operation with an error naming that setting instead
    of blocking a run forever. Schema upgrades are not bounded by it. It is
    sent as a connection option; behind a pooler that refuses those (PgBouncer without
    ``ignore_startup_parameters = options``), give ``statement_timeout_ms=0`` and set
    it on the server instead.

    :param url: the database URL (see :func:`normalize_url`).
    :param auto_upgrade: upgrade an older schema on :meth:`open`; default: yes for
        SQLite, no for PostgreSQL (a shared server is upgraded on purpose, with
        ``ponder db upgrade``).
    :param read_only: the store is only read: its schema is never upgraded (an older
        one is :class:`StoreOutdated`), :meth:`append` and :meth:`delete_runs` fail, and a
        SQLite file is opened read-only, writing nothing next to it, so that a user who
        may not write it (or its directory) can read it (see
        :mod:`orchestrator.store._readonly`). A SQLite URL naming a ``file:`` URI with
        ``mode=ro`` alone is read-only too.
    :param busy_timeout_s: how long a SQLite write waits for another process's lock.
    :param connect_timeout_s: how long :meth:`open` waits for a server to answer.
    :raises ConfigError: for a URL that is not SQLite or PostgreSQL with an async driver.
    """

    def __init__(
        self,
        url: str,
        *,
        auto_upgrade: bool | None = None,
        read_only: bool = False,
        busy_timeout_s: float = 5.0,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self._url = normalize_url(url)
        # messages name the store as the user wrote it (the driver we use may differ)
        self.url = hide_password(url) if "://" in url \
            else self._url.render_as_string(hide_password=True)
        """The URL with its password hidden."""
        self._sqlite = self._url.get_backend_name() == "sqlite"
        self._synchronous = "NORMAL"
        self._statement_timeout_ms = 0
        if self._sqlite:
            self._synchronous = _sqlite_synchronous(self._url, self.url)
            self._url = self._url.difference_update_query([_SYNCHRONOUS])
        else:
            _require_pg_driver(self._url, self.url)
            self._statement_timeout_ms = _pg_statement_timeout(self._url, self.url)
            self._url = self._url.difference_update_query([STATEMENT_TIMEOUT])
        uri_file = _read_only_uri_file(self._url) if self._sqlite else None
        if uri_file is not None:  # named as a file, whose URL `ponder db upgrade` takes
            self.url = f"sqlite:///{uri_file}"
        self._read_only = read_only or uri_file is not None
        self._auto_upgrade = (not self._read_only and
                              (self._sqlite if auto_upgrade is None else auto_upgrade))
        self._busy_timeout_s = busy_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._runner: Runner | None = None
        self._thread_runner: ThreadRunner | None = None  # the same runner, on SQLite
        self._closed = False
        self._opening = anyio.Lock()
        self.path: Path | None = uri_file or (self._sqlite_path() if self._sqlite else None)
        """The SQLite file; ``None`` for PostgreSQL and in-memory SQLite."""

    # -- lifecycle ---------------------------------------------------------------

    async def open(self) -> None:
        async with self._opening:  # two tasks opening at once must not both connect
            await self._open()

    async def _open(self) -> None:
        if self._runner is not None:
            return
        if self._closed:
            raise StoreError(f"the trace store at {self.url} is closed", url=self.url)
        runner = await self._connect()
        try:
            schema = bind(ensure_schema, url=self.url, auto_upgrade=self._auto_upgrade)
            # at head, checking it writes nothing: a file opened read-only is read
            check = runner.read if isinstance(runner, ReadOnlyRunner) else runner.write
            await self._run("create or check the schema", lambda: check(schema))
        except BaseException:
            await runner.close()
            raise
        self._runner = runner
        self._thread_runner = runner if isinstance(runner, ThreadRunner) else None

    async def close(self) -> None:
        self._closed = True
        runner, self._runner, self._thread_runner = self._runner, None, None
        if runner is not None:
            await runner.close()

    async def _connect(self) -> Runner:
        """A runner whose database answered a first query; the schema is not checked.

        :raises StoreUnavailable: when the database cannot be reached or opened.
        """
        runner: Runner
        if self._sqlite and self._read_only and self.path is not None:
            self._check_not_directory(self.path)
            runner = ReadOnlyRunner(self.path, self.url, self._busy_timeout_s)
        elif self._sqlite:
            self._prepare_sqlite_file()
            runner = ThreadRunner(self._url, self._busy_timeout_s, self._synchronous)
        else:
            key = "timeout" if self._url.get_driver_name() == "asyncpg" else "connect_timeout"
            connect_args = {
                key: max(1, round(self._connect_timeout_s)),
                **_pg_connect_args(self._url, self._statement_timeout_ms),
            }
            runner = AsyncRunner(self._url, connect_args)
        try:
            with anyio.fail_after(self._connect_timeout_s + self._busy_timeout_s + 1):
                await self._run("connect", runner.ping)
        except TimeoutError as exc:
            await runner.close()
            raise StoreUnavailable(
                f"cannot reach the trace store at {self.url}: no answer within "
                f"{self._connect_timeout_s:g}s",
                url=self.url,
            ) from exc
        except BaseException:
            await runner.close()
            raise
        return runner

    def _sqlite_path(self) -> Path | None:
        database = self._url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(database)

    def _prepare_sqlite_file(self) -> None:
        path = self._sqlite_path()
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create the directory of SQLite file {path}: {exc.strerror}",
                url=self.url,
            ) from exc
        exists = self._check_not_directory(path)
        # Checked by permission bits too, so that root is refused a file marked read-only.
        if exists and (
            not os.access(path, os.W_OK) or not path.stat().st_mode & stat.S_IWUSR
        ):
            raise StoreUnavailable(
                f"SQLite file {path} is read-only; Ponder appends every run's events to it. "
                "Make it writable (chmod u+w) or choose another store (--db / PONDER_DB_URL)",
                url=self.url,
            )
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise StoreUnavailable(
                f"directory {path.parent} is not writable; SQLite keeps its journal "
                f"next to {path.name}",
                url=self.url,
            )

    def _check_not_directory(self, path: Path) -> bool:
        """:returns: whether the SQLite file exists.
        :raises StoreUnavailable: when it is a directory, or cannot be looked at."""
        try:
            exists = path.exists()
            is_dir = path.is_dir()
        except OSError as exc:  # a name too long for the file system
            raise StoreUnavailable(f"cannot open SQLite file {path}: {exc.strerror}",
                                   url=self.url) from exc
        if is_dir:  # else SQLite's "unable to open database file"
            raise StoreUnavailable(
                f"SQLite file {path} is a directory; name a file in it "
                f"(e.g. {path / 'ponder.db'})",
                url=self.url,
            )
        return exists

    def _require_writable(self, action: str) -> Runner:
        """The runner of a store that was not opened read-only."""
        runner = self._require_open()
        if self._read_only:
            raise StoreError(f"the trace store at {self.url} is open read-only: cannot "
                             f"{action}", url=self.url)
        return runner

    def _require_open(self) -> Runner:
        if self._runner is None:
            state = "closed" if self._closed else "not open (call open() or use `async with`)"
            raise StoreError(f"the trace store at {self.url} is {state}", url=self.url)
        return self._runner

    async def _run(self, action: str, call: Callable[[], Awaitable[T]]) -> T:
        """Await ``call()``, turning a driver failure into a store error naming ``action``."""
        try:
            return await call()
        except (DBAPIError, OSError) as exc:
            raise self._translate(exc, action) from exc

    # -- the contract ------------------------------------------------------------

    async def append(self, events: Sequence[StoredEvent], *,
                     continues: Collection[str] = ()) -> None:
        runner = self._require_writable("append events")
        if not events:
            return
        held = continued_runs(events, continues)
        try:
            await self._append(runner, events, held)
        except Exception as exc:
            # Nothing of a batch is written when binding its text fails: store it again
            # with its lone surrogates replaced (see utf8_safe).
            if not is_encoding_error(exc):
                raise
            await self._append(runner, utf8_safe(events), held)

    async def _append(self, runner: Runner, events: Sequence[StoredEvent],
                      held: list[str]) -> None:
        run_events = [e for e in events if e.kind in _RUN_KINDS]
        try:
            if self._thread_runner is not None:
                await self._append_sqlite(self._thread_runner, events, run_events, held)
            else:
                rows = [_pg_row(encode_row(e, nonfinite="strings")) for e in events]
                check_batch(events)
                await runner.write(bind(_append, rows, run_events, held))
        except IntegrityError as exc:
            raise await self._conflict(runner, events) from exc
        except (DBAPIError, OSError) as exc:
            raise self._translate(exc, "append events") from exc

    @staticmethod
    async def _append_sqlite(
        runner: ThreadRunner, events: Sequence[StoredEvent], run_events: list[StoredEvent],
        held: list[str],
    ) -> None:
        # The hot path (a step's events) is one raw DBAPI transaction; a batch that
        # starts or finishes a run, or must find its runs still stored, goes through
        # SQLAlchemy.
        rows = [encode_row(e) for e in events]
        check_batch(events)
        if run_events or held:
            await runner.write(bind(_append_sqlite, rows, run_events, held))
        else:
            # A batch of up to _MULTI_ROW_MAX events is one INSERT, atomic on its own.
            one = len(rows) <= _MULTI_ROW_MAX
            await runner.write_dbapi(functools.partial(_insert_events, rows=rows), one_statement=one)

    async def _conflict(self, runner: Runner, events: Sequence[StoredEvent]) -> StoreError:
        """The EventConflict naming the first already-stored event of a rejected batch."""
        by_run: dict[str, list[int]] = {}
        for event in events:
            by_run.setdefault(event.run_id, []).append(event.seq)
        try:
            found = await self._run(
                "append events", lambda: runner.read(bind(_first_stored, by_run))
            )
        except StoreError as exc:
            return exc
        if found is not None:
            return conflict_error(*found)
        return StoreError(
            f"the trace store at {self.url} rejected a batch of events as a conflict, "
            "but none of them is stored",
            url=self.url,
        )

    async def events(self, run_id: str, *, after_seq: int | None = None,
                     kinds: Collection[str] | None = None) -> list[StoredEvent]:
        runner = self._require_open()
        after = _after_bound(after_seq, self._seq_column_max())
        if after == self._seq_column_max():  # the driver would overflow; none is there
            return []
        if no_run_id(run_id):  # none stored; PostgreSQL would refuse the query
            return []
        select = bind(self._select_events(), run_id, after,
                      None if kinds is None else list(kinds))
        rows = await self._run("read events", lambda: runner.read(select))
        return decode_rows(run_id, rows)

    async def events_page(
        self, run_id: str, *, after_seq: int | None = None, limit: int
    ) -> list[StoredEvent]:
        runner = self._require_open()
        after = _page_start(after_seq, limit)
        # beyond the column's integers: nothing is stored there, and the driver would fail
        if after >= self._seq_column_max() or no_run_id(run_id):
            return []
        select = bind(self._select_events(), run_id, after, None,
                      min(limit, _COUNT_MAX))
        rows = await self._run("read events", lambda: runner.read(select))
        return decode_rows(run_id, rows)

    async def last_event(self, run_id: str, *, after_seq: int | None = None
                         ) -> StoredEvent | None:
        runner = self._require_open()
        after = _after_bound(after_seq, self._seq_column_max())
        # beyond the column's integers: nothing is stored there, and the driver would fail
        if after == self._seq_column_max() or no_run_id(run_id):
            return None
        select = bind(self._select_events(), run_id, after, None, 1, newest_first=True)
        rows = await self._run("read events", lambda: runner.read(select))
        return decode_rows(run_id, rows)[0] if rows else None

    async def run_info(self, run_id: str) -> RunInfo | None:
        runner = self._require_open()
        if no_run_id(run_id):
            return None
        select = bind(_select_run, run_id)
        rows = await self._run("read a run", lambda: runner.read(select))
        return RunInfo.model_validate(rows[0]) if rows else None

    def _seq_column_max(self) -> int:
        """The largest integer the ``seq`` column holds: SQLite's, or PostgreSQL's
        ``integer``."""
        return _SEQ_BEYOND if self._sqlite else _SEQ_MAX

    def _select_events(self) -> Callable[..., Sequence[tuple[int, str, float, Any]]]:
        return _select_events_sqlite if self._sqlite else _select_events

    async def list_runs(
        self, filters: RunFilter | None = None, *, limit: int = 50, offset: int = 0
    ) -> list[RunInfo]:
        runner = self._require_open()
        window = _runs_window(filters, limit, offset)
        if window is None:
            return []
        select = bind(_select_runs, *window)
        rows = await self._run("list runs", lambda: runner.read(select))
        return [RunInfo.model_validate(row) for row in rows]

    async def delete_runs(self, run_ids: Sequence[str]) -> int:
        runner = self._require_writable("delete runs")
        ids = [i for i in dict.fromkeys(run_ids) if not no_run_id(i)]
        if not ids:
            return 0
        return await self._run("delete runs", lambda: runner.write(bind(_delete, ids)))

    async def _delete_collected(self, groups: Sequence[tuple[str, list[str], bool]]) -> int:
        runner = self._require_writable("delete runs")
        chosen = [(top, [i for i in below if not no_run_id(i)], finished_only)
                  for top, below, finished_only in groups if not no_run_id(top)]
        if not chosen:
            return 0
        return await self._run("delete runs", lambda: runner.write(
            bind(_delete_collected, chosen, pg=not self._sqlite)))

    # -- errors ------------------------------------------------------------------

    def _translate(self, exc: BaseException, action: str) -> StoreError:
        """The store error that explains a driver failure to a user."""
        orig = getattr(exc, "orig", None) or exc
        text = str(orig).strip()
        reason = text.splitlines()[0] if text else type(orig).__name__
        if self._sqlite:
            where = self.path or self._url.database
            low = reason.lower()
            if "locked" in low or "busy" in low:
                return StoreUnavailable(
                    f"SQLite file {where} is locked by another process (waited "
                    f"{self._busy_timeout_s:g}s to {action}); wait for it to finish or "
                    "choose another store (--db / PONDER_DB_URL)",
                    url=self.url,
                )
            if "readonly" in low or "read-only" in low:
                return StoreUnavailable(
                    f"SQLite file {where} is read-only (cannot {action}); make it writable "
                    "or choose another store (--db / PONDER_DB_URL)",
                    url=self.url,
                )
            if "full" in low:
                return StoreError(
                    f"SQLite file {where}: the disk is full (cannot {action}); nothing of "
                    "the failed write was kept. Free space, or choose another store",
                    url=self.url,
                )
            if "unable to open" in low:
                return StoreUnavailable(f"cannot open SQLite file {where}: {reason}", url=self.url)
            if "not a database" in low:
                return StoreError(
                    f"SQLite file {where} is not a SQLite database (or it is encrypted), so "
                    f"Ponder cannot {action} there: {reason}. Check the path, or choose "
                    "another store (--db / PONDER_DB_URL)",
                    url=self.url,
                )
            if "malformed" in low or "corrupt" in low:
                return StoreError(
                    f"SQLite file {where} is corrupted (cannot {action}: {reason}). Restore "
                    f"it from a backup, or save what is left with `sqlite3 {where} .recover`, "
                    "or choose another store (--db / PONDER_DB_URL)",
                    url=self.url,
                )
            return StoreError(f"SQLite file {where}: cannot {action}: {reason}", url=self.url)
        if getattr(orig, "sqlstate", None) == _QUERY_CANCELED and "statement timeout" in text:
            return StoreError(
                f"trace store {self.url}: cannot {action}: the server gave up after the "
                f"statement timeout ({STATEMENT_TIMEOUT}={self._statement_timeout_ms}); a "
                "query waited on a lock or ran too long. Raise it in the store URL "
                f"(?{STATEMENT_TIMEOUT}=N, 0 for no limit) if the server is only slow",
                url=self.url,
            )
        lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
        if action == "connect" or lost or isinstance(orig, OSError):
            return StoreUnavailable(
                f"cannot reach the trace store at {self.url}: {reason}", url=self.url
            )
        return StoreError(f"trace store {self.url}: cannot {action}: {reason}", url=self.url)


async def upgrade_schema(url: str, revision: str) -> tuple[str | None, str | None]:
    """Upgrade the schema of the SQL database at ``url``; see :func:`orchestrator.store.upgrade`."""
    store = SqlStore(url)
    runner = await store._connect()
    try:
        migration = bind(migrate, url=store.url, revision=revision)
        return await store._run("upgrade the schema", lambda: runner.write(migration))
    finally:
        await runner.close()


# -- the transactions (synchronous, one connection each) -------------------------------


def _append(conn: sa.Connection, rows: list[dict[str, Any]], run_events: list[StoredEvent],
            held: list[str]) -> None:
    """PostgreSQL: check that the runs ``held`` are still stored, insert the rows, update
    the runs of the batch's run events."""
    _check_held(conn, held, pg=True)
    conn.execute(_PG_INSERT_EVENTS, rows)
    _update_runs(conn, run_events, pg=True)


def _check_held(conn: sa.Connection, held: list[str], *, pg: bool) -> None:
    """Raise :func:`run_gone` for the first run of ``held`` with neither a row nor an
    event stored. PostgreSQL locks each row found (``FOR UPDATE``) until the write
    commits: a ``ponder gc`` deleting it meanwhile waits, then finds it running (gc
    selects its runs ``FOR UPDATE`` too, and takes only finished ones); one that
    deleted it first has committed by the time the lock is granted, so the row and the
    events are found gone. SQLite's write transaction holds the whole file."""
    for run_id in held:
        query = sa.select(RUNS.c.id).where(RUNS.c.id == run_id)
        if conn.execute(query.with_for_update() if pg else query).first() is not None:
            continue
        event = sa.select(EVENTS.c.seq).where(EVENTS.c.run_id == run_id).limit(1)
        if conn.execute(event).first() is None:
            raise run_gone(run_id)  # (the transaction is rolled back: nothing is written)


@functools.cache
def _insert_sql(n_rows: int) -> str:
    return _INSERT_EVENTS + ", ".join([_EVENT_VALUES] * n_rows)


def _insert_events(dbapi: sqlite3.Connection, *, rows: list[EventRow]) -> None:
    """SQLite: insert the rows through the driver: up to _MULTI_ROW_MAX in one statement."""
    if len(rows) <= _MULTI_ROW_MAX:
        dbapi.execute(_insert_sql(len(rows)), [value for row in rows for value in row])
    else:
        dbapi.executemany(_insert_sql(1), rows)


def _append_sqlite(
    conn: sa.Connection, rows: list[EventRow], run_events: list[StoredEvent], held: list[str]
) -> None:
    """SQLite: check that the runs ``held`` are still stored, insert the rows, update the
    runs of the batch's run events."""
    _check_held(conn, held, pg=False)
    dbapi = conn.connection.driver_connection
    assert dbapi is not None
    _insert_events(dbapi, rows=rows)
    _update_runs(conn, run_events, pg=False)


def _update_runs(conn: sa.Connection, run_events: list[StoredEvent], *, pg: bool) -> None:
    for run_id in dict.fromkeys(e.run_id for e in run_events):
        row = conn.execute(sa.select(RUNS).where(RUNS.c.id == run_id)).first()
        prev = RunInfo.model_validate(row._asdict()) if row is not None else None
        info, n_steps = prev, -1
        for e in run_events:
            if e.run_id != run_id:
                continue
            if e.kind == "run_finished" and n_steps < 0:
                n_steps = _count_steps(conn, run_id)
            info = fold_info(info, e, n_steps=max(n_steps, 0))
        if info is not None and info != prev:
            conn.execute(_upsert_run(info, pg=pg))


def _count_steps(conn: sa.Connection, run_id: str) -> int:
    query = sa.select(sa.func.count(sa.distinct(EVENTS.c.step_id))).where(EVENTS.c.run_id == run_id)
    return int(conn.execute(query).scalar_one())


def _upsert_run(info: RunInfo, *, pg: bool) -> sa.Executable:
    values = info.model_dump()
    if pg:
        values = {k: _pg_text(v) for k, v in values.items()}
    insert = (postgresql.insert if pg else sqlite.insert)(RUNS).values(values)
    return insert.on_conflict_do_update(
        index_elements=[RUNS.c.id],
        set_={k: insert.excluded[k] for k in values if k != "id"},
    )


def _first_stored(conn: sa.Connection, by_run: dict[str, list[int]]) -> tuple[str, int] | None:
    for run_id, seqs in by_run.items():
        query = (
            sa.select(sa.func.min(EVENTS.c.seq))
            .where(EVENTS.c.run_id == run_id)
            .where(EVENTS.c.seq.in_(seqs))
        )
        seq = conn.execute(query).scalar_one_or_none()
        if seq is not None:
            return run_id, int(seq)
    return None


def _select_events(
    conn: sa.Connection, run_id: str, after_seq: int | None, kinds: list[str] | None = None,
    limit: int | None = None, *, newest_first: bool = False,
) -> list[tuple[int, str, float, str]]:
    """The run's events as ``(seq, kind, ts, payload)`` rows, in ``seq`` order (descending
    when ``newest_first``: the last ``limit`` of them, newest first), the payload
    as the JSON text the column holds (PostgreSQL's ``json`` keeps its input text), which
    :func:`~orchestrator.store._codec.decode_rows` validates in one pass, as on SQLite,
    where the driver's dict would have been parsed by :func:`json.loads` and validated
    again."""
    query = (
        sa.select(EVENTS.c.seq, EVENTS.c.kind, EVENTS.c.ts, sa.cast(EVENTS.c.payload, sa.Text))
        .where(EVENTS.c.run_id == run_id)
        .order_by(EVENTS.c.seq.desc() if newest_first else EVENTS.c.seq)
    )
    if after_seq is not None:
        query = query.where(EVENTS.c.seq > after_seq)
    if kinds is not None:
        query = query.where(EVENTS.c.kind.in_(kinds))
    if limit is not None:
        query = query.limit(limit)
    return [(seq, kind, ts, payload) for seq, kind, ts, payload in conn.execute(query)]


def _select_events_sqlite(
    conn: sa.Connection, run_id: str, after_seq: int | None, kinds: list[str] | None = None,
    limit: int | None = None, *, newest_first: bool = False,
) -> list[tuple[int, str, float, str]]:
    """:func:`_select_events` on SQLite, through the driver, as appends are written: the
    same values (the columns as SQLite gives them) without SQLAlchemy's rows, about a
    tenth of the CPU of the viewer's first read of a run, and the payload as its JSON
    text, which :func:`~orchestrator.store._codec.decode_rows` validates without
    :func:`json.loads` (a quarter less CPU than decoding the dict SQLAlchemy's JSON
    type would have read). One SELECT: one snapshot of the file."""
    if kinds is not None and not kinds:
        return []
    sql = f"SELECT seq, kind, ts, payload FROM {EVENTS.name} WHERE run_id = ?"
    params: list[Any] = [run_id]
    if after_seq is not None:
        sql += " AND seq > ?"
        params.append(after_seq)
    if kinds is not None:
        sql += f" AND kind IN ({', '.join('?' for _ in kinds)})"
        params.extend(kinds)
    sql += " ORDER BY seq DESC" if newest_first else " ORDER BY seq"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    dbapi = conn.connection.driver_connection
    assert isinstance(dbapi, sqlite3.Connection)
    try:
        rows = dbapi.execute(sql, params).fetchall()
    except sqlite3.Error as exc:  # as SQLAlchemy would have raised it
        raise DBAPIError.instance(sql, params, exc, sqlite3.Error) from exc
    return rows


def _select_run(conn: sa.Connection, run_id: str) -> list[dict[str, Any]]:
    return [row._asdict() for row in conn.execute(sa.select(RUNS).where(RUNS.c.id == run_id))]


def _select_runs(
    conn: sa.Connection, flt: RunFilter, limit: int, offset: int
) -> list[dict[str, Any]]:
    query = (
        sa.select(RUNS)
        .where(*_where(flt))
        .order_by(RUNS.c.started_at.desc(), RUNS.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [row._asdict() for row in conn.execute(query)]


def _delete(conn: sa.Connection, ids: list[str]) -> int:
    deleted = 0
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        conn.execute(sa.delete(EVENTS).where(EVENTS.c.run_id.in_(chunk)))
        deleted += conn.execute(sa.delete(RUNS).where(RUNS.c.id.in_(chunk))).rowcount
    return deleted


def _delete_collected(conn: sa.Connection, groups: list[tuple[str, list[str], bool]], *,
                      pg: bool) -> int:
    """Delete the runs of ``groups`` (see ``TraceStore._delete_collected``) in one
    transaction: a run that must still be finished is read locked (PostgreSQL: ``FOR
    UPDATE``, so a resume's ``run_started`` stored meanwhile is seen, or waits until the
    run is gone; SQLite's write transaction holds the file), and left with its group
    when it is running."""
    checked = [top for top, _, finished_only in groups if finished_only]
    finished: set[str] = set()
    for start in range(0, len(checked), _CHUNK):
        query = sa.select(RUNS.c.id).where(RUNS.c.id.in_(checked[start:start + _CHUNK]),
                                           RUNS.c.status != "running")
        finished.update(conn.execute(query.with_for_update() if pg else query).scalars())
    ids = [i for top, below, finished_only in groups
           if not finished_only or top in finished for i in (top, *below)]
    return _delete(conn, ids) if ids else 0


def _where(flt: RunFilter) -> list[sa.ColumnElement[bool]]:
    c = RUNS.c
    clauses: list[sa.ColumnElement[bool]] = []
    if flt.status is not None:
        clauses.append(c.status == flt.status)
    if flt.workflow is not None:
        clauses.append(c.workflow == flt.workflow)
    if flt.parent_run_id is not None:
        clauses.append(c.parent_run_id == flt.parent_run_id)
    if flt.top_level:
        clauses.append(c.parent_attempt.is_(None))
    if flt.finished is not None:
        clauses.append(c.status != "running" if flt.finished else c.status == "running")
    if flt.started_before is not None:
        clauses.append(c.started_at < flt.started_before)
    if flt.started_after is not None:
        clauses.append(c.started_at >= flt.started_after)
    if flt.id_prefix is not None:
        # not LIKE: SQLite's is case-insensitive, and the prefix may hold % or _
        clauses.append(sa.func.substr(c.id, 1, len(flt.id_prefix)) == flt.id_prefix)
    return clauses


def _pg_text(value: Any) -> Any:
    # PostgreSQL text cannot hold NUL; an LLM's error text sometimes does.
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


_PG_PAYLOAD = "payload_text"
# The payload is bound as the JSON text the codec made (as on SQLite) and cast to the
# column's ``json`` on the server, which keeps the text as it is: SQLAlchemy's JSON type
# would have serialized a dict of it again, with json.dumps.
_PG_INSERT_EVENTS = EVENTS.insert().values(
    payload=sa.cast(sa.bindparam(_PG_PAYLOAD, type_=sa.Text()), EVENTS.c.payload.type)
)


def _pg_row(row: EventRow) -> dict[str, Any]:
    """An :data:`EventRow` as the parameters of :data:`_PG_INSERT_EVENTS`, its text
    columns without NUL (see :func:`_pg_text`); the payload's is a JSON escape."""
    run_id, seq, kind, step_id, ts, payload = row
    return {"run_id": _pg_text(run_id), "seq": seq, "kind": _pg_text(kind),
            "step_id": _pg_text(step_id), "ts": ts, _PG_PAYLOAD: payload}  # fmt: skip
