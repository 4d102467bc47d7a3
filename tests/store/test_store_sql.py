"""What only the SQL store has: URLs, schema migrations, and SQLite's and servers' failures."""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import sqlite3
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from orchestrator.errors import ConfigError
from orchestrator.store import (
    MemoryStore,
    SqlStore,
    StoreError,
    StoreOutdated,
    StoreUnavailable,
    _migrate,
    default_store_url,
    open_store,
    resolve_store_url,
    upgrade,
)
from orchestrator.store._schema import METADATA, VERSION_TABLE
from orchestrator.store._sql import normalize_url
from tests.store.conftest import _TEST_REVISION, HEAD, TEST_REVISION_ID, linear_run

pytestmark = pytest.mark.anyio


def sync_engine(url: str) -> sa.Engine:
    """A synchronous engine on the same database, for setting up and inspecting."""
    parsed = sa.make_url(url)
    driver = "sqlite" if parsed.get_backend_name() == "sqlite" else "postgresql+psycopg"
    return sa.create_engine(parsed.set(drivername=driver))


def version_of(url: str) -> str | None:
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            return _migrate.current_revision(conn)
    finally:
        engine.dispose()


# -- URLs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/data/p.db", "sqlite+pysqlite:////data/p.db"),
        ("sqlite:////data/p.db", "sqlite+pysqlite:////data/p.db"),
        ("sqlite+aiosqlite:////data/p.db", "sqlite+pysqlite:////data/p.db"),
        ("postgresql://u:pw@h/db", "postgresql+psycopg://u:***@h/db"),
        ("postgres://u@h:5433/db", "postgresql+psycopg://u@h:5433/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_urls_are_normalized(given: str, expected: str) -> None:
    assert normalize_url(given).render_as_string(hide_password=True) == expected


async def test_a_sqlite_path_is_taken_as_it_is_written(tmp_path: Path, make_linear_run: Any) -> None:
    path = tmp_path / "runs?v=1 #2 100%.db"
    assert normalize_url(str(path)).database == str(path)
    async with await open_store(str(path)) as store:
        await store.append(make_linear_run("r1", 3))
    assert [p.name for p in os.scandir(tmp_path) if p.name.endswith(".db")] == [path.name]
    async with await open_store(str(path)) as store:
        assert [r.id for r in await store.list_runs()] == ["r1"]


def test_bare_sqlite_url_is_in_memory() -> None:
    url = normalize_url("sqlite://")
    assert (url.drivername, url.database) == ("sqlite+pysqlite", ":memory:")


def test_home_in_a_sqlite_path_is_expanded() -> None:
    assert normalize_url("sqlite:///~/x.db").database == str(Path.home() / "x.db")
    assert normalize_url("~/x.db").database == str(Path.home() / "x.db")


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mysql+aiomysql://u@h/db", "unsupported"),
        # no driver named: SQLAlchemy has no dialect to find its default one in
        ("nosuchdb://u:secret@h/db", "unsupported"),
        ("postgresql+psycopg2://u:secret@h/db", "not async"),
        ("foo bar://u:secret@x", "malformed"),
        ("postgresql://u:secret@h:port/db", "malformed"),
    ],
)
def test_unsupported_urls_are_config_errors(url: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as info:
        SqlStore(url)
    assert "secret" not in str(info.value)


async def test_url_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("PONDER_DB_URL", raising=False)
    assert resolve_store_url() == default_store_url()
    assert default_store_url().endswith(f"{tmp_path}/.ponder/ponder.db")
    store = await open_store()
    await store.close()
    assert (tmp_path / ".ponder" / "ponder.db").is_file()

    monkeypatch.setenv("PONDER_DB_URL", "memory://")
    assert isinstance(await open_store(), MemoryStore)
    assert resolve_store_url("x.db") == "x.db"


async def test_in_memory_sqlite_serves_concurrent_tasks(make_linear_run: Any) -> None:
    async with await open_store("sqlite+aiosqlite://") as store:

        async def one(i: int) -> None:
            for event in make_linear_run(f"r{i}", 6):
                await store.append([event])
                await store.list_runs()

        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(one, i)
        assert len(await store.list_runs()) == 10


# -- unreachable and unusable databases ----------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
async def test_unreachable_server_names_the_url_not_the_password(driver: str) -> None:
    port = _closed_port()
    url = f"postgresql+{driver}://ponder:s3cret@127.0.0.1:{port}/traces"
    with pytest.raises(StoreUnavailable) as info:
        await open_store(url)
    message = str(info.value)
    assert f"postgresql+{driver}://ponder:***@127.0.0.1:{port}/traces" in message
    assert "s3cret" not in message and "cannot reach" in message


def _drop_other_connections(admin_url: str) -> int:
    """Terminate every other session on the database, as a server restart would."""
    engine = sa.create_engine(sa.make_url(admin_url).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
async def test_connections_the_server_dropped_are_replaced(
    pg_url: str, driver: str, make_linear_run: Any
) -> None:
    url = sa.make_url(pg_url).set(drivername=f"postgresql+{driver}").render_as_string(False)
    events = make_linear_run("r1", 6)
    async with SqlStore(url) as store:
        await store.append(events[:2])
        assert _drop_other_connections(pg_url) >= 1  # the store's idle pooled connection
        await store.append(events[2:4])  # a run goes on after the server dropped it
        assert _drop_other_connections(pg_url) >= 1
        assert [e.seq for e in await store.events("r1")] == [0, 1, 2, 3]
        assert [r.id for r in await store.list_runs()] == ["r1"]


@pytest.mark.postgres
async def test_opening_from_two_tasks_at_once_connects_once(pg_url: str) -> None:
    store = SqlStore(pg_url)
    async with anyio.create_task_group() as tg:
        tg.start_soon(store.open)
        tg.start_soon(store.open)
    await store.close()
    # a second engine, made and dropped by the other task, would keep its connection
    assert _drop_other_connections(pg_url) == 0


# -- PostgreSQL's statement timeout ----------------------------------------------------


def _with_query(url: str, **query: str) -> str:
    return sa.make_url(url).update_query_dict(query).render_as_string(False)


async def _server_setting(store: SqlStore, name: str) -> str:
    runner = store._runner
    assert runner is not None
    return str(await runner.read(lambda c: c.execute(sa.text(f"SHOW {name}")).scalar_one()))


@pytest.mark.postgres
@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
async def test_every_statement_is_bounded_by_a_minute_unless_the_url_says_otherwise(
    pg_url: str, driver: str
) -> None:
    url = sa.make_url(pg_url).set(drivername=f"postgresql+{driver}").render_as_string(False)
    async with SqlStore(url) as store:
        assert await _server_setting(store, "statement_timeout") == "1min"
    async with SqlStore(_with_query(url, statement_timeout_ms="1500")) as store:
        assert await _server_setting(store, "statement_timeout") == "1500ms"
        assert "statement_timeout_ms=1500" in store.url  # as the user wrote it
    async with SqlStore(_with_query(url, statement_timeout_ms="0")) as store:
        assert await _server_setting(store, "statement_timeout") == "0"


@pytest.mark.postgres
async def test_the_urls_own_libpq_options_are_kept(pg_url: str) -> None:
    url = _with_query(pg_url, options="-c application_name=mine -c statement_timeout=7s")
    async with SqlStore(url) as store:
        assert await _server_setting(store, "application_name") == "mine"
        assert await _server_setting(store, "statement_timeout") == "7s"  # the URL's wins


@pytest.mark.parametrize("value", ["1s", "-5", "1.5", "60000x"])
def test_a_statement_timeout_that_is_not_whole_milliseconds_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="statement_timeout_ms"):
        SqlStore(f"postgresql+psycopg://u@h/db?statement_timeout_ms={value}")


@pytest.mark.postgres
@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
async def test_a_statement_held_by_a_lock_fails_naming_the_timeout(
    pg_url: str, driver: str, make_linear_run: Any
) -> None:
    url = sa.make_url(pg_url).set(drivername=f"postgresql+{driver}").render_as_string(False)
    events = make_linear_run("r1", 4)
    async with SqlStore(_with_query(url, statement_timeout_ms="300")) as store:
        await store.append(events[:2])
        engine = sync_engine(pg_url)
        try:
            with engine.connect() as holder:
                # another session that locks the tables and never lets go
                holder.execute(sa.text("LOCK TABLE events, runs IN ACCESS EXCLUSIVE MODE"))
                with anyio.fail_after(20):
                    with pytest.raises(StoreError) as read:
                        await store.events("r1")
                    with pytest.raises(StoreError) as write:
                        await store.append(events[2:])
                holder.rollback()
        finally:
            engine.dispose()
        for info, action in ((read, "read events"), (write, "append events")):
            message = str(info.value)
            assert f"cannot {action}" in message and "statement_timeout_ms=300" in message
            assert "\n" not in message
        assert not isinstance(read.value, StoreUnavailable)
        await store.append(events[2:])  # the store goes on once the lock is gone
        assert [e.seq for e in await store.events("r1")] == [0, 1, 2, 3]


_SLOW_REVISION = _TEST_REVISION.replace(
    'op.create_index("ix_events_kind_test", "events", ["kind"])',
    'op.execute("SELECT pg_sleep(0.5)")\n    op.create_index("ix_events_kind_test", "events", ["kind"])',
)


@pytest.mark.postgres
async def test_a_schema_upgrade_is_not_bounded_by_the_statement_timeout(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _with_query(pg_url, statement_timeout_ms="100")
    async with SqlStore(url):
        pass
    copy = tmp_path / "migrations"
    shutil.copytree(_migrate.MIGRATIONS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "versions" / f"{TEST_REVISION_ID}.py").write_text(_SLOW_REVISION)
    monkeypatch.setattr(_migrate, "MIGRATIONS_DIR", copy)
    assert await upgrade(url) == (HEAD, TEST_REVISION_ID)  # a statement of 500 ms in it
    async with SqlStore(url) as store:  # and ordinary statements are bounded again
        assert await _server_setting(store, "statement_timeout") == "100ms"


async def test_read_only_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    await (await open_store(str(path))).close()
    path.chmod(stat.S_IRUSR | stat.S_IRGRP)
    try:
        with pytest.raises(StoreUnavailable, match="read-only") as info:
            await open_store(str(path))
        assert str(path) in str(info.value)
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


@pytest.fixture
def exclusive_lock(tmp_path: Path) -> Iterator[Path]:
    """A SQLite file that another connection holds an exclusive lock on."""
    path = tmp_path / "locked.db"
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("CREATE TABLE IF NOT EXISTS other (x)")
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        yield path
    finally:
        blocker.rollback()
        blocker.close()


async def test_locked_sqlite_file_on_open(exclusive_lock: Path) -> None:
    store = SqlStore(str(exclusive_lock), busy_timeout_s=0.2)
    with pytest.raises(StoreUnavailable, match="is locked by another process") as info:
        await store.open()
    assert str(exclusive_lock) in str(info.value)


async def test_locked_sqlite_file_on_append(tmp_path: Path, make_linear_run: Any) -> None:
    path = tmp_path / "p.db"
    async with SqlStore(str(path), busy_timeout_s=0.2) as store:
        events = make_linear_run("r1", 4)
        await store.append(events[:1])
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(StoreUnavailable, match="is locked by another process"):
                await store.append(events[1:])
        finally:
            blocker.rollback()
            blocker.close()
        await store.append(events[1:])
        assert [e.seq for e in await store.events("r1")] == [0, 1, 2, 3]


async def test_a_file_that_is_not_sqlite_is_named(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(random.Random(1).randbytes(8192))
    with pytest.raises(StoreError, match="is not a SQLite database") as info:
        await open_store(str(path))
    assert f"SQLite file {path} " in str(info.value)


async def test_a_corrupted_sqlite_file_is_named_with_what_to_do(
    tmp_path: Path, make_linear_run: Any
) -> None:
    path = tmp_path / "p.db"
    async with SqlStore(str(path)) as store:
        for i in range(40):
            await store.append(make_linear_run(f"r{i}", 40))
    with sqlite3.connect(path) as conn:  # everything into the main file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with path.open("r+b") as f:  # overwrite pages 4-7, after the schema's
        f.seek(3 * 4096)
        f.write(random.Random(2).randbytes(4 * 4096))

    with pytest.raises(StoreError, match="is corrupted") as info:
        async with SqlStore(str(path)) as store:
            await store.list_runs(limit=1000)
            for i in range(40):
                await store.events(f"r{i}")
    message = str(info.value)
    assert f"SQLite file {path} is corrupted" in message and ".recover" in message


async def test_sqlite_runs_in_wal_mode_and_creates_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "p.db"
    async with SqlStore(f"sqlite+aiosqlite:///{path}"):
        pass
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_using_a_store_before_open_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not open"):
        await SqlStore(str(tmp_path / "p.db")).list_runs()


# -- reading a page of events ---------------------------------------------------------


async def test_a_page_of_events_is_one_query_that_stops_at_its_limit(sql_url: str) -> None:
    # what lets the viewer serve a run of a million events without reading them all
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    def trace(dbapi: Any, *args: Any) -> None:  # SQLite's reads bypass SQLAlchemy
        if isinstance(dbapi, sqlite3.Connection):
            dbapi.set_trace_callback(statements.append)

    async with await open_store(sql_url) as store:
        await store.append(linear_run("r1", 50))
        sa.event.listen(sa.Engine, "before_cursor_execute", record)
        sa.event.listen(sa.pool.Pool, "checkout", trace)
        try:
            page = await store.events_page("r1", after_seq=10, limit=5)
        finally:
            sa.event.remove(sa.Engine, "before_cursor_execute", record)
            sa.event.remove(sa.pool.Pool, "checkout", trace)
    assert [e.seq for e in page] == [11, 12, 13, 14, 15]
    [select] = [s for s in statements if "FROM events" in s]
    assert "LIMIT" in select.upper() and re.search(r"\bseq >", select)
    assert re.search(r"ORDER BY (events\.)?seq\b", select)


# -- schema and migrations -----------------------------------------------------------


async def test_fresh_database_is_created_at_head(sql_url: str) -> None:
    async with SqlStore(sql_url):
        pass
    async with SqlStore(sql_url):  # opening again finds it current
        pass
    assert version_of(sql_url) == _migrate.head_revision()


async def test_head_migration_matches_the_table_definitions(sql_url: str) -> None:
    async with SqlStore(sql_url):
        pass
    engine = sync_engine(sql_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE, "compare_type": True}
        )
        assert compare_metadata(context, METADATA) == []
    engine.dispose()


async def test_older_database_is_upgraded_on_open_and_keeps_its_data(
    sql_url: str, add_test_revision: Callable[[], None], make_run: Any
) -> None:
    async with SqlStore(sql_url) as store:
        await store.append(make_run("r1"))
    assert version_of(sql_url) == HEAD

    add_test_revision()

    with pytest.raises(StoreOutdated, match="ponder db upgrade") as info:
        await SqlStore(sql_url, auto_upgrade=False).open()
    assert (info.value.current, info.value.head) == (HEAD, TEST_REVISION_ID)
    assert version_of(sql_url) == HEAD

    async with SqlStore(sql_url, auto_upgrade=True) as store:
        assert (await store.read_run("r1")).status == "succeeded"
        assert [r.id for r in await store.list_runs()] == ["r1"]
    assert version_of(sql_url) == TEST_REVISION_ID
    engine = sync_engine(sql_url)
    with engine.connect() as conn:
        assert "note_test" in {c["name"] for c in sa.inspect(conn).get_columns("runs")}
    engine.dispose()


async def test_upgrade_command_function(
    sql_url: str, add_test_revision: Callable[[], None]
) -> None:
    assert await upgrade(sql_url, revision=HEAD) == (None, HEAD)
    add_test_revision()

    assert await upgrade(sql_url) == (HEAD, TEST_REVISION_ID)
    assert await upgrade(sql_url) == (TEST_REVISION_ID, TEST_REVISION_ID)
    with pytest.raises(StoreError, match="cannot upgrade"):
        await upgrade(sql_url, revision="nope")


async def test_default_auto_upgrade_is_sqlite_only(tmp_path: Path) -> None:
    assert SqlStore(str(tmp_path / "p.db"))._auto_upgrade is True
    assert SqlStore("postgresql://u@h/db")._auto_upgrade is False


async def test_newer_database_is_refused(sql_url: str) -> None:
    async with SqlStore(sql_url):
        pass
    engine = sync_engine(sql_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999_future'"))
    engine.dispose()
    with pytest.raises(StoreError, match="newer Ponder"):
        await SqlStore(sql_url).open()


async def test_foreign_tables_are_not_taken_over(sql_url: str) -> None:
    database = sa.make_url(sql_url).database
    if sql_url.startswith("sqlite") and database:
        Path(database).parent.mkdir(parents=True)
    engine = sync_engine(sql_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE runs (x INTEGER)"))
    engine.dispose()
    with pytest.raises(StoreError, match="did not create"):
        await SqlStore(sql_url).open()


async def test_upgrade_refuses_the_memory_store() -> None:
    with pytest.raises(ConfigError):
        await upgrade("memory://")
