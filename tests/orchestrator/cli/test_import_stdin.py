"""`ponder import -` reads the document from standard input, so that a run moves from one
store to another through a pipe: `ponder export RUN --db A | ponder import - --db B`
(export writes to standard output by default). `-` was taken for a file name ("cannot
read -: No such file or directory"). Its errors name standard input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio

from orchestrator.store import open_store
from tests.store.conftest import full_run

ROOT = Path(__file__).resolve().parents[3]


def ponder(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=ROOT,
                          input=stdin, capture_output=True, text=True, timeout=120)


def test_a_run_moves_between_stores_through_a_pipe(tmp_path: Path, db: str) -> None:
    async def seed() -> None:
        async with await open_store(db) as store:
            await store.append(full_run("piped", started=1_000.0))

    anyio.run(seed)
    exported = ponder("export", "piped", "--db", db)
    assert exported.returncode == 0, exported.stderr
    other = f"sqlite:///{tmp_path / 'other.db'}"
    imported = ponder("import", "-", "--db", other, stdin=exported.stdout)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "imported run piped"
    again = ponder("import", "-", "--db", other, stdin=exported.stdout)
    assert again.returncode == 1
    assert again.stderr.startswith("error: standard input: run piped is in the trace store "
                                   "already")
    shown = ponder("export", "piped", "--db", other)
    assert shown.returncode == 0 and shown.stdout == exported.stdout


def test_what_is_not_json_on_standard_input_is_named_so(tmp_path: Path) -> None:
    done = ponder("import", "-", "--db", f"sqlite:///{tmp_path / 'x.db'}", stdin="{bad")
    assert done.returncode == 1
    assert done.stderr.strip() == ("error: standard input:1:2: not JSON: Expecting property "
                                   "name enclosed in double quotes")
