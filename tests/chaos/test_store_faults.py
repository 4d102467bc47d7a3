"""The trace store under a full disk and a read-only database file: a clear error, the
database left consistent, earlier runs intact, and later writes fine once space is back.

Two ways to fill the disk: a 2 MiB tmpfs filled to the last byte (real ENOSPC; needs
root and mount, skipped otherwise) and a file-size limit (RLIMIT_FSIZE) in a child
process (EFBIG, any Linux).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from orchestrator import Workflow

store_mod = pytest.importorskip("orchestrator.store")
StoreError = store_mod.StoreError
StoreHook = store_mod.StoreHook
StoreUnavailable = store_mod.StoreUnavailable
open_store = store_mod.open_store

pytestmark = [pytest.mark.anyio,
              pytest.mark.skipif(sys.platform != "linux", reason="Linux file-system faults")]

BIG = 200_000  # characters of each step's output in the run that meets the full disk


def pad(n: int) -> str:
    """A string of `n` x's."""
    return "x" * n


def padded(n_steps: int, size: int) -> Workflow:
    doc = {"name": "pad", "steps": [{"id": f"s{i}", "kind": "tool", "tool": "pad",
                                     "args": {"n": size}} for i in range(n_steps)]}
    wf = Workflow.from_yaml_text(yaml.safe_dump(doc))
    wf.register_tool(pad)
    return wf


def url_of(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def first_run(path: Path) -> tuple[str, list[Any]]:
    store = await open_store(url_of(path))
    try:
        result = await padded(3, 100).run(hooks=[StoreHook(store)], run_id="before")
        assert result.ok, result.error
        return result.run_id, await store.events(result.run_id)
    finally:
        await store.close()


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def find(exc: BaseException, cls: type[BaseException]) -> BaseException | None:
    """The first `cls` in an exception (group), or None."""
    if isinstance(exc, cls):
        return exc
    for sub in getattr(exc, "exceptions", ()):
        hit = find(sub, cls)
        if hit is not None:
            return hit
    return None


async def check_after(path: Path, run_id: str, before: list[Any], failed_run: str) -> None:
    """What must hold once space is back: consistency, the old run, the new run's events."""
    assert integrity(path) == "ok"
    store = await open_store(url_of(path))
    try:
        assert await store.events(run_id) == before
        partial = await store.events(failed_run)
        kinds = {type(e).__name__ for e in partial}
        assert "RawEvent" not in kinds  # every stored row decodes
        for e in partial:  # whatever was stored, was stored whole
            if e.kind == "step_succeeded":
                assert e.output == "x" * BIG
        again = await padded(3, 100).run(hooks=[StoreHook(store)], run_id="after")
        assert again.ok
        assert (await store.read_run("after")).status == "succeeded"
    finally:
        await store.close()


# -- read-only ------------------------------------------------------------------------

async def test_read_only_database_is_refused_clearly_and_left_intact(tmp_path: Path) -> None:
    path = tmp_path / "trace.db"
    run_id, before = await first_run(path)
    size = path.stat().st_size
    path.chmod(0o444)
    try:
        with pytest.raises(StoreUnavailable, match="read-only") as info:
            await open_store(url_of(path))
        assert str(path) in str(info.value)
    finally:
        path.chmod(0o644)
    assert path.stat().st_size == size
    assert integrity(path) == "ok"
    store = await open_store(url_of(path))
    try:
        assert await store.events(run_id) == before
    finally:
        await store.close()


# -- full disk ------------------------------------------------------------------------

@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (skips when this process may not mount)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(directory: Path) -> Path:
    """Fill a file system to its last byte; returns the filler file."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


async def test_full_disk_gives_a_store_error_and_no_corruption(tiny_fs: Path) -> None:
    path = tiny_fs / "trace.db"
    run_id, before = await first_run(path)
    store = await open_store(url_of(path))
    filler = fill(tiny_fs)
    try:
        with pytest.raises(BaseException) as info:  # the error may come wrapped (see below)
            await padded(8, BIG).run(hooks=[StoreHook(store)], run_id="full")
        error = find(info.value, StoreError)
        assert error is not None, repr(info.value)
        assert "full" in str(error) and str(path) in str(error)
    finally:
        filler.unlink()
        await store.close()
    await check_after(path, run_id, before, "full")


_CHILD = textwrap.dedent("""
    import json, os, resource, signal, sys
    import anyio, yaml
    from orchestrator import Workflow
    from orchestrator.store import StoreHook, open_store

    def pad(n: int) -> str:
        "pad"
        return "x" * n

    async def main(path: str, big: int) -> None:
        sizes = [os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p)]
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.setrlimit(resource.RLIMIT_FSIZE, (max(sizes) + 32 * 1024, hard))
        doc = {"name": "pad", "steps": [{"id": f"s{i}", "kind": "tool", "tool": "pad",
                                         "args": {"n": big}} for i in range(8)]}
        wf = Workflow.from_yaml_text(yaml.safe_dump(doc))
        wf.register_tool(pad)
        store = await open_store("sqlite+aiosqlite:///" + path)
        try:
            result = await wf.run(hooks=[StoreHook(store)], run_id="full")
            print(json.dumps({"status": result.status}))
        except BaseException as exc:
            found = exc
            while getattr(found, "exceptions", None):
                found = found.exceptions[0]
            print(json.dumps({"outer": type(exc).__name__, "type": type(found).__name__,
                              "ponder": found.__class__.__module__.startswith("orchestrator"),
                              "message": str(found)}))
        finally:
            await store.close()

    anyio.run(main, sys.argv[1], int(sys.argv[2]))
""")


async def test_file_size_limit_gives_a_store_error_and_no_corruption(tmp_path: Path) -> None:
    path = tmp_path / "trace.db"
    run_id, before = await first_run(path)
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    done = await anyio.run_process([sys.executable, str(script), str(path), str(BIG)],
                                   check=False)
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert report.get("ponder") and report["type"] in ("StoreError", "StoreUnavailable"), report
    assert str(path) in report["message"], report
    await check_after(path, run_id, before, "full")


# -- known core bugs (see the chaos report): remove the marks once fixed ---------------

class FailOnce:
    """A hook whose first write of a step result fails (a disk that fills, then frees)."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.failed = False

    async def __call__(self, batch: Any) -> None:
        if not self.failed and any(e.kind == "step_succeeded" for e in batch):
            self.failed = True
            raise StoreError("trace store: cannot append events: database or disk is full")
        self.events.extend(batch)


async def test_hook_failure_surfaces_as_the_ponder_error() -> None:
    with pytest.raises(StoreError):
        await padded(2, 10).run(hooks=[FailOnce()])


async def test_no_run_finished_over_a_gap_after_a_failed_write() -> None:
    hook = FailOnce()
    with pytest.raises(StoreError):
        await padded(2, 10).run(hooks=[hook])
    seqs = [e.seq for e in hook.events]
    finished = [e for e in hook.events if e.kind == "run_finished"]
    assert seqs == list(range(len(seqs))), f"gap in the delivered events: {seqs}"
    assert not finished or finished[0].status == "failed", finished[0].status
