"""`ponder export RUN -o FILE` where FILE is the store's own SQLite file (by any name:
the path given to --db, a link to it, its write-ahead log) wrote the JSON over it: every
run in the store was lost and the next command said the file is not a SQLite database.
It is refused now, and the store is left as it was."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner, Result

from orchestrator.cli import app
from orchestrator.runtime import events as ev
from orchestrator.store import open_store
from tests.orchestrator.cli.test_json_errors import one_line_error


def ponder(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _store(tmp_path: Path) -> Path:
    path = tmp_path / "trace.db"

    async def seed() -> None:
        async with await open_store(f"sqlite:///{path}") as store:
            await store.append([
                ev.RunStarted(run_id="r", seq=0, ts=1.0, workflow="w", inputs={}),
                ev.RunFinished(run_id="r", seq=1, ts=2.0, status="succeeded",
                               duration_s=1.0),
            ])  # fmt: skip

    anyio.run(seed)
    return path


@pytest.mark.parametrize("name", ["same", "relative", "link", "wal"])
def test_the_stores_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    name: str) -> None:
    path = _store(tmp_path)
    before = path.read_bytes()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "link.db").symlink_to(path)
    output = {"same": str(path), "relative": "./trace.db", "link": "link.db",
              "wal": "trace.db-wal"}[name]
    result = ponder("export", "r", "--db", f"sqlite:///{path}", "-o", output)
    one_line_error(result, f"-o {Path(output)}: that is a file of the trace store")
    assert path.read_bytes() == before and not os.path.exists(tmp_path / "trace.db-wal")
    listed = ponder("runs", "--db", str(path), "--json")
    assert listed.exit_code == 0 and '"id": "r"' in listed.stdout


def test_another_file_is_written(tmp_path: Path) -> None:
    path = _store(tmp_path)
    result = ponder("export", "r", "--db", str(path), "-o", str(tmp_path / "r.json"))
    assert result.exit_code == 0, result.stderr
    assert '"id": "r"' in (tmp_path / "r.json").read_text()
