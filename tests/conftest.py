"""Shared fixtures for the whole suite."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

#: the most workers ``-n auto`` (pyproject's addopts) starts: each worker starts its own
#: llama.cpp server and PostgreSQL cluster when none is given (README), and most tests
#: start processes of their own, so more workers than this gain little
MAX_AUTO_WORKERS = 4


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Workers of ``-n auto``: one per CPU this process may run on, at most
    :data:`MAX_AUTO_WORKERS` (``PYTEST_XDIST_AUTO_NUM_WORKERS`` overrides; ``-n 0`` runs
    the tests in this process). pytest-xdist's own count is of physical cores where
    psutil is installed, fewer than the CPUs on a VM whose vCPUs are hyperthreads."""
    import os

    given = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS")
    if given:
        return int(given)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(MAX_AUTO_WORKERS, cpus or 1))


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
