"""Schema revisions through Alembic, driven from code (no ``alembic.ini``).

Every function here is synchronous and takes a connection inside an open
transaction; async callers run them with ``AsyncConnection.run_sync`` and commit.

Alembic is imported only when a store is not at the newest revision (or asked about
revisions): importing it (with Mako and Pygments) took a tenth of a second of every
command's start. Opening a store at the newest revision compares the revision in its
version table with the one the migration files end at, read from their ``revision`` and
``down_revision`` lines (:func:`_head_from_files`), and takes Alembic's path whenever
those do not read as one line of revisions.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from orchestrator.store._errors import StoreError, StoreOutdated
from orchestrator.store._schema import METADATA, VERSION_TABLE

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# Any constant will do; it only has to be the same in every Ponder process.
_PG_MIGRATION_LOCK = 0x506F6E646572


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic configuration for Ponder's migrations, bound to ``connection``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The schema revision this Ponder's code expects."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations directory has no revision"
    return head


def current_revision(conn: sa.Connection) -> str | None:
    """The database's schema revision, ``None`` when it has no Ponder schema."""
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


#: a migration file's `revision = "0002"` and `down_revision = "0001"` lines
_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.M)


def _head_from_files() -> str | None:
    """The revision the migration files end at, read from their ``revision`` and
    ``down_revision`` lines; None unless they read as one line of revisions with one end
    (Alembic then answers)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = dict(_REVISION_LINE.findall(path.read_text(encoding="utf-8")))
        if "revision" not in found:
            continue  # (__init__.py)
        try:
            revision = ast.literal_eval(found["revision"])
            parent = ast.literal_eval(found.get("down_revision", "None"))
        except (ValueError, SyntaxError):
            return None
        if not isinstance(revision, str) or not (parent is None or isinstance(parent, str)):
            return None  # (a merge's tuple of parents)
        revisions.add(revision)
        if parent is not None:
            parents.add(parent)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


def has_schema(conn: sa.Connection) -> bool:
    """Whether the database holds a Ponder schema (its version table), of any revision."""
    return sa.inspect(conn).has_table(VERSION_TABLE)


def _stored_revision(conn: sa.Connection) -> str | None:
    """The revision in the database's version table, None without one (or with other
    than one row)."""
    if not has_schema(conn):
        return None
    rows = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return str(rows[0]) if len(rows) == 1 else None


def _lock(conn: sa.Connection) -> None:
    # SQLite callers already hold the write lock (BEGIN IMMEDIATE); Postgres needs
    # one so that two processes opening a fresh database do not both create it.
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})


def _unbounded(conn: sa.Connection) -> None:
    # A migration may rewrite a large table: it is not an ordinary statement, and the
    # store's statement timeout (PostgreSQL) is lifted for its transaction.
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SET LOCAL statement_timeout = 0"))


def _state(conn: sa.Connection, url: str) -> tuple[str | None, str]:
    """Current and head revisions; refuses a database this Ponder cannot manage."""
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    assert head is not None, "the migrations directory has no revision"
    current = current_revision(conn)
    if current is None:
        clashing = set(METADATA.tables) & set(sa.inspect(conn).get_table_names())
        if clashing:
            raise StoreError(
                f"the database at {url} already has tables {sorted(clashing)} that Ponder "
                "did not create; give Ponder a database (or file) of its own",
                url=url,
            )
        return None, head
    try:
        script.get_revision(current)
    except CommandError:
        raise StoreError(
            f"the trace store at {url} has schema revision {current!r}, which this Ponder "
            f"does not know (it knows up to {head!r}); it was written by a newer Ponder: "
            "upgrade Ponder",
            url=url,
        ) from None
    return current, head


def ensure_schema(conn: sa.Connection, *, url: str, auto_upgrade: bool) -> None:
    """Bring the schema to head: create it in an empty database, upgrade an older one.

    :param url: the store's URL with the password hidden, for messages.
    :param auto_upgrade: whether an older schema may be upgraded here.
    :raises StoreOutdated: when the schema is older and ``auto_upgrade`` is false.
    :raises StoreError: when the database is newer than this Ponder, or holds
        same-named tables of someone else.
    """
    _lock(conn)
    head = _head_from_files()
    if head is not None and _stored_revision(conn) == head:
        return  # (the common case, without importing Alembic)
    current, head = _state(conn, url)
    if current == head:
        return
    if current is not None and not auto_upgrade:
        raise StoreOutdated(
            f"the trace store at {url} has schema revision {current!r}, older than this "
            f"Ponder's {head!r}; run `ponder db upgrade` with the same store URL "
            "(back the database up first)",
            url=url,
            current=current,
            head=head,
        )
    _unbounded(conn)
    from alembic import command

    command.upgrade(alembic_config(conn), "head")


def migrate(conn: sa.Connection, *, url: str, revision: str) -> tuple[str | None, str | None]:
    """Upgrade the schema to ``revision`` (``"head"`` for the newest).

    :returns: the revisions before and after.
    :raises StoreError: as :func:`ensure_schema`, or for an unknown target revision.
    """
    _unbounded(conn)  # `ponder db upgrade` waits for another upgrade as long as it takes
    _lock(conn)
    before, _ = _state(conn, url)
    from alembic import command
    from alembic.util.exc import CommandError

    try:
        command.upgrade(alembic_config(conn), revision)
    except CommandError as exc:
        raise StoreError(f"cannot upgrade the trace store at {url}: {exc}", url=url) from exc
    return before, current_revision(conn)
