"""Choosing a store from a URL, and upgrading a store's schema."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import quote

from orchestrator.errors import ConfigError, StoreUnavailable
from orchestrator.store._base import TraceStore
from orchestrator.store._memory import MemoryStore
from orchestrator.store._migrate import has_schema
from orchestrator.store._sql import SqlStore, normalize_url, upgrade_schema

MEMORY_URL = "memory://"
ENV_VAR = "PONDER_DB_URL"


def default_store_url() -> str:
    """The SQLite file used when neither a URL nor ``PONDER_DB_URL`` is given."""
    return "sqlite:///" + str(Path.home() / ".ponder" / "ponder.db")


def resolve_store_url(url: str | None = None) -> str:
    """The store URL to use: ``url``, else ``$PONDER_DB_URL``, else :func:`default_store_url`."""
    return url or os.environ.get(ENV_VAR) or default_store_url()


def needs_read_only(url: str | None = None) -> bool:
    """Whether ``url`` (resolved by :func:`resolve_store_url`) names a SQLite file that
    this user may not write, or in a directory this user may not write (a copied trace,
    another user's store, a read-only mount): a command that only reads opens it
    read-only (``open_store(url, read_only=True)``), since opening it to write fails.
    ``False`` for anything else (a writable or missing file, another database)."""
    resolved = resolve_store_url(url)
    if resolved == MEMORY_URL:
        return False
    path = SqlStore(resolved).path
    try:
        if path is None or not path.exists() or path.is_dir():
            return False
        # Checked by permission bits too, as opening it to write is: root is refused a
        # file marked read-only.
        writable = os.access(path, os.W_OK) and bool(path.stat().st_mode & stat.S_IWUSR)
        return not (writable and os.access(path.parent, os.W_OK | os.X_OK))
    except OSError:
        return False  # opening it says what is wrong


def read_only_url(url: str | None = None) -> str | None:
    """For a SQLite file of :func:`needs_read_only`: a URL that opens it read-only
    (a ``file:`` URI with ``mode=ro``, which :class:`SqlStore` opens as with
    ``read_only=True``); ``None`` for anything else. Messages then name the file by
    that URL: ``open_store(url, read_only=True)`` keeps the URL the user gave."""
    if not needs_read_only(url):
        return None
    path = SqlStore(resolve_store_url(url)).path
    assert path is not None
    # quoted twice: SQLAlchemy unquotes the URL once, SQLite the file: URI it passes on
    quoted = quote(quote(str(path.absolute())), safe="/")
    return f"sqlite:///file:{quoted}?mode=ro&uri=true"


def require_stored(url: str | None = None) -> None:
    """For a command that reads runs already stored: a SQLite file named by ``url`` or
    ``$PONDER_DB_URL`` must exist, since opening it would create an empty store and
    hide a mistyped path. The default file (:func:`default_store_url`) may be missing.

    :raises StoreUnavailable: naming the file that does not exist.
    :raises ConfigError: for a URL of an unsupported kind.
    """
    resolved = resolve_store_url(url)
    if resolved == MEMORY_URL or not (url or os.environ.get(ENV_VAR)):
        return
    store = SqlStore(resolved)
    try:
        missing = store.path is not None and not store.path.exists()
    except OSError:
        return  # opening it says what is wrong
    if missing:
        given = "--db" if url else f"${ENV_VAR}"
        raise StoreUnavailable(
            f"no trace store at {store.path}; check the path given ({given}), or run a "
            "workflow with that store first",
            url=store.url,
        )


async def require_schema(url: str | None = None) -> None:
    """For a command that reads runs already stored: the database that ``url`` or
    ``$PONDER_DB_URL`` names must hold a trace store, since opening it creates one
    there: Ponder's tables in an empty database, or in another program's where the URL
    names the wrong one. The default file (:func:`default_store_url`) may hold none.

    It only reads: a SQLite file is looked at read-only, as it is (one that does not
    exist is :func:`require_stored`'s to refuse, and is passed here).

    :raises StoreUnavailable: naming the database that holds no trace store, or when it
        cannot be reached or opened.
    :raises ConfigError: for a URL of an unsupported kind.
    """
    resolved = resolve_store_url(url)
    if resolved == MEMORY_URL or not (url or os.environ.get(ENV_VAR)):
        return
    probe = SqlStore(resolved, read_only=True)
    if normalize_url(resolved).get_backend_name() == "sqlite":
        try:
            if probe.path is None or not probe.path.exists():
                return  # in memory: nothing to read; a missing file: require_stored's
        except OSError:
            return  # opening it says what is wrong
    runner = await probe._connect()
    try:
        found = await probe._run("check the schema", lambda: runner.read(has_schema))
    finally:
        await runner.close()
    if not found:
        given = "--db" if url else f"${ENV_VAR}"
        where = f"SQLite file {probe.path}" if probe.path is not None else probe.url
        raise StoreUnavailable(
            f"no trace store in {where}: it holds no Ponder tables; check the store "
            f"given ({given}), or run a workflow with that store first",
            url=probe.url,
        )


async def open_store(url: str | None = None, *, auto_upgrade: bool | None = None,
                     read_only: bool = False) -> TraceStore:
    """Open the trace store at ``url`` (resolved by :func:`resolve_store_url`).

    ``memory://`` gives a :class:`MemoryStore`; anything else a :class:`SqlStore`,
    connected and with its schema at head. Close it when done (or ``async with``).

    :param auto_upgrade: see :class:`SqlStore`.
    :param read_only: only read it, never upgrading it (see :class:`SqlStore`; a
        :class:`MemoryStore` is empty anyway).
    :raises ConfigError: for a URL of an unsupported kind.
    :raises StoreUnavailable: when the database cannot be reached or opened.
    :raises StoreOutdated: when its schema is older and may not be upgraded here.
    """
    resolved = resolve_store_url(url)
    if resolved == MEMORY_URL:
        return MemoryStore()
    store = SqlStore(resolved, auto_upgrade=auto_upgrade, read_only=read_only)
    await store.open()
    return store


async def upgrade(
    url: str | None = None, *, revision: str = "head"
) -> tuple[str | None, str | None]:
    """Upgrade a store's schema (``ponder db upgrade``); creates it in an empty database.

    :param url: the store (resolved by :func:`resolve_store_url`).
    :param revision: the target revision.
    :returns: the schema revisions before and after (``None``: no schema).
    :raises ConfigError: for ``memory://`` or an unsupported URL.
    :raises StoreUnavailable: when the database cannot be reached.
    :raises StoreError: when the database was written by a newer Ponder.
    """
    resolved = resolve_store_url(url)
    if resolved == MEMORY_URL:
        raise ConfigError("the memory:// trace store has no schema to upgrade")
    return await upgrade_schema(resolved, revision)
