"""`--db ''` (`--db "$DB"` with DB unset) read as no --db: the command used the default
store, PONDER_DB_URL or ~/.ponder/ponder.db, and `ponder gc --older-than 0s --db ''`
deleted the runs there. An empty --db is refused as a malformed option."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app

COMMANDS = [
    ["runs"], ["show", "r"], ["resume", "r"], ["replay", "r"], ["export", "r"],
    ["import", "doc.json"], ["gc", "--older-than", "0s"], ["db", "upgrade"],
    ["run", "wf.yaml"], ["view"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: args[0] + "-" + args[-1])
@pytest.mark.parametrize("value", ["", " "])
def test_an_empty_db_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                args: list[str], value: str) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("PONDER_DB_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "wf.yaml").write_text("name: w\nsteps:\n  - {id: a, kind: llm, prompt: hi}\n")
    (tmp_path / "doc.json").write_text("{}")
    result = CliRunner().invoke(app, [*args, "--db", value])
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert f"Invalid value for '--db': {value!r} names no store" in result.stderr
    assert not (tmp_path / ".ponder").exists()


def test_with_json_it_is_the_usage_error_document(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["runs", "--db", "", "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["kind"] == "usage"
