"""Shared fixtures for the whole suite."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (the backends' client libraries need it)."""
    return "asyncio"


@pytest.fixture
def other_process() -> Iterator[subprocess.Popen[bytes]]:
    """A live process of this host, killed after the test: the writer a run records
    when the test needs one that is still running (a resume is then refused)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture(autouse=True, scope="session")
def _private_trace_store(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Runs started by tests (and their subprocesses) write to a throwaway store."""
    import os

    if "PONDER_DB_URL" not in os.environ:
        path = tmp_path_factory.mktemp("store") / "ponder.db"
        os.environ["PONDER_DB_URL"] = f"sqlite+aiosqlite:///{path}"


_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With PONDER_NO_SKIPS=1 (CI), a skipped test fails the run: in CI every service a
    test needs is present, so a skip would hide a failure."""
    import os

    if os.environ.get("PONDER_NO_SKIPS") == "1" and _skipped and exitstatus == 0:
        print(f"\nPONDER_NO_SKIPS: {len(_skipped)} test(s) skipped:\n  " + "\n  ".join(_skipped))
        session.exitstatus = 1
