"""A reader of a SQLite trace store that this user may not write, for the read-only tests.

The tests run it as another user than the file's owner (``nobody`` when they run as
root, whom no permission stops) in a directory that user may not write, the case that
a store of another user is in. Where ``nobody`` cannot run this checkout's Python (a
checkout or interpreter under a home other users may not enter), root runs it in a
mount namespace of its own where the directory is a read-only bind mount, the case of a
read-only mount (``unshare -m``; root's permissions do not pass a read-only mount). It
cannot run in the tests' own process: a process that may write the directory makes
SQLite take another path.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534

_SCRIPT = r"""
import json, sys
import anyio
from orchestrator.store import open_store

async def main() -> None:
    try:
        store = await open_store(sys.argv[1], read_only=sys.argv[2] == "read_only")
    except Exception as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        return
    print(json.dumps({"opened": True}), flush=True)
    try:
        for _ in sys.stdin:  # one line: list the runs again
            try:
                print(json.dumps({"runs": [r.id for r in await store.list_runs()]}),
                      flush=True)
            except Exception as exc:
                print(json.dumps({"error": str(exc)}), flush=True)
    finally:
        await store.close()

anyio.run(main)
"""


#: under root, the directory the reader sees as a read-only mount, when it cannot run as
#: ``nobody`` (see :func:`reader_directory`)
_MOUNTED: list[Path] = []

_READ_ONLY_MOUNT = ('mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" '
                    '&& exec "$@"')


def reader_argv(argv: list[str]) -> list[str]:
    """The command line that runs ``argv`` as the reader (see :func:`as_reader`)."""
    if not _MOUNTED:
        return argv
    return ["unshare", "-m", "sh", "-c", _READ_ONLY_MOUNT, str(_MOUNTED[-1]), *argv]


def as_reader() -> dict[str, Any]:
    """``subprocess`` arguments that run a command as the reader: ``nobody`` under root
    (unless the reader runs as root behind a read-only mount: :func:`reader_argv`)."""
    env = {**os.environ, "HOME": tempfile.gettempdir(), "PYTHONPATH": str(ROOT),
           "PYTHONDONTWRITEBYTECODE": "1"}
    if os.geteuid() != 0 or _MOUNTED:
        return {"env": env, "cwd": ROOT}
    return {"env": env, "cwd": ROOT, "user": NOBODY, "group": NOBODY, "extra_groups": []}


class Reader:
    """The reader script, running: :meth:`runs` asks it for the runs' ids.

    :param read_only: open the store with ``read_only=True``, else as the URL says.
    """

    def __init__(self, url: str, *, read_only: bool = True) -> None:
        how = "read_only" if read_only else "as_url"
        self.proc = subprocess.Popen(
            reader_argv([sys.executable, "-c", _SCRIPT, url, how]), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **as_reader())
        self.first = self._answer()

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=30)
            assert self.proc.stderr is not None
            raise AssertionError(f"the reader ended: {self.proc.stderr.read()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def runs(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


class ReaderDir:
    """A directory the reader may read and not write, and the files in it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lock(self) -> None:
        """Make the directory one the reader may not write (under root, it is already
        one: ``nobody`` is not its owner)."""
        if os.geteuid() != 0:
            self.path.chmod(0o555)

    def unlock(self) -> None:
        self.path.chmod(0o755)


@contextlib.contextmanager
def reader_directory() -> Iterator[ReaderDir]:
    """A fresh directory the reader may read (under ``/tmp``, which every user may
    enter, unlike pytest's own), for a test's fixture. Under root, where ``nobody``
    cannot import Ponder (a checkout or Python other users may not read), the reader
    runs as root behind a read-only mount of it; the test is skipped where neither
    works (no ``unshare``, or no right to mount)."""
    path = Path(tempfile.mkdtemp(prefix="ponder-read-only-"))
    path.chmod(0o755)
    try:
        probe = subprocess.run([sys.executable, "-c", "import orchestrator.store"],
                               capture_output=True, text=True, timeout=120, **as_reader())
        if probe.returncode != 0 and os.geteuid() == 0:
            _MOUNTED.append(path)
            probe = subprocess.run(
                reader_argv([sys.executable, "-c", f"open({str(path / 'w')!r}, 'w')"]),
                capture_output=True, text=True, timeout=120, **as_reader())
            if "Read-only file system" not in probe.stderr:
                _MOUNTED.remove(path)
                pytest.skip("the reader can run neither as nobody nor behind a read-only "
                            f"mount: {probe.stderr[-200:]}")
        elif probe.returncode != 0:
            pytest.skip(f"another user cannot import Ponder from {ROOT}: "
                        f"{probe.stderr[-200:]}")
        yield ReaderDir(path)
    finally:
        if path in _MOUNTED:
            _MOUNTED.remove(path)
        path.chmod(0o755)
        for child in path.iterdir():
            child.unlink()
        path.rmdir()
