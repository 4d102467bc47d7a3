"""The commands that need runs already stored, given a database that holds no trace
store (an empty PostgreSQL database, `.../postgres` for `.../ponder`; another program's
SQLite file), created Ponder's tables in it and answered as for an empty store: `ponder
runs` wrote to a database it was only to read, and a mistyped URL went unnoticed. They
refuse it, in one line naming it, and leave it as it was; `ponder run` still creates a
store there, and `ponder db upgrade` says that it did."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from orchestrator.cli import app

COMMANDS = [["runs"], ["show", "r"], ["export", "r"], ["resume", "r"], ["replay", "r"],
            ["gc", "--older-than", "1d"]]


def _sqlite_of_another_program(tmp_path: Path) -> tuple[str, str]:
    path = tmp_path / "notes.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    conn.close()
    return f"sqlite:///{path}", f"SQLite file {path}"


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def no_store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """The URL of a database without a trace store, and how messages name it."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_url")
        return url, url
    return _sqlite_of_another_program(tmp_path)


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: args[0])
def test_a_database_without_a_store_is_refused_and_left_as_it_was(
        no_store: tuple[str, str], args: list[str]) -> None:
    url, named = no_store
    before = _tables(url)
    result = CliRunner().invoke(app, [*args, "--db", url])
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr == (f"error: no trace store in {named}: it holds no Ponder tables; "
                             "check the store given (--db), or run a workflow with that "
                             "store first\n")
    assert _tables(url) == before


def test_with_json_it_is_a_store_error(tmp_path: Path) -> None:
    url, _ = _sqlite_of_another_program(tmp_path)
    result = CliRunner().invoke(app, ["runs", "--json", "--db", url])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["kind"] == "store"


def test_an_empty_sqlite_file_is_refused_and_left_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    result = CliRunner().invoke(app, ["runs", "--db", f"sqlite:///{path}"])
    assert result.exit_code == 1
    assert "it holds no Ponder tables" in result.stderr
    assert path.stat().st_size == 0


def test_ponder_run_still_creates_a_store_there_and_then_runs_lists_it(
        tmp_path: Path) -> None:
    url, _ = _sqlite_of_another_program(tmp_path)
    wf = tmp_path / "w.yaml"
    wf.write_text("name: w\nsteps:\n  - {id: a, kind: tool, tool: calc, "
                  "args: {expression: '6*7'}}\n")
    assert CliRunner().invoke(app, ["run", str(wf), "--db", url]).exit_code == 0
    listed = CliRunner().invoke(app, ["runs", "--json", "--db", url])
    assert listed.exit_code == 0, listed.stderr
    assert [r["workflow"] for r in json.loads(listed.stdout)] == ["w"]


@pytest.mark.postgres
def test_db_upgrade_after_runs_says_it_created_the_store(pg_url: str) -> None:
    assert CliRunner().invoke(app, ["runs", "--db", pg_url]).exit_code == 1
    result = CliRunner().invoke(app, ["db", "upgrade", "--db", pg_url])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"created the trace store at {pg_url} ")
