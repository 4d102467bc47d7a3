"""``--db`` as a user mistypes it: a SQLite URL without a file, a file that does not
exist (for a command that reads runs), a directory. Each is one line naming the value,
exit 1, and no store is created in its place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from orchestrator.cli import app

QUICKSTART = Path(__file__).resolve().parents[3] / "examples" / "quickstart.yaml"


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def one_line_error(result: Result, message: str) -> None:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite+aiosqlite:///",
                                 "sqlite:///?synchronous=FULL"])
def test_a_sqlite_url_without_a_file_is_refused_not_run_in_memory(url: str) -> None:
    result = invoke("run", str(QUICKSTART), "--db", url, "--backend", "simulated")
    one_line_error(result, "names no SQLite file: give one (sqlite:///PATH)")
    assert result.stdout == ""  # nothing ran
    one_line_error(invoke("runs", "--db", url), "names no SQLite file")


def test_it_is_a_config_error_in_json() -> None:
    result = invoke("runs", "--db", "sqlite:///", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["kind"] == "config"


@pytest.mark.parametrize("form", ["url", "path"])
@pytest.mark.parametrize("command", [["runs"], ["show", "r1"], ["export", "r1"],
                                     ["resume", "r1"], ["replay", "r1"],
                                     ["gc", "--older-than", "1d"]])
def test_a_command_that_reads_runs_does_not_create_a_store_named_by_mistake(
        tmp_path: Path, command: list[str], form: str) -> None:
    typo = tmp_path / "trcae.db"
    db = f"sqlite:///{typo}" if form == "url" else str(typo)
    one_line_error(invoke(*command, "--db", db), f"no trace store at {typo}; check the path "
                   "given (--db)")
    assert not typo.exists() and list(tmp_path.iterdir()) == []


def test_the_store_named_by_the_environment_must_exist_too(tmp_path: Path) -> None:
    typo = tmp_path / "trcae.db"
    result = invoke("runs", env={"PONDER_DB_URL": f"sqlite:///{typo}"})
    one_line_error(result, f"no trace store at {typo}; check the path given ($PONDER_DB_URL)")
    assert not typo.exists()


def test_a_run_creates_the_file_which_the_reading_commands_then_read(tmp_path: Path) -> None:
    db = tmp_path / "new" / "trace.db"
    result = invoke("run", str(QUICKSTART), "--db", str(db), "--backend", "simulated",
                    "--json")
    assert result.exit_code == 0, result.stderr
    run_id = json.loads(result.stdout)["run_id"]
    listed = invoke("runs", "--db", str(db), "--json")
    assert listed.exit_code == 0, listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)] == [run_id]


@pytest.mark.parametrize("form", ["url", "path"])
@pytest.mark.parametrize("command", [["runs"], ["run", str(QUICKSTART), "--backend",
                                                "simulated"]])
def test_a_directory_is_named_as_one(tmp_path: Path, form: str, command: list[str]) -> None:
    db = f"sqlite:///{tmp_path}" if form == "url" else str(tmp_path)
    one_line_error(invoke(*command, "--db", db), f"SQLite file {tmp_path} is a directory; "
                   f"name a file in it (e.g. {tmp_path / 'ponder.db'})")


def test_a_read_only_directory_is_named_as_one_by_a_reading_command(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        one_line_error(invoke("runs", "--db", str(folder)), f"SQLite file {folder} is a "
                       "directory")
    finally:
        folder.chmod(0o700)
