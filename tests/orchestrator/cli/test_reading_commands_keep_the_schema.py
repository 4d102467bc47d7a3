"""`ponder runs`, `show` and `export` only read: a store whose schema is older than this
Ponder's is left as it is, and they exit naming `ponder db upgrade`, as `ponder view`
does. On SQLite they upgraded it silently (the writing commands still do, as the
README says); PostgreSQL is upgraded only by `ponder db upgrade` anyway."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import sqlalchemy as sa
from alembic import command

from orchestrator.store import _migrate, open_store
from tests.store.conftest import full_run

ROOT = Path(__file__).resolve().parents[3]


def ponder(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args, "--db", db],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def _engine(url: str) -> sa.Engine:
    parsed = sa.make_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    return sa.create_engine(parsed.set(drivername="sqlite" if sqlite else "postgresql+psycopg"))


def _revision(url: str) -> str | None:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return _migrate.current_revision(conn)
    finally:
        engine.dispose()


def test_reading_commands_leave_an_older_schema_as_it_is(db: str) -> None:
    async def seed() -> None:
        async with await open_store(db) as store:
            await store.append(full_run("kept"))

    anyio.run(seed)
    engine = _engine(db)
    with engine.begin() as conn:
        command.downgrade(_migrate.alembic_config(conn), "0001")
    engine.dispose()

    for args in (("runs",), ("show", "kept"), ("export", "kept"), ("runs", "--json")):
        proc = ponder(*args, db=db)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        said = proc.stderr.replace("\n", " ")
        assert "has schema revision '0001', older than this Ponder's" in said, said
        assert "run `ponder db upgrade` with the same store URL" in said
        assert f"`ponder {args[0]}` reads a store as it is, and never upgrades it" in said
        assert _revision(db) == "0001", args
    error = json.loads(ponder("show", "kept", "--json", db=db).stdout)["error"]
    assert error["kind"] == "store" and "ponder db upgrade" in error["message"]

    upgraded = ponder("db", "upgrade", db=db)
    assert upgraded.returncode == 0, upgraded.stderr
    shown = ponder("show", "kept", db=db)
    assert shown.returncode == 0 and "run kept: succeeded" in shown.stdout, shown.stderr
