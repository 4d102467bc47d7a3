"""`ponder export` writes a run with its child runs, and `ponder import` stores them and
says so: a resume in the store imported into needs them (see
tests/store/test_store_export_children.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio

from orchestrator.store import open_store
from tests.store.conftest import full_run

ROOT = Path(__file__).resolve().parents[3]


def ponder(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args, "--db", db],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_export_and_import_carry_the_child_runs(tmp_path: Path, db: str) -> None:
    async def seed() -> None:
        async with await open_store(db) as store:
            await store.append(full_run("top", started=1_000.0))
            await store.append(full_run("sub", started=1_001.0, parent_run_id="top",
                                        parent_attempt=1))
            await store.append(full_run("subsub", started=1_002.0, parent_run_id="sub",
                                        parent_attempt=1))

    anyio.run(seed)
    doc = tmp_path / "run.json"
    exported = ponder("export", "top", "-o", str(doc), db=db)
    assert exported.returncode == 0, exported.stderr
    assert [c["run"]["id"] for c in json.loads(doc.read_text())["children"]] == [
        "sub", "subsub"]
    other = f"sqlite:///{tmp_path / 'other.db'}"
    imported = ponder("import", str(doc), db=other)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout == "imported run top and its 2 child runs\n"
    listed = ponder("runs", "--json", db=other)
    assert [r["id"] for r in json.loads(listed.stdout)] == ["subsub", "sub", "top"]
